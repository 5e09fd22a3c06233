from .long_tail_metric import (LongTailMetric, load_class_counts,
                               long_tail_metrics, shot_groups)

__all__ = [
    'LongTailMetric', 'load_class_counts', 'long_tail_metrics', 'shot_groups'
]

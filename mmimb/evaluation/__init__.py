from .class_scores import (class_scores, evaluate_class_scores,
                           label_ignore_index)
from .long_tail_metric import (LongTailMetric, load_class_counts,
                               long_tail_metrics, shot_groups)

__all__ = [
    'LongTailMetric', 'class_scores', 'evaluate_class_scores',
    'label_ignore_index', 'load_class_counts', 'long_tail_metrics',
    'shot_groups'
]

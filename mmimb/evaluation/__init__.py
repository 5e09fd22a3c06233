from .class_scores import (class_scores, evaluate_class_scores,
                           label_ignore_index)
from .long_tail_metric import (LongTailMetric, calibration_metrics,
                               expected_calibration_error, load_class_counts,
                               long_tail_metrics, shot_groups)

__all__ = [
    'LongTailMetric', 'calibration_metrics', 'class_scores',
    'evaluate_class_scores', 'expected_calibration_error',
    'label_ignore_index', 'load_class_counts', 'long_tail_metrics',
    'shot_groups'
]

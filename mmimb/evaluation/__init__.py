from .long_tail_metric import (LongTailMetric, calibration_metrics,
                               expected_calibration_error, load_class_counts,
                               long_tail_metrics, shot_groups)

__all__ = [
    'LongTailMetric', 'calibration_metrics', 'expected_calibration_error',
    'load_class_counts', 'long_tail_metrics', 'shot_groups'
]

from .checkpoint_compat import allow_mmengine_checkpoints
from .checkpoint_keys import check_checkpoint_prefix, checkpoint_prefixes
from .class_freq import (AUTO, load_class_counts, load_class_freq,
                         per_class_vector, read_class_stats_json,
                         resolve_auto_class_freq)
from .config_scope import register_config_scope
from .errors import ConfigError
from .footprint import Footprint, autograd_footprint
from .paired_stats import PairedDifference, paired_difference
from .set_env import register_all_modules

__all__ = [
    'AUTO', 'ConfigError', 'Footprint', 'PairedDifference',
    'allow_mmengine_checkpoints', 'autograd_footprint',
    'check_checkpoint_prefix', 'checkpoint_prefixes', 'load_class_counts',
    'load_class_freq',
    'paired_difference', 'per_class_vector', 'read_class_stats_json',
    'register_all_modules', 'register_config_scope',
    'resolve_auto_class_freq'
]

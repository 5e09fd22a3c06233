from .config_check import ConfigError, check_config
from .hooks import *  # noqa: F401,F403
from .launch import build_runner, load_config
from .optimizers import *  # noqa: F401,F403
from .runner import MMImbRunner, resolve_config

__all__ = [
    'ConfigError', 'MMImbRunner', 'build_runner', 'check_config',
    'load_config', 'resolve_config'
]

"""mmimb: class-imbalance learning for MMSegmentation and MMPretrain.

Importing the package registers every component in the registry of the
library that owns its kind, makes ``mmimb::`` config paths resolvable and
lets mmengine resume from its own checkpoints under torch >= 2.6.
"""
import warnings

# mmengine and mmcv import pkg_resources, which setuptools deprecates with a
# warning on every run; the pin setuptools<81 keeps it working.
warnings.filterwarnings(
    'ignore', message='pkg_resources is deprecated', category=UserWarning)

from .utils import allow_mmengine_checkpoints, register_config_scope  # noqa: E402,E501
from .version import __version__  # noqa: E402

register_config_scope()
allow_mmengine_checkpoints()

from . import (  # noqa: E402,F401
    analysis, datasets, engine, evaluation, models, registry)

__all__ = ['__version__']

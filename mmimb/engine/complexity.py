"""Parameters and FLOPs of a config's model, in total and per part.

``tools/analysis_tools/get_flops.py`` prints them; the CSBA evidence script
records them beside the accuracy. FLOPs are mmengine's: one multiply-add
counts as one FLOP, and operators it has no formula for (softmax, sigmoid,
pooling, ...) count as zero and are listed in ``unsupported_ops``.
"""
import copy
import logging
from contextlib import contextmanager
from typing import Dict, Iterator, Sequence

import torch
from mmengine.analysis import (FlopAnalyzer, get_model_complexity_info,
                               parameter_count)
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope, init_default_scope

from mmimb.utils import resolve_auto_class_freq
from .config_check import ConfigError, _model_num_classes, _registries, \
    infer_scope


def build_model_for_analysis(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in eval mode on the CPU, without reading data.

    ``class_freq='auto'`` is replaced by uniform frequencies: the losses that
    take it have neither parameters nor FLOPs, so the count is unaffected and
    no dataset has to be scanned.

    Raises:
        ConfigError: If the scope cannot be told or ``'auto'`` appears with
            no ``num_classes`` in the model.
    """
    scope = infer_scope(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    counts = [num for _, num in _model_num_classes(model_cfg)]

    def uniform():
        if not counts:
            raise ConfigError("class_freq='auto' in the model but no "
                              'head.num_classes or decode_head.num_classes '
                              'to size it')
        return [1.0 / counts[0]] * counts[0]

    resolve_auto_class_freq(model_cfg, uniform)
    if DefaultScope.get_current_instance() is None or \
            DefaultScope.get_current_instance().scope_name != scope:
        init_default_scope(scope)
    model = _registries(scope).MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    return model.eval()


@contextmanager
def _quiet_mmengine() -> Iterator[None]:
    """Mute mmengine's per-call analyzer warnings; the unsupported operators
    are returned instead."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def model_complexity(model: torch.nn.Module,
                     shape: Sequence[int],
                     show_table: bool = False) -> Dict:
    """Parameters and FLOPs of ``model`` for one image of ``shape`` (H, W).

    Returns:
        dict: ``params`` and ``flops`` (totals), ``parts``: for each
        top-level child (backbone, neck, head, decode_head, ...) its
        ``params`` and ``flops``; ``unsupported_ops`` (op name to count);
        ``table`` (mmengine's per-module table when ``show_table``).
    """
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0
                                  for s in shape):
        raise ValueError(f'--shape {list(shape)}: expected H W (or one '
                         'size for square images), positive ints')
    inputs = (torch.rand(1, 3, *shape), )
    with torch.no_grad(), _quiet_mmengine():
        info = get_model_complexity_info(
            model, inputs=inputs, show_table=show_table, show_arch=False)
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        by_module = analyzer.by_module()
        unsupported = dict(analyzer.unsupported_ops())
    params = parameter_count(model)
    parts = {
        name: dict(params=params.get(name, 0), flops=by_module.get(name, 0))
        for name, _ in model.named_children()
        if params.get(name, 0) or by_module.get(name, 0)
    }
    return dict(
        params=info['params'],
        flops=info['flops'],
        parts=parts,
        unsupported_ops=unsupported,
        table=info['out_table'])

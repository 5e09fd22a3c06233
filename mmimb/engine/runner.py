"""The runner mmimb configs use: mmengine's, plus ``class_freq='auto'``
(and ``train_class_counts='auto'`` in evaluators)."""
import copy

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmimb.utils import resolve_auto_class_freq


def resolve_config(cfg: Config) -> Config:
    """Return a copy of ``cfg`` with every ``class_freq='auto'`` in the
    model replaced by the training set's class frequencies, and every
    ``train_class_counts='auto'`` in the evaluators by its class counts.

    The statistics come from :func:`mmimb.datasets.class_frequencies`
    (cached by dataset fingerprint, so a second run does not rescan),
    computed at most once.
    """
    cfg = copy.deepcopy(cfg)
    stats = []

    def train_stats():
        if not stats:
            from mmimb.datasets import class_frequencies
            if not cfg.get('train_dataloader'):
                raise ValueError("'auto' class statistics need a "
                                 'train_dataloader to count classes in')
            stats.append(
                class_frequencies(
                    cfg.train_dataloader.dataset,
                    default_scope=cfg.get('default_scope')))
        return stats[0]

    resolve_auto_class_freq(cfg.model, lambda: train_stats().frequencies)
    for key in ('val_evaluator', 'test_evaluator'):
        if cfg.get(key):
            resolve_auto_class_freq(cfg[key], lambda: train_stats().counts,
                                    key='train_class_counts')
    return cfg


@RUNNERS.register_module()
class MMImbRunner(Runner):
    """:class:`mmengine.runner.Runner` that resolves ``class_freq='auto'``
    in the model config from the training dataset before building the model.

    Select it with ``runner_type = 'MMImbRunner'`` (mmimb's base runtimes do)
    so that upstream ``tools/train.py`` scripts use it too.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'MMImbRunner':
        return super().from_cfg(resolve_config(cfg))

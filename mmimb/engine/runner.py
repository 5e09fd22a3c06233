"""The runner mmimb configs use: mmengine's, plus ``class_freq='auto'``
(``class_counts='auto'`` in the model, ``train_class_counts='auto'`` in
evaluators), a timestamp of its own per runner, and the deferred label
checks of the losses flushed after training."""
import copy
from typing import Dict

from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from mmimb.utils import resolve_auto_class_freq


def resolve_config(cfg: Config) -> Config:
    """Return a copy of ``cfg`` with every ``class_freq='auto'`` in the
    model replaced by the training set's class frequencies, every
    ``class_counts='auto'`` in the model (class-balanced weights) and every
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
    resolve_auto_class_freq(cfg.model, lambda: train_stats().counts,
                            key='class_counts')
    for key in ('val_evaluator', 'test_evaluator'):
        if cfg.get(key):
            resolve_auto_class_freq(cfg[key], lambda: train_stats().counts,
                                    key='train_class_counts')
    return cfg


@RUNNERS.register_module()
class MMImbRunner(Runner):
    """:class:`mmengine.runner.Runner` that resolves ``class_freq='auto'``
    in the model config from the training dataset before building the model.

    After training it raises for any bad label that the losses' deferred
    check on CUDA found (:func:`mmimb.models.losses.guard_labels`).

    It also keeps runners built in one process apart. mmengine names a
    run's logger, message hub and visualizer after its timestamp, to the
    second, and hands a later runner of the same second the earlier one's
    instances, so that its log and scalars land in the first run's
    directory. Here a timestamp already taken in this process gets a suffix
    (``20261123_080112_1``), which also names the log directory.

    Select it with ``runner_type = 'MMImbRunner'`` (mmimb's base runtimes do)
    so that upstream ``tools/train.py`` scripts use it too.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'MMImbRunner':
        return super().from_cfg(resolve_config(cfg))

    def train(self):
        """Train, then raise for any label the losses' deferred (CUDA)
        check found, including in the last batches."""
        from mmimb.models.losses import flush_label_checks
        model = super().train()
        flush_label_checks()
        return model

    def setup_env(self, env_cfg: Dict) -> None:
        super().setup_env(env_cfg)
        # Every rank builds the same runners in the same order, so the
        # suffix agrees across ranks without another broadcast.
        taken = [
            name for manager in (MessageHub, MMLogger, Visualizer)
            for name in manager._instance_dict
        ]
        base, suffix = self._timestamp, 0
        while any(name.endswith(self._timestamp) for name in taken):
            suffix += 1
            self._timestamp = f'{base}_{suffix}'

"""Let mmengine 0.10.7 resume under torch >= 2.6 with safe loading on.

torch now loads checkpoints with ``weights_only=True``. An mmengine checkpoint
holds numpy scalars, arrays and dtypes and the message hub's
:class:`~mmengine.logging.HistoryBuffer` objects; each buffer also pickled its
table of statistics methods, which needs ``getattr`` to unpickle, and
allowlisting ``getattr`` would make the safe loader unsafe. So the buffer stops
pickling that table (it is a class attribute, rebuilt on unpickling) and
exactly the remaining globals are allowlisted.
"""
import numpy as np
import torch


def _history_buffer_getstate(self) -> dict:
    return {
        k: v
        for k, v in self.__dict__.items() if k != 'statistics_methods'
    }


def checkpoint_safe_globals() -> list:
    """The globals an mmengine checkpoint needs beyond plain tensors."""
    from mmengine.logging import HistoryBuffer

    multiarray = (getattr(np, '_core', None) or np.core).multiarray
    dtype_classes = [
        cls for cls in vars(np.dtypes).values()
        if isinstance(cls, type) and cls.__name__.endswith('DType')
    ]
    return [
        multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype,
        HistoryBuffer, *dtype_classes
    ]


def allow_mmengine_checkpoints() -> None:
    """Allowlist what mmengine checkpoints hold for ``torch.load``."""
    from mmengine.logging import HistoryBuffer

    HistoryBuffer.__getstate__ = _history_buffer_getstate
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(checkpoint_safe_globals())

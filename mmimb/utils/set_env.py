"""``register_all_modules``, the hook ``mmengine.hub.get_model`` calls."""


def register_all_modules() -> None:
    """Import every module that registers components used by mmimb configs.

    ``mmengine.hub.get_model('mmimb::...')`` calls
    ``mmimb.utils.register_all_modules()`` before it builds the model, as it
    calls ``mmseg.utils.register_all_modules()`` for ``mmseg::`` paths.
    Unlike mmseg's, it sets no default scope: mmimb's configs are for two
    tasks, and their model bases name theirs (``_scope_='mmseg'`` or
    ``'mmpretrain'``, as mmengine tags bases read from ``mmseg::`` or
    ``mmpretrain::``).
    """
    import mmpretrain.utils
    import mmseg.utils

    import mmimb  # noqa: F401
    mmseg.utils.register_all_modules(init_default_scope=False)
    mmpretrain.utils.register_all_modules(init_default_scope=False)

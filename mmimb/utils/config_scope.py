"""Make ``mmimb::`` config paths resolve like ``mmseg::`` ones."""
# mmengine finds a package's configs in ``<installed path>/.mim``. For a
# name that is no installed distribution, its installed path is the folder of
# the module ``importlib.util.find_spec`` finds; that is the imported package
# for an editable install, a wheel and a checkout on PYTHONPATH alike. The
# distribution ``mmimb`` would be answered from its metadata's location,
# site-packages, where an editable install has no ``mmimb`` folder.
LOCATOR_MODULE = 'mmimb.version'


def register_config_scope() -> None:
    """Register ``mmimb`` in mmengine's table of packages with configs.

    Afterwards ``mmengine.hub.get_config('mmimb::dfa/...')``,
    ``mmengine.hub.get_model`` and ``_base_ = ['mmimb::...']`` read
    ``mmimb/.mim``: symbolic links to ``configs/`` and ``model-index.yml`` in
    a checkout, copies in a wheel.
    """
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE['mmimb'] = LOCATOR_MODULE

"""Make ``_base_ = ['mmimb::...']`` resolve like ``mmseg::`` paths do."""
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def register_config_scope() -> None:
    """Register ``mmimb`` in mmengine's package table.

    mmengine looks configs up in ``<installed path>/.mim/configs``. Its
    installed-path lookup goes through the distribution's metadata, which for
    an editable install (``pip install -e``) points at site-packages rather
    than at the source tree, so the lookup for ``mmimb`` is answered from the
    imported package itself; every other package keeps mmengine's answer.
    """
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils

    config_utils.MODULE2PACKAGE.setdefault('mmimb', 'mmimb')
    upstream = config_module.get_installed_path
    if getattr(upstream, 'mmimb_aware', False):
        return

    def get_installed_path(package: str) -> str:
        if package == 'mmimb':
            return PACKAGE_DIR
        return upstream(package)

    get_installed_path.mmimb_aware = True
    config_module.get_installed_path = get_installed_path

"""Segment a whole-slide image; see ``python tools/infer_wsi.py --help`` and
docs/wsi.md.

The implementation lives in :mod:`mmimb.cli.infer_wsi` (also installed as
the ``mmimb-infer-wsi`` command).
"""
from mmimb.cli.infer_wsi import cli

if __name__ == '__main__':
    cli()

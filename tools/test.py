"""Test with a config; see ``python tools/test.py --help``.

The implementation lives in :mod:`mmimb.cli.test` (also installed as the
``mmimb-test`` command), so that mmimb is imported before the config is
parsed and ``mmimb::`` base paths resolve.
"""
from mmimb.cli.test import cli

if __name__ == '__main__':
    cli()

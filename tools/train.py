"""Train with a config; see ``python tools/train.py --help``.

The implementation lives in :mod:`mmimb.cli.train` (also installed as the
``mmimb-train`` command), so that mmimb is imported before the config is
parsed and ``mmimb::`` base paths resolve.
"""
from mmimb.cli.train import cli

if __name__ == '__main__':
    cli()

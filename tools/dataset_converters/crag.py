"""Convert the CRAG release to gland/background labels in the mmseg layout.

    python tools/dataset_converters/crag.py SOURCE -o data/crag
        [--val-count N] [--seed 0] [--workers N]

SOURCE is the CRAG folder (train/ and valid/, each with Images/ and
Annotation/) or the folder holding it (CRAG_v2). See docs/datasets.md.
"""
import argparse

from mmimb.datasets.conversion import format_summary, run_converter_cli
from mmimb.datasets.crag import convert_crag


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='CRAG release folder')
    parser.add_argument('-o', '--out', required=True, help='output folder')
    parser.add_argument('--val-count', type=int, default=0,
                        help='training images moved to a validation split')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=0)
    args = parser.parse_args(argv)
    summary = convert_crag(args.source, args.out, val_count=args.val_count,
                           seed=args.seed, workers=args.workers)
    print(format_summary(summary))


if __name__ == '__main__':
    run_converter_cli(main)

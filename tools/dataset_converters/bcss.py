"""Convert the public BCSS release to 5-class tiles in the mmseg layout.

    python tools/dataset_converters/bcss.py SOURCE -o data/bcss
        [--tile-size 1024] [--stride N] [--grouping JSON]
        [--test-sites OL LL E2 EW GM S3] [--val-fraction 0.1] [--seed 0]
        [--min-labelled 0] [--workers N]

SOURCE is the release folder 0_Public-data-Amgad2019_0.25MPP (with
rgbs_colorNormalized/ and masks/) or the folder holding it. See
docs/datasets.md for the grouping table and the split rule.
"""
import argparse

from mmimb.datasets.bcss import TEST_SITES, convert_bcss, load_grouping
from mmimb.datasets.conversion import format_summary, run_converter_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='BCSS release folder')
    parser.add_argument('-o', '--out', required=True, help='output folder')
    parser.add_argument('--tile-size', type=int, default=1024,
                        help='tile side in pixels (DFA: 1024)')
    parser.add_argument('--stride', type=int,
                        help='distance between tiles (default: tile size)')
    parser.add_argument('--grouping', help='JSON file {"class": [codes], '
                        '..., "ignore": [codes]} (default: docs/datasets.md)')
    parser.add_argument('--test-sites', nargs='+',
                        help='TCGA site codes of the test institutions, '
                        'each present in the release (default: '
                        f'{" ".join(TEST_SITES)})')
    parser.add_argument('--val-fraction', type=float, default=0.1,
                        help='fraction of training cases used for validation')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-labelled', type=float, default=0.0,
                        help='skip tiles with a smaller labelled fraction')
    parser.add_argument('--workers', type=int, default=0)
    args = parser.parse_args(argv)
    summary = convert_bcss(
        args.source,
        args.out,
        tile_size=args.tile_size,
        stride=args.stride,
        grouping=load_grouping(args.grouping) if args.grouping else None,
        test_sites=args.test_sites,
        val_fraction=args.val_fraction,
        seed=args.seed,
        min_labelled=args.min_labelled,
        workers=args.workers)
    print(format_summary(summary))


if __name__ == '__main__':
    run_converter_cli(main)

"""Convert EBHI-Seg to 7-class labels (background + one gland class per
category) in the mmseg layout.

    python tools/dataset_converters/ebhi_seg.py EBHI-SEG -o data/ebhi_seg
        [--fractions 0.4 0.4 0.2] [--seed 0] [--group-by image|case]
        [--threshold 128] [--edge-band 0] [--workers N]

Images without a mask are reported and left out. See docs/datasets.md.
"""
import argparse

from mmimb.datasets.conversion import format_summary, run_converter_cli
from mmimb.datasets.ebhi_seg import convert_ebhi_seg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='the EBHI-SEG folder')
    parser.add_argument('-o', '--out', required=True, help='output folder')
    parser.add_argument('--fractions', type=float, nargs=3,
                        default=[0.4, 0.4, 0.2],
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='split fractions per category (authors: 4:4:2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--group-by', choices=['image', 'case'],
                        default='image',
                        help="split unit: 'image' (authors) or 'case' (file "
                        'name prefix, no case in two splits)')
    parser.add_argument('--threshold', type=int, default=128,
                        help='mask values >= threshold are gland')
    parser.add_argument('--edge-band', type=int, default=0,
                        help='mark pixels this close to a gland edge 255')
    parser.add_argument('--workers', type=int, default=0)
    args = parser.parse_args(argv)
    summary = convert_ebhi_seg(
        args.source,
        args.out,
        fractions=dict(zip(('train', 'val', 'test'), args.fractions)),
        seed=args.seed,
        group_by=args.group_by,
        threshold=args.threshold,
        edge_band=args.edge_band,
        workers=args.workers)
    print(format_summary(summary))
    missing = [s['source'] for s in summary['skipped']
               if s['reason'] == 'image without mask']
    if missing:
        print('images without a mask (left out):\n  ' + '\n  '.join(missing))


if __name__ == '__main__':
    run_converter_cli(main)

"""How far CCAR's class-frequency term separates classes, for the
long-tailed CIFAR subsets or given counts.

    python tools/analysis_tools/ccar_weight_range.py [--counts N1 N2 ...]
        [--pivot 0.75] [--base e]

Prints, for frequencies normalised to sum to 1 (the paper, ``freq_norm=
'sum'``) and by the largest class (``freq_norm='max'``, mmimb's option),
the largest ratio of the weight of the rarest class to that of the most
frequent one at the same confidence (``class_weight_ratio``).
"""
import argparse

from mmimb.datasets import long_tailed_counts
from mmimb.engine.launch import run_cli
from mmimb.models.losses import class_weight_ratio
from mmimb.models.losses.ccar_loss import FREQ_NORMS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--counts', type=int, nargs='+',
                        help='samples per class (default: CIFAR-10-LT and '
                        'CIFAR-100-LT at imbalance 10, 50, 100, 200)')
    parser.add_argument('--pivot', type=float, default=0.75)
    parser.add_argument('--base', default='e',
                        help="'e' or a number >= 2")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    base = args.base if args.base == 'e' else float(args.base)
    if args.counts:
        cases = [('given counts', args.counts)]
    else:
        cases = [(f'CIFAR-{c}-LT IF {f}', long_tailed_counts(n, f, c))
                 for c, n in ((10, 5000), (100, 500))
                 for f in (10, 50, 100, 200)]
    print(f'largest Omega(rarest) / Omega(most frequent) at one confidence, '
          f'pivot {args.pivot}, base {args.base}')
    print(f"{'counts':<22}" + ''.join(f"{'freq_norm=' + n:>16}"
                                      for n in FREQ_NORMS))
    for name, counts in cases:
        ratios = [class_weight_ratio(counts, args.pivot, base, True, norm)
                  for norm in FREQ_NORMS]
        print(f'{name:<22}' + ''.join(f'{r:>16.3f}' for r in ratios))


if __name__ == '__main__':
    run_cli(main)

"""Parameters and FLOPs of a model config (mmpretrain or mmseg), per part,
and the overhead over a baseline config.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
        [--baseline CONFIG] [--cfg-options k=v ...] [--show-table]
        [--out-json FILE]

Example (the CSBA overhead on CIFAR ResNet-32, docs/csba.md):

    python tools/analysis_tools/get_flops.py \
        configs/csba/csba-ce_resnet32_1xb128-200e_cifar10-lt-if100.py \
        --shape 32 --baseline \
        configs/csba/plain-ce_resnet32_1xb128-200e_cifar10-lt-if100.py

FLOPs follow mmengine.analysis: one multiply-add is one FLOP, for one image;
operators without a formula (softmax, pooling, ...) count as zero and are
listed.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmimb.engine.complexity import (build_model_for_analysis,
                                     model_complexity)
from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of a model config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[224, 224],
        help='input image size: H W, or one size for a square image')
    parser.add_argument(
        '--baseline', help='a second config; its counts and the overhead '
        'of CONFIG over it are printed too')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of CONFIG (not of --baseline), as key=value')
    parser.add_argument(
        '--show-table', action='store_true',
        help="also print mmengine's per-module table")
    parser.add_argument('--out-json', help='also write the counts here')
    return parser.parse_args(argv)


def _load(path, options=None):
    if not osp.isfile(path):
        raise ConfigError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _human(value: float) -> str:
    for unit, size in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(value) >= size:
            return f'{value / size:.3f}{unit}'
    return f'{value:.0f}'


def _rows(name: str, result: dict):
    yield f'{name}: total', result['params'], result['flops']
    for part, counts in result['parts'].items():
        yield f'{name}: {part}', counts['params'], counts['flops']


def _overhead(value: float, base: float) -> str:
    diff = value - base
    rel = f' ({100.0 * diff / base:+.1f}%)' if base else ''
    return f'{"+" if diff >= 0 else "-"}{_human(abs(diff))}{rel}'


def main(argv=None):
    args = parse_args(argv)
    if len(args.shape) == 1:
        args.shape = args.shape * 2
    results = {}
    for name, path, options in (('model', args.config, args.cfg_options),
                                ('baseline', args.baseline, None)):
        if path is None:
            continue
        model = build_model_for_analysis(_load(path, options))
        results[name] = dict(
            config=path, **model_complexity(model, args.shape,
                                            args.show_table))
    for name, result in results.items():
        if args.show_table:
            print(f'{name} ({result["config"]}):{result["table"]}')
    print(f'input shape: (1, 3, {args.shape[0]}, {args.shape[1]})')
    print(f'{"":40s} {"params":>12s} {"FLOPs":>12s}')
    for name, result in results.items():
        print(f'[{name}] {result["config"]}')
        for label, params, flops in _rows(name, result):
            print(f'  {label:38s} {_human(params):>12s} {_human(flops):>12s}')
    if 'baseline' in results:
        model, base = results['model'], results['baseline']
        print(f'overhead of model over baseline: params '
              f'{_overhead(model["params"], base["params"])}, FLOPs '
              f'{_overhead(model["flops"], base["flops"])}')
    for name, result in results.items():
        if result['unsupported_ops']:
            ops = ', '.join(f'{op} x{n}' for op, n in
                            sorted(result['unsupported_ops'].items()))
            print(f'[{name}] counted as 0 FLOPs: {ops}')
    if args.out_json:
        out = {
            name: {k: v for k, v in result.items() if k != 'table'}
            for name, result in results.items()
        }
        tmp = args.out_json + '.tmp'
        os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
        with open(tmp, 'w') as f:
            json.dump(dict(shape=args.shape, **out), f, indent=2)
        os.replace(tmp, args.out_json)


if __name__ == '__main__':
    run_cli(main)

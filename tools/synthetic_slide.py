"""Write a generated whole-slide image (tissue pieces on glass) as a
pyramidal TIFF with mpp metadata, and optionally its label mask.

    python tools/synthetic_slide.py OUT.tif [--size 2048 3072] [--mpp 0.5]
        [--levels 3] [--seed 0] [--config CONFIG] [--mask MASK.tif]

The tissue is the generator of SyntheticTissueDataset; with ``--config``
the classes are that config's training set's (``class_specs``), so that a
model trained on it can be tried on the slide with tools/infer_wsi.py
(docs/wsi.md). The mask holds one label per pixel, 255 on glass.
"""
import argparse

from mmengine.config import Config

from mmimb.datasets import synthetic_slide, write_pyramidal_tiff
from mmimb.datasets.synthetic_tissue import DEFAULT_CLASS_SPECS
from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='slide file to write (.tif)')
    parser.add_argument('--size', type=int, nargs=2, default=[2048, 3072],
                        metavar=('HEIGHT', 'WIDTH'))
    parser.add_argument('--mpp', type=float, default=0.5,
                        help='microns per pixel recorded in the file')
    parser.add_argument('--levels', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tissue-fraction', type=float, default=0.5)
    parser.add_argument('--config', help='take the classes from this '
                        "config's train_dataloader.dataset.class_specs")
    parser.add_argument('--mask', help='also write the labels here (.tif)')
    args = parser.parse_args(argv)
    specs = DEFAULT_CLASS_SPECS
    if args.config:
        dataset = Config.fromfile(args.config).train_dataloader.dataset
        if not dataset.get('class_specs'):
            raise ConfigError(f'{args.config}: train_dataloader.dataset has '
                              'no class_specs (a SyntheticTissueDataset '
                              'config was expected)')
        specs = dataset.class_specs
    image, labels = synthetic_slide(
        *args.size,
        seed=args.seed,
        class_specs=specs,
        tissue_fraction=args.tissue_fraction)
    write_pyramidal_tiff(args.out, image, args.mpp, levels=args.levels)
    if args.mask:
        write_pyramidal_tiff(args.mask, labels, args.mpp, levels=1)
    print(f'{args.out}: {args.size[1]} x {args.size[0]} px at {args.mpp} '
          f'um/px, {args.levels} levels' +
          (f'; labels in {args.mask}' if args.mask else ''))


if __name__ == '__main__':
    run_cli(main)

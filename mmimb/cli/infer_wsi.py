"""Segment a whole-slide image with an MMSegmentation (or mmimb) model.

    python tools/infer_wsi.py CONFIG CHECKPOINT SLIDE --out DIR
        [--mpp 0.25] [--mpp-slide MPP] [--tile 1024] [--overlap 128]
        [--blend linear|gaussian] [--batch-size 4] [--device cpu|cuda]
        [--amp] [--tissue otsu|none] [--annotation MASK] [--restart]

Writes DIR/<slide>_labels.tif (pyramidal label map at the inference mpp),
DIR/<slide>_overlay.png and DIR/<slide>_report.{json,csv}; an interrupted
run resumes when started again with the same options. ``mmimb-infer-wsi``
is the same command; docs/wsi.md explains the outputs.
"""
import argparse
import sys

from mmengine.config import DictAction

from mmimb.engine.launch import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Whole-slide segmentation: streamed, resumable, with an '
        'overlay and a tissue report')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('slide', help='slide file (OpenSlide formats, '
                        'pyramidal TIFF, OME-TIFF)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--mpp', type=float, default=0.25,
        help='inference resolution in microns per pixel: the one the model '
        'was trained at (default 0.25)')
    parser.add_argument(
        '--mpp-slide', type=float,
        help="the slide's level-0 microns per pixel, for slides that do not "
        'record it (or record it wrongly)')
    parser.add_argument('--mpp-tolerance', type=float, default=0.05,
                        help='relative mpp difference under which a level '
                        'is used without resampling (default 0.05)')
    parser.add_argument('--tile', type=int, default=1024,
                        help='tile side in pixels at --mpp (default 1024)')
    parser.add_argument('--overlap', type=int, default=128,
                        help='least overlap of neighbouring tiles in pixels '
                        '(default 128, at most tile/2)')
    parser.add_argument('--blend', choices=['linear', 'gaussian'],
                        default='linear',
                        help='weights of overlapping logits (default linear)')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='tiles per forward pass (default 4)')
    parser.add_argument('--device', help='cpu, cuda or cuda:N (default: the '
                        'GPU if there is one)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on a GPU, bfloat16 on '
                        'the CPU')
    parser.add_argument('--reader', choices=['auto', 'openslide', 'tifffile'],
                        default='auto', help='slide reader (default auto)')
    parser.add_argument('--tissue', choices=['otsu', 'none'], default='otsu',
                        help='tissue detection on a thumbnail, or none to '
                        'segment every tile (default otsu)')
    parser.add_argument('--tissue-mpp', type=float, default=8.0,
                        help='resolution of the tissue thumbnail (default 8)')
    parser.add_argument('--annotation', help='slide-level label mask to '
                        'evaluate against (TIFF, PNG or .npy)')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='unannotated value in the mask (default 255)')
    parser.add_argument('--overlay-size', type=int, default=1024,
                        help='longest side of the overlay picture')
    parser.add_argument('--restart', action='store_true',
                        help="discard an unfinished run's state in --out")
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, as key=value pairs')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmimb.apis.wsi_segmenter import WSISegmenter, check_slide

    # A bad slide fails in a second, before the model is built.
    check_slide(args.slide, args.mpp, args.mpp_slide, args.reader,
                args.mpp_tolerance)
    segmenter = WSISegmenter(
        args.config,
        args.checkpoint,
        device=args.device,
        mpp=args.mpp,
        tile=args.tile,
        overlap=args.overlap,
        blend=args.blend,
        batch_size=args.batch_size,
        amp=args.amp,
        tissue=args.tissue,
        tissue_mpp=args.tissue_mpp,
        mpp_tolerance=args.mpp_tolerance,
        cfg_options=args.cfg_options,
        progress=not args.no_progress)
    try:
        result = segmenter(
            args.slide,
            args.out,
            mpp_slide=args.mpp_slide,
            reader=args.reader,
            annotation=args.annotation,
            ignore_index=args.ignore_index,
            restart=args.restart,
            overlay_size=args.overlay_size)
    except KeyboardInterrupt:
        print('interrupted: run the same command again to resume',
              file=sys.stderr)
        sys.exit(130)
    report = result.report
    lines = [
        f'label map:  {result.label_map} ({report["label_map_size"][0]} x '
        f'{report["label_map_size"][1]} px at {report["mpp"][0]:.4g} um/px)',
        f'overlay:    {result.overlay}',
        f'report:     {result.report_json}, {result.report_csv}',
        f'tissue:     {report["tissue_area_mm2"]:.3f} mm^2; tiles '
        f'{report["tiles"]["tissue"]} of {report["tiles"]["total"]} '
        f'({report["tiles"]["inferred"]} inferred by this run) in '
        f'{report["time_s"]:.1f} s',
    ]
    for row in report['classes']:
        lines.append(f'  {row["class"]:<16} {row["area_mm2"]:10.4f} mm^2 '
                     f'{100 * row["fraction"]:6.2f}%')
    if 'evaluation' in report:
        ev = report['evaluation']
        mean = ('n/a' if ev['mean_dice'] is None else
                f'{ev["mean_dice"]:.4f} / {ev["mean_iou"]:.4f}')
        lines.append(f'evaluation: mean Dice / IoU {mean}')
    print('\n'.join(lines))


def cli() -> None:
    """Console entry point (``mmimb-infer-wsi``)."""
    run_cli(main)

"""What ``tools/train.py`` and ``tools/test.py`` share.

The flags and their meaning follow MMSegmentation's and MMPretrain's tools;
the task (segmentation or classification) is read from the config's
``default_scope``, or inferred from the model type.
"""
import argparse
import atexit
import logging
import os
import os.path as osp
import sys
from typing import Any, List, Tuple

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope

from .config_check import ConfigError, check_config


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, as key=value pairs; lists '
        'as key="[a,b]" or key=a,b, no white space')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads of this process (default: torch\'s, one per '
        'physical core)')
    # torchrun passes --local-rank to the script.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(path: str, args: argparse.Namespace) -> Config:
    """Load a config and apply the common flags.

    Raises:
        ConfigError: If the file does not exist.
    """
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f'--threads {args.threads}: expected a '
                              'positive number of threads')
        import torch
        torch.set_num_threads(args.threads)
    if not osp.isfile(path):
        raise ConfigError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def _distribute_on_cpu(cfg: Config) -> None:
    """Make a distributed launch work without a GPU: gloo instead of nccl,
    and DDP over CPU modules (which take no device ids)."""
    import torch
    if torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('no GPU: distributed backend nccl replaced by gloo',
                  logger='current', level=logging.WARNING)
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    # mmengine's pytorch launcher calls torch.cuda.set_device before creating
    # the process group; an existing group makes it skip that step.
    if cfg.launcher == 'pytorch' and \
            not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=dist_cfg['backend'])
        # Left to interpreter shutdown, the gloo group can abort the process
        # ("terminate called without an active exception") after a
        # successful run.
        atexit.register(torch.distributed.destroy_process_group)


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision: mmengine's
    ``AmpOptimWrapper`` (fp16 with dynamic loss scaling) on a GPU, mmimb's
    :class:`~mmimb.engine.CPUAmpOptimWrapper` (bf16, no loss scaling)
    without one. A CPU without bf16 instructions trains in fp32, with one
    line saying so.

    Raises:
        ConfigError: Without an ``optim_wrapper``, with one that holds no
            ``optimizer`` (several wrappers, as for
            ``MultiOptimWrapperConstructor``), or with a wrapper other than
            OptimWrapper.
    """
    import torch

    from .optimizers.cpu_amp_optim_wrapper import cpu_bf16_support
    if not cfg.get('optim_wrapper'):
        raise ConfigError('--amp: the config has no optim_wrapper')
    if 'optimizer' not in cfg.optim_wrapper:
        raise ConfigError(
            '--amp: optim_wrapper holds no optimizer but '
            f'{", ".join(map(str, cfg.optim_wrapper))}; for several '
            "wrappers set each one's type in the config instead")
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        return
    if wrapper != 'OptimWrapper':
        raise ConfigError('--amp needs optim_wrapper.type=OptimWrapper, got '
                          f'{wrapper!r}')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        return
    supported, reason = cpu_bf16_support()
    if not supported:
        print_log(f'--amp: no GPU and {reason}; training in fp32',
                  logger='current', level=logging.WARNING)
        return
    cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'


def build_runner(cfg: Config, mode: str):
    """Check the config, then build its runner (``MMImbRunner`` unless the
    config names another ``runner_type``)."""
    cfg.default_scope = check_config(cfg, mode)
    if cfg.setdefault('launcher', 'none') != 'none':
        _distribute_on_cpu(cfg)
    init_default_scope(cfg.default_scope)
    cfg.setdefault('runner_type', 'MMImbRunner')
    return RUNNERS.build(cfg)


def add_checkpoint_args(parser: argparse.ArgumentParser,
                        num_batches: int) -> None:
    """The arguments of the tools that analyse a checkpoint on batches of a
    config's dataloader (:func:`load_checkpoint_and_batches`)."""
    import torch
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--num-batches', type=int, default=num_batches)
    parser.add_argument(
        '--split', choices=['train', 'val', 'test'], default='train',
        help='dataloader whose batches are analysed')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the dataloader\'s sampler')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, as key=value pairs')


def load_checkpoint_and_batches(
        args: argparse.Namespace) -> Tuple[Any, Any, List[dict]]:
    """The model of ``args.config`` with the weights of ``args.checkpoint``,
    and ``args.num_batches`` batches of the config's dataloader of
    ``args.split`` (the arguments of :func:`add_checkpoint_args`).

    Returns:
        tuple: ``(model, dataset, batches)``; fewer batches than asked for
        (a small split) with a warning.

    Raises:
        ConfigError: If a file does not exist, ``--num-batches`` is not
            positive, the config has no dataloader of the split, fails its
            checks, or the split gives no batch.
    """
    from itertools import islice

    from mmengine.registry import MODELS
    from mmengine.runner import Runner, load_checkpoint

    from .runner import resolve_config
    if args.num_batches < 1:
        raise ConfigError(f'--num-batches={args.num_batches}; expected a '
                          'positive number')
    if not osp.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(
        args.config,
        argparse.Namespace(local_rank=0, launcher='none', work_dir=None,
                           threads=None, cfg_options=args.cfg_options))
    loader_key = f'{args.split}_dataloader'
    if not cfg.get(loader_key):
        raise ConfigError(f'the config has no {loader_key} for --split '
                          f'{args.split}')
    init_default_scope(
        check_config(cfg, 'train' if args.split != 'test' else 'test'))
    cfg = resolve_config(cfg)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device)
    loader = Runner.build_dataloader(cfg[loader_key], seed=args.seed)
    batches = list(islice(loader, args.num_batches))
    if not batches:
        raise ConfigError(f'the {args.split} set gave no batch')
    if len(batches) < args.num_batches:
        print(f'warning: the {args.split} set gave only {len(batches)} '
              'batches')
    return model, loader.dataset, batches


def run_cli(main) -> None:
    """Run a tool's ``main``, turning config errors into one-line messages
    and exit status 2."""
    try:
        main()
    except ConfigError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)

"""How far bf16 autocast moves a checkpoint's gradients from fp32's, and
whether keeping some module types in fp32 brings them closer.

    python tools/analysis_tools/bf16_gradient_error.py CONFIG CHECKPOINT
        [--num-batches 4] [--keep-fp32 SPEC ...] [--channels-last]
        [--split train] [--seed 0] [--device cuda|cpu]
        [--cfg-options k=v ...]

The model runs in training mode (batch statistics, as in training) on
``--num-batches`` batches of the config's dataloader; the gradients of the
summed losses are taken once in fp32 (the reference) and once per variant
under ``torch.autocast(dtype=torch.bfloat16)``: plain bf16, and for each
``--keep-fp32`` SPEC (module class names joined by commas, for example
``BatchNorm2d`` or ``BatchNorm2d,Linear``) bf16 with those modules in fp32
(mmimb.analysis.precision.modules_in_fp32). Every variant has the same
weights and random state (CPU and device); on CUDA the reference
is true fp32 (TF32 off). Prints, per variant, the loss and the
relative error ``||g - g_fp32|| / ||g_fp32||`` of all gradients and of the
model's top-level parts (backbone, neck, head, ...), and their cosine.
"""
import argparse
import copy
from types import SimpleNamespace

import torch
from torch import nn

from mmimb.analysis.precision import gradient_error, modules_in_fp32
from mmimb.engine.config_check import ConfigError
from mmimb.engine.hooks import ChannelsLastHook
from mmimb.engine.launch import (add_checkpoint_args,
                                 load_checkpoint_and_batches, run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='bf16 against fp32 gradients of a checkpoint')
    add_checkpoint_args(parser, num_batches=4)
    parser.add_argument(
        '--keep-fp32', nargs='+', default=[], metavar='SPEC',
        help='variants with these module classes in fp32: each SPEC is '
        'class names joined by commas (torch.nn or the model\'s own)')
    parser.add_argument(
        '--channels-last', action='store_true',
        help='run the bf16 variants in the channels-last memory format')
    return parser.parse_args(argv)


def module_types(spec: str, model: nn.Module) -> tuple:
    """The module classes named in ``spec`` (comma-separated), looked up
    among the model's own modules' classes and torch.nn."""
    types = []
    for name in filter(None, spec.split(',')):
        # Every class of that name: mmcv's Conv2d subclasses torch's, and a
        # model may hold both.
        found = {type(m) for m in model.modules() if type(m).__name__ == name}
        cls = getattr(nn, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            found.add(cls)
        if not found:
            raise ConfigError(
                f'--keep-fp32 {spec!r}: {name!r} is neither a module class '
                'of the model nor of torch.nn')
        types.extend(sorted(found, key=lambda c: c.__module__))
    if not types:
        raise ConfigError(f'--keep-fp32 {spec!r}: expected class names')
    return tuple(types)


def random_state(device: str, state=None):
    """The random state of the CPU and of ``device`` (dropout, drop-path);
    with ``state``, restore it."""
    accelerator = getattr(torch, device) if device != 'cpu' else None
    if state is None:
        return (torch.get_rng_state(),
                accelerator.get_rng_state() if accelerator else None)
    torch.set_rng_state(state[0])
    if accelerator:
        accelerator.set_rng_state(state[1])


def gradients(model: nn.Module, batches: list, bf16: bool, device: str):
    """The summed loss of ``batches`` and the parameters' gradients."""
    model.zero_grad(set_to_none=True)
    total = 0.0
    for batch in batches:
        data = model.data_preprocessor(copy.copy(batch), True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        total += loss.item()
    return total, {
        name: p.grad.detach().clone()
        for name, p in model.named_parameters() if p.grad is not None
    }


def main(argv=None):
    args = parse_args(argv)
    model, _, batches = load_checkpoint_and_batches(args)
    variants = {'bf16': ()}
    variants.update({f'bf16, {spec} in fp32': module_types(spec, model)
                     for spec in args.keep_fp32})
    # Batch statistics, and no optimizer step: the weights stay as loaded.
    model.train()
    device = torch.device(args.device).type
    if device == 'cuda':
        # The reference in true fp32, not TF32 (cuDNN's default).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    rng = random_state(device)
    loss32, reference = gradients(model, batches, False, device)
    groups = sorted({name.split('.')[0] for name in reference})
    print(f'{len(batches)} batches of the {args.split} set; fp32 loss '
          f'{loss32:.5f}; relative gradient error ||g - g_fp32|| / '
          '||g_fp32||')
    print('| variant | modules in fp32 | loss | all | ' +
          ' | '.join(groups) + ' | cosine |')
    print('|' + ' --- |' * (len(groups) + 5))
    if args.channels_last:
        ChannelsLastHook().before_run(SimpleNamespace(model=model))
    for name, types in variants.items():
        random_state(device, rng)
        with modules_in_fp32(model, types) as kept:
            loss, grads = gradients(model, batches, True, device)
        error = gradient_error(reference, grads, groups)
        print(f'| {name} | {kept} | {loss:.5f} | {error["all"]:.4f} | ' +
              ' | '.join(f'{error[g]:.4f}' for g in groups) +
              f' | {error["cosine"]:.5f} |')


if __name__ == '__main__':
    run_cli(main)

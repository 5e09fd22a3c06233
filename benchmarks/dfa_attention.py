"""Cost of the DFA bias, measured side by side.

    python benchmarks/dfa_attention.py [--repeat 10] [--device cpu|cuda]
        [--dtype float32|bfloat16] [--batch 8] [--grid 64] [--head-batch 8]
        [--classes 5 20]

1. DynamicFocalAttention with a learned bias against the same module with
   ``bias_mode='none'`` (plain SDPA): image tokens N = grid x grid, C class
   tokens, width 256, 8 heads. Target: at most 3% more time, no more memory.
   ``bias_mode='fixed'`` (the same mask, without a gradient) is shown too:
   PyTorch's fused CPU kernel takes a float mask but not one that needs a
   gradient, so the learned bias runs the math path on the CPU. Below each
   table: the attention operators and kernels one forward plus backward of
   each variant ran, from the profiler (which SDPA backend was chosen:
   flash, memory-efficient, cuDNN or math).
2. The whole DFAHead (2 layers, width 256, 8 heads, MLP 2048) against
   mmseg's SegmenterMaskTransformerHead with the number of layers that
   brings its parameter count closest, on a (B, 256, grid, grid) feature
   map.

Time: one forward plus backward, the median of ``--repeat`` rounds in which
the variants alternate (so that a shared machine's load drifts over all of
them alike), after a warm-up round. On CUDA the wall clock (synchronised);
on the CPU the process's CPU time, which other processes on a shared machine
disturb far less than the wall clock. Memory: on CUDA the peak allocated
during the step; on the CPU, which keeps no allocator statistics, the bytes
of the distinct tensors autograd saves for the backward pass (activation
memory, what a bias could add). Prints each variant's ratio to its
reference.
"""
import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmimb.models import DFAHead, DynamicFocalAttention  # noqa: E402

WIDTH, HEADS = 256, 8
# SDPA's backend operators (aten::_scaled_dot_product_flash_attention...,
# _efficient_attention_backward, ..._math) and attention kernels.
ATTENTION_NAMES = re.compile(r'scaled_dot_product_|attention|flash|fmha', re.I)


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def step(fn, inputs):
    out = fn(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    out.float().square().mean().backward()


def saved_bytes(fn, inputs):
    seen = {}

    def pack(t):
        seen[(t.data_ptr(), t.dtype, tuple(t.shape))] = \
            t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(fn, inputs)
    return sum(seen.values())


def memory(fn, inputs, device):
    if device != 'cuda':
        return saved_bytes(fn, inputs)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step(fn, inputs)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def compare(variants, inputs, device, repeat):
    """Median time and memory of each variant, rounds interleaved."""
    clock = time.perf_counter if device == 'cuda' else time.process_time
    times = {name: [] for name in variants}
    for round_ in range(repeat + 1):
        for name, fn in variants.items():
            sync(device)
            start = clock()
            step(fn, inputs)
            sync(device)
            if round_:
                times[name].append(clock() - start)
    return {
        name: (statistics.median(times[name]),
               memory(fn, inputs, device))
        for name, fn in variants.items()
    }


def attention_kernels(fn, inputs, device):
    """The SDPA backend operators and the attention kernels (on CUDA) of one
    forward plus backward of ``fn``, as the profiler names them."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        step(fn, inputs)
        sync(device)
    names = set()
    for event in prof.events():
        kernel = event.device_type == DeviceType.CUDA
        if (kernel or event.name.startswith('aten::_')) and \
                ATTENTION_NAMES.search(event.name):
            names.add(event.name[:70])
    return sorted(names)


def report(title, results, reference):
    ref_time, ref_mem = results[reference]
    print(f'\n{title}')
    print(f'{"variant":<34} {"time ms":>9} {"x ref":>7} {"memory MiB":>11} '
          f'{"x ref":>7}')
    for name, (t, mem) in results.items():
        print(f'{name:<34} {1e3 * t:9.1f} {t / ref_time:7.3f} '
              f'{mem / 2**20:11.1f} {mem / ref_mem:7.3f}')


def attention_case(num_classes, args):
    gen = torch.Generator().manual_seed(0)
    n = args.grid * args.grid
    query = torch.randn(args.batch, n, WIDTH, generator=gen)
    key = torch.randn(args.batch, num_classes, WIDTH, generator=gen)
    query = query.to(args.device, args.dtype).requires_grad_()
    key = key.to(args.device, args.dtype).requires_grad_()
    freq = torch.linspace(1, 10, num_classes).tolist()
    variants = {}
    for mode in ('none', 'fixed', 'learned'):
        torch.manual_seed(0)
        attn = DynamicFocalAttention(
            WIDTH, HEADS, num_classes, bias_mode=mode,
            class_freq=freq).to(args.device, args.dtype)
        variants[f'DFA attention, bias {mode}'] = attn
    kernels = {name: attention_kernels(fn, (query, key), args.device)
               for name, fn in variants.items()}
    return compare(variants, (query, key), args.device, args.repeat), kernels


def segmenter_layers_matching(params, num_classes):
    from mmseg.models.decode_heads import SegmenterMaskTransformerHead

    def build(layers):
        return SegmenterMaskTransformerHead(
            in_channels=WIDTH, channels=WIDTH, num_classes=num_classes,
            num_layers=layers, num_heads=HEADS, embed_dims=WIDTH,
            drop_path_rate=0.0)

    best = min(range(1, 13),
               key=lambda k: abs(sum(p.numel() for p in build(k).parameters())
                                 - params))
    return build(best), best


def head_case(num_classes, args):
    torch.manual_seed(0)
    dfa = DFAHead(in_channels=WIDTH, channels=WIDTH, num_classes=num_classes,
                  class_freq=torch.linspace(1, 10, num_classes).tolist())
    dfa_params = sum(p.numel() for p in dfa.parameters())
    segmenter, layers = segmenter_layers_matching(dfa_params, num_classes)
    seg_params = sum(p.numel() for p in segmenter.parameters())
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(args.head_batch, WIDTH, args.grid, args.grid,
                        generator=gen).to(args.device).requires_grad_()
    variants = {
        f'Segmenter head, {layers} layers, {seg_params / 1e6:.2f}M':
        segmenter.to(args.device).train(),
        f'DFAHead, 2 layers, {dfa_params / 1e6:.2f}M': dfa.to(
            args.device).train(),
    }

    def run(head):
        return lambda x: head([x])

    return compare({k: run(v) for k, v in variants.items()}, (feats, ),
                   args.device, args.repeat)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', default='float32',
                        choices=['float32', 'bfloat16'],
                        help='dtype of the attention comparison')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--grid', type=int, default=64,
                        help='image tokens per side')
    parser.add_argument('--head-batch', type=int, default=8,
                        help='batch of the whole-head comparison')
    parser.add_argument('--classes', type=int, nargs='+', default=[5, 20])
    parser.add_argument('--skip-heads', action='store_true')
    args = parser.parse_args(argv)
    args.dtype = getattr(torch, args.dtype)
    print(f'torch {torch.__version__}, device {args.device}, {args.dtype}, '
          f'{torch.get_num_threads()} threads, median of {args.repeat} '
          f'interleaved rounds; N = {args.grid}x{args.grid} tokens, width '
          f'{WIDTH}, {HEADS} heads')
    for c in args.classes:
        results, kernels = attention_case(c, args)
        report(f'DFA attention, batch {args.batch}, C = {c}', results,
               'DFA attention, bias none')
        for name, names in kernels.items():
            print(f'  {name}: {", ".join(names) or "no attention op"}')
    if args.skip_heads:
        return
    for c in args.classes:
        results = head_case(c, args)
        report(f'whole head, batch {args.head_batch}, C = {c}', results,
               next(iter(results)))


if __name__ == '__main__':
    main()

"""The mask codec against the library code it stands in for.

One crowded image (default 1000 elliptic cells, box side 15-40 px, on
2500x1987 pixels, 28x28 mask-head probabilities per cell), three
comparisons on the same input, each checked for identical output:

* **encode**: :func:`mmseg_cells.mask_codec.encode_crop_rle` (run lengths
  from the box crop, compressed by ``pycocotools.mask.frPyObjects``) vs
  ``pycocotools.mask.encode`` of the full-size mask (what mmdet's
  ``encode_mask_results`` runs; one reused full-size buffer here, the
  cheapest way to feed it). Outputs must be byte-identical. On the first
  ``--full-masks`` cells, as the decode comparison: the library side
  handles ``H x W`` pixels per cell.
* **decode**: :func:`mmseg_cells.mask_codec.rle_to_crop` (only the crop is
  filled) vs ``pycocotools.mask.decode`` of the full-size mask, cut to the
  same crop. Crops must be equal.
* **paste**: :func:`mmseg_cells.mask_codec.paste_mask_crop` (numpy, one
  box) vs mmdet's ``_do_paste_mask(..., skip_empty=True)`` (torch), called
  one box at a time as ``FCNMaskHead`` does on the CPU; thresholded at 0.5,
  crops and offsets must be equal. Peak memory (``ru_maxrss`` of a child
  process minus its RSS before pasting) is reported for both and for
  mmdet's batched call (all ``--batched`` boxes at once, as on the GPU),
  which pastes every box into the boxes' joint region: its memory grows
  with ``boxes x region``, so only a few boxes are run.

Times are medians of ``--reps`` interleaved repetitions (A B, B A, ...);
ratios are library / ours per repetition (median). torch runs with
``--threads`` threads (default 1: mmdet's per-box paste is hundreds of
tiny operators, which stall on a busy 2-core machine with 2 threads).

Usage (from the repository root)::

    python benchmarks/codec_vs_library.py [--masks 1000] [--height 2500]
        [--width 1987] [--reps 5] [--full-masks 50] [--batched 10]
        [--threads 1] [--seed 0] [--no-record]

Results are printed and appended to ``benchmarks/RESULTS.md`` under
``## codec_vs_library``.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_record_args, append_result,  # noqa: E402
                    interleaved, ratio_summary)

__all__ = ['CellSet', 'main', 'make_cells']

BENCHMARK = 'codec_vs_library'
MASK_SIZE = 28


class CellSet:
    """Boxes, binary crops and mask-head probabilities of synthetic cells.

    Attributes:
        height, width (int): Image size.
        boxes (np.ndarray): (N, 4) float32 ``x1, y1, x2, y2``.
        crops (list): N bool ellipse crops filling each box's pixel range.
        offsets (np.ndarray): (N, 2) int ``(x0, y0)`` of each crop.
        probs (np.ndarray): (N, 28, 28) float32 probabilities (a soft
            ellipse plus noise), as a mask head would give them.
    """

    def __init__(self, height: int, width: int, boxes: np.ndarray,
                 crops: List[np.ndarray], offsets: np.ndarray,
                 probs: np.ndarray) -> None:
        self.height, self.width = height, width
        self.boxes, self.crops = boxes, crops
        self.offsets, self.probs = offsets, probs


def make_cells(n: int, height: int, width: int, seed: int) -> CellSet:
    """``n`` cells with box sides uniform in 15-40 px anywhere in the
    image (some partly outside, clipped as detections are)."""
    rng = np.random.default_rng(seed)
    wh = rng.uniform(15, 40, (n, 2))
    xy = rng.uniform(-10, [width - 10, height - 10], (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    boxes = boxes.astype(np.float32)
    crops, offsets = [], np.zeros((n, 2), np.int64)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        x0, y0 = int(np.floor(x1)), int(np.floor(y1))
        w, h = int(np.ceil(x2)) - x0, int(np.ceil(y2)) - y0
        yy, xx = np.mgrid[:h, :w] + 0.5
        r = (((yy - h / 2) / (h / 2))**2 + ((xx - w / 2) / (w / 2))**2)
        crops.append(r <= 0.9)
        offsets[i] = (x0, y0)
    g = (np.arange(MASK_SIZE) + 0.5) / MASK_SIZE * 2 - 1
    r = g[:, None]**2 + g[None, :]**2
    soft = 1 / (1 + np.exp((r - 0.8) * 12))
    probs = np.clip(soft + rng.normal(0, 0.1, (n, MASK_SIZE, MASK_SIZE)), 0,
                    1).astype(np.float32)
    return CellSet(height, width, boxes, crops, offsets, probs)


def _compare(ours: Callable[[], object], library: Callable[[], object],
             reps: int, identical: bool) -> Dict[str, float]:
    """Interleaved timing of ``ours`` and ``library``: median ms of each,
    median per-repetition ratio library / ours, and ``identical``."""
    t = interleaved({'ours': ours, 'library': library}, reps)
    return {
        'ours_ms': float(np.median(t['ours'])) * 1e3,
        'library_ms': float(np.median(t['library'])) * 1e3,
        'ratio': ratio_summary(t['library'], t['ours'])[0],
        'identical': identical
    }


def bench_encode(cells: CellSet, reps: int, k: int) -> Dict[str, float]:
    """encode_crop_rle vs pycocotools.mask.encode of the full mask, on
    the first ``k`` cells."""
    import pycocotools.mask as maskUtils

    from mmseg_cells.mask_codec import encode_crop_rle
    h, w = cells.height, cells.width
    full = np.zeros((h, w), np.uint8, order='F')
    items = list(zip(cells.crops[:k], cells.offsets[:k].tolist()))

    def ours():
        return [
            encode_crop_rle(c, x0, y0, h, w)['counts']
            for c, (x0, y0) in items
        ]

    def library():
        out = []
        for c, (x0, y0) in items:
            y1, x1 = min(y0 + c.shape[0], h), min(x0 + c.shape[1], w)
            full[y0:y1, x0:x1] = c[:y1 - y0, :x1 - x0]
            out.append(maskUtils.encode(full)['counts'].decode('ascii'))
            full[y0:y1, x0:x1] = 0
        return out

    return _compare(ours, library, reps, ours() == library())


def bench_decode(cells: CellSet, reps: int, k: int) -> Dict[str, float]:
    """rle_to_crop vs pycocotools.mask.decode cut to the same crop, on
    the first ``k`` cells."""
    import pycocotools.mask as maskUtils

    from mmseg_cells.mask_codec import encode_crop_rle, rle_to_crop
    h, w = cells.height, cells.width
    rles = [
        encode_crop_rle(c, x0, y0, h, w)
        for c, (x0, y0) in zip(cells.crops[:k], cells.offsets[:k].tolist())
    ]
    coco = [{'size': r['size'], 'counts': r['counts'].encode()} for r in rles]

    def ours():
        return [rle_to_crop(r) for r in rles]

    def library():
        out = []
        for r in coco:
            x0, y0, bw, bh = (int(v) for v in maskUtils.toBbox(r))
            out.append(maskUtils.decode(r)[y0:y0 + bh, x0:x0 + bw])
        return out

    identical = all(
        np.array_equal(a[0], b) for a, b in zip(ours(), library()))
    return _compare(ours, library, reps, identical)


def _paste_fns(cells: CellSet, batched: int):
    """``(ours, mmdet_per_box, mmdet_batched)`` paste callables, each
    returning ``[(bool crop, x0, y0)]``."""
    import torch
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import \
        _do_paste_mask

    from mmseg_cells.mask_codec import paste_mask_crop
    h, w = cells.height, cells.width
    probs, boxes = cells.probs, cells.boxes
    t_probs = torch.from_numpy(probs)[:, None]
    t_boxes = torch.from_numpy(boxes)

    def ours() -> List[Tuple[np.ndarray, int, int]]:
        return [
            paste_mask_crop(probs[i], boxes[i], h, w)
            for i in range(len(boxes))
        ]

    def mmdet_per_box() -> List[Tuple[np.ndarray, int, int]]:
        out = []
        with torch.no_grad():
            for i in range(len(boxes)):
                m, (ys, xs) = _do_paste_mask(t_probs[i:i + 1],
                                             t_boxes[i:i + 1], h, w, True)
                out.append(((m[0] >= 0.5).numpy(), xs.start, ys.start))
        return out

    def mmdet_batched():
        with torch.no_grad():
            m, _ = _do_paste_mask(t_probs[:batched], t_boxes[:batched], h, w,
                                  True)
            return m >= 0.5

    return ours, mmdet_per_box, mmdet_batched


def _same_paste(a, b) -> bool:
    return all(
        ca.shape == cb.shape and np.array_equal(ca, cb) and (xa, ya) == (xb,
                                                                      yb)
        for (ca, xa, ya), (cb, xb, yb) in zip(a, b))


def bench_paste(cells: CellSet, reps: int, batched: int) -> Dict[str, float]:
    """paste_mask_crop vs mmdet's _do_paste_mask, one box at a time."""
    ours, mmdet_per_box, _ = _paste_fns(cells, batched)
    identical = _same_paste(ours(), mmdet_per_box())
    return _compare(ours, mmdet_per_box, reps, identical)


def _peak_child(args: argparse.Namespace, variant: str) -> Dict[str, float]:
    """Run one paste variant in a fresh process; its extra peak RSS."""
    cmd = [
        sys.executable, __file__, '--child', variant, '--masks',
        str(args.masks), '--height',
        str(args.height), '--width',
        str(args.width), '--seed',
        str(args.seed), '--batched',
        str(args.batched), '--threads',
        str(args.threads)
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_mib(key: str) -> float:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _child(args: argparse.Namespace) -> None:
    """Paste with one variant; print its time and extra peak RSS (the
    peak is reset first through /proc/self/clear_refs, so that the
    imports' own peak does not hide a smaller one)."""
    import time

    import torch
    torch.set_num_threads(args.threads)
    cells = make_cells(args.masks, args.height, args.width, args.seed)
    fns = dict(
        zip(('ours', 'mmdet_per_box', 'mmdet_batched'),
            _paste_fns(cells, args.batched)))
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = _status_mib('VmRSS')
    t0 = time.perf_counter()
    fns[args.child]()
    seconds = time.perf_counter() - t0
    peak = _status_mib('VmHWM')
    print(json.dumps({'peak_mib': peak - before, 's': seconds}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--masks', type=int, default=1000)
    parser.add_argument('--height', type=int, default=2500)
    parser.add_argument('--width', type=int, default=1987)
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--full-masks', type=int, default=50,
                        help='cells of the encode/decode comparisons (the '
                        'library side handles a full-size mask per cell)')
    parser.add_argument('--batched', type=int, default=10,
                        help='boxes of the batched mmdet paste (memory)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
    add_record_args(parser)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0

    import torch
    torch.set_num_threads(args.threads)
    cells = make_cells(args.masks, args.height, args.width, args.seed)
    size = f'{args.masks} masks, {args.height}x{args.width}'
    counts = {'encode': args.full_masks, 'decode': args.full_masks,
              'paste': args.masks}
    results = {
        'encode': bench_encode(cells, args.reps, args.full_masks),
        'decode': bench_decode(cells, args.reps, args.full_masks),
        'paste': bench_paste(cells, args.reps, args.batched)
    }
    variants = ('ours', 'mmdet_per_box') + (('mmdet_batched', )
                                            if args.batched else ())
    mem = {v: _peak_child(args, v) for v in variants}

    print(f'{BENCHMARK} ({size}, torch {args.threads} thread(s), '
          f'medians of {args.reps})')
    print(f'{"":8s} {"masks":>6s} {"ours ms":>9s} {"library ms":>11s} '
          f'{"library/ours":>13s} {"identical":>9s}')
    rows = []
    for name, r in results.items():
        print(f'{name:8s} {counts[name]:6d} {r["ours_ms"]:9.1f} '
              f'{r["library_ms"]:11.1f} '
              f'{r["ratio"]:12.2f}x {str(r["identical"]):>9s}')
        rows += [(f'{name}: ours / library ms ({counts[name]} masks)',
                  f'{r["ours_ms"]:.1f} / {r["library_ms"]:.1f}', ''),
                 (f'{name}: library / ours', f'{r["ratio"]:.2f}x', '> 1'),
                 (f'{name}: identical', str(r['identical']), 'True')]
    print('paste peak memory (extra RSS of a child process):')
    for v, m in mem.items():
        what = (f'{args.batched} boxes at once'
                if v == 'mmdet_batched' else f'{args.masks} boxes')
        print(f'  {v:14s} {m["peak_mib"]:9.1f} MiB  {m["s"]:7.2f} s  '
              f'({what})')
        rows.append((f'paste peak MiB: {v} ({what})',
                     f'{m["peak_mib"]:.1f}', ''))
    if args.batched:
        est = (mem['mmdet_batched']['peak_mib'] * args.masks / args.batched /
               1024)
        print(f'  mmdet_batched extrapolated to {args.masks} boxes: '
              f'~{est:.0f} GiB')
    if not args.no_record:
        name = f'{BENCHMARK} ({size}, torch threads={args.threads})'
        if args.label:
            name += f' {args.label}'
        append_result(name, rows, path=args.results, section=BENCHMARK)
    ok = all(r['identical'] for r in results.values())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

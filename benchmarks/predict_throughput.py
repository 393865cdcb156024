"""Prediction throughput: CellPredictor vs stock mmdet, same weights.

Both pipelines run the main config (``configs/cbam_mask_rcnn.py``, random
init, ``score_thr=0``) on synthetic H&E images whose sizes follow the real
test set (the 101 sizes embedded in ``common.py``; ``--quick``
takes 12 of them evenly spaced by area, ``--full`` all 101):

* **ours**: :meth:`CellPredictor.predict` (tiling above 1600 px, masks kept
  as 28x28 probabilities) + :meth:`CellPredictor.to_coco_results` (each mask
  pasted from a box-sized crop and RLE-encoded);
* **stock**: ``mmdet.apis.inference_detector`` (full-image masks) + the
  encoding of mmdet's ``CocoMetric`` (``encode_mask_results``: pycocotools
  ``encode`` of every full-size mask, ``counts`` decoded to str) into the
  same COCO results entries.

Detections per image: a random model scores every box above 0, so the
count is forced through ``max_per_img``: ``--dets-per-cell`` (3) times the
number of cells in the image, capped by ``--max-per-img`` (1000, the
config's cap), like a trained model that finds every cell plus some
duplicates and background; ``--fixed-dets N`` forces N everywhere (1000:
the config's worst case). Images above 1600 px are tiled by ours: each tile
gets the cap of the cells it contains (a trained model sees those), the
merged result the image's cap.

Ours runs with :class:`~mmseg_cells.apis.WorkBounds` (the predictor's
default) except its mask-score rule, which needs a trained model's scores:
a random model's are noise, and the forced counts stand for a trained
model's detections. ``--exact`` runs ours without any bound.

**Real-image mode** (``--real DIR ... --checkpoint CKPT --config CFG``):
the images of test-layout folders (``test_image_name_to_ids.json`` +
``test_release/``, e.g. the held-out images that
``benchmarks/real_accuracy.py`` writes under ``<work>/<dataset>/data``)
through a checkpoint that benchmark trained: nothing is forced, both
pipelines keep what the trained model detects above the config's
``score_thr`` (``--max-per-img`` caps both), and ours runs with its
default :class:`~mmseg_cells.apis.WorkBounds`, mask-score rule included.

Reported: images/s of both (interleaved per image, A B / B A), their ratio
(target >= 1.5x), the stage breakdown of ours (backbone+neck, RPN, RoI bbox
head, mask head, mask paste, RLE, rest), and from a torch.profiler pass the
share of our wall time spent outside convolutions/matmuls (target <= 25%),
with the top operators.

Usage (from the repository root)::

    python benchmarks/predict_throughput.py [--quick | --full] [--images N]
        [--dets-per-cell 3] [--max-per-img 1000] [--fixed-dets N]
        [--config CFG] [--threads N] [--profile-stock] [--exact]
        [--real DIR ... --checkpoint CKPT] [--no-record]
"""
import argparse
import collections
import copy
import sys
import time
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (CBAM_CONFIG, REAL_SIZES,  # noqa: E402
                    add_record_args, append_result,
                    load_avg, load_config, machine_info, quiet,
                    synthetic_image, torch_info)

import numpy as np  # noqa: E402

BENCHMARK = 'predict_throughput'
TARGET_SPEEDUP = 1.5
TARGET_NONCONV = 0.25

# top-level operators counted as convolution / matrix-multiply time
CONV_OPS = {
    'aten::convolution', 'aten::conv2d', 'aten::conv_transpose2d',
    'aten::linear', 'aten::addmm', 'aten::mm', 'aten::bmm',
    'aten::matmul', 'aten::einsum', 'aten::baddbmm'
}

STAGES = ('backbone+neck', 'RPN', 'RoI bbox head', 'mask head',
          'mask paste', 'RLE')


def pick_sizes(n: int) -> List[Tuple[int, int]]:
    """``n`` sizes of the real test set, evenly spaced by area."""
    ranked = sorted(REAL_SIZES, key=lambda s: (s[0] * s[1], s))
    if n >= len(ranked):
        return ranked
    idx = np.round(np.linspace(0, len(ranked) - 1, n)).astype(int)
    return [ranked[i] for i in idx]


def real_images(folders: List[str], limit=None) -> list:
    """``(rgb, cells, None)`` of every listed image of test-layout folders
    (``cells`` is '-': unknown without ground truth)."""
    from mmseg_cells.data import TEST_IMAGE_DIR, read_image, \
        read_test_listing
    out = []
    for d in folders:
        for entry in read_test_listing(d):
            out.append((read_image(Path(d) / TEST_IMAGE_DIR /
                                   entry['file_name']), '-', None))
    return out[:limit] if limit else out


def stock_results(model, bgr: np.ndarray, image_id: int) -> list:
    """inference_detector + CocoMetric's mask encoding -> COCO entries."""
    from mmdet.apis import inference_detector
    from mmdet.structures.mask import encode_mask_results
    pred = inference_detector(model, bgr).pred_instances
    masks = encode_mask_results(pred.masks.detach().cpu().numpy())
    bboxes = pred.bboxes.detach().cpu().numpy()
    scores = pred.scores.detach().cpu().numpy()
    labels = pred.labels.detach().cpu().numpy()
    out = []
    for i, rle in enumerate(masks):
        x1, y1, x2, y2 = (float(v) for v in bboxes[i])
        if isinstance(rle['counts'], bytes):
            rle['counts'] = rle['counts'].decode()
        out.append(dict(image_id=image_id, category_id=int(labels[i]) + 1,
                        score=float(scores[i]),
                        bbox=[x1, y1, x2 - x1, y2 - y1], segmentation=rle))
    return out


class StageTimer:
    """Accumulates the wall time of wrapped callables per stage."""

    def __init__(self):
        self.seconds = collections.Counter()
        self.depth = 0
        self.enabled = False
        self._undo = []

    def wrap(self, owner, attr: str, stage: str) -> None:
        fn = getattr(owner, attr)
        timer = self

        def timed(*args, **kwargs):
            if timer.depth or not timer.enabled:  # nested / not ours
                return fn(*args, **kwargs)
            timer.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timer.seconds[stage] += time.perf_counter() - t0
                timer.depth -= 1
        setattr(owner, attr, timed)
        self._undo.append((owner, attr, fn))

    def restore(self) -> None:
        for owner, attr, fn in reversed(self._undo):
            setattr(owner, attr, fn)
        self._undo.clear()


def instrument(predictor) -> StageTimer:
    """Stage timers on the functions the predictor calls."""
    from mmseg_cells.apis import detections, results
    t = StageTimer()
    m = predictor.model
    t.wrap(m, 'extract_feat', 'backbone+neck')
    t.wrap(predictor, '_predict_rpn', 'RPN')
    t.wrap(predictor, '_predict_bbox', 'RoI bbox head')
    t.wrap(predictor, '_mask_probs', 'mask head')
    # the mask codec functions as the apis modules call them
    t.wrap(detections, 'paste_mask_crop', 'mask paste')
    t.wrap(results, 'encode_crop_rle', 'RLE')
    return t


def conv_seconds(prof) -> float:
    """CPU seconds of top-level conv/matmul operators in a profile."""
    total = 0.0
    for e in prof.events():
        if e.name not in CONV_OPS:
            continue
        p = e.cpu_parent
        while p is not None and p.name not in CONV_OPS:
            p = p.cpu_parent
        if p is None:
            total += e.cpu_time_total
    return total / 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true',
                      help='12 images (default)')
    mode.add_argument('--full', action='store_true',
                      help='all 101 test-set sizes')
    parser.add_argument('--images', type=int, help='number of images')
    parser.add_argument('--dets-per-cell', type=float, default=3.0)
    parser.add_argument('--max-per-img', type=int,
                        help='detection cap (default: 1000; real images: '
                        'the config\'s)')
    parser.add_argument('--fixed-dets', type=int,
                        help='force this many detections on every image')
    parser.add_argument('--config', default=CBAM_CONFIG)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--profile-stock', action='store_true',
                        help='also profile stock mmdet (top operators)')
    parser.add_argument('--no-optimize', action='store_true',
                        help="ours without CellPredictor.optimize()")
    parser.add_argument('--exact', action='store_true',
                        help='ours without WorkBounds (the exact path)')
    parser.add_argument('--real', nargs='+', metavar='DIR',
                        help='real-image mode: test-layout folders')
    parser.add_argument('--checkpoint',
                        help='real-image mode: trained checkpoint')
    add_record_args(parser)
    args = parser.parse_args(argv)
    if bool(args.real) != bool(args.checkpoint):
        parser.error('--real and --checkpoint go together')
    quiet()
    import torch
    from mmseg_cells.apis import CellPredictor, WorkBounds
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.real:
        cfg = load_config(args.config, max_per_img=args.max_per_img)
        bounds = None if args.exact else WorkBounds()
    else:
        args.max_per_img = args.max_per_img or 1000
        cfg = load_config(args.config, score_thr=0.0,
                          max_per_img=args.max_per_img)
        # a random model's scores are noise: no mask-score rule
        bounds = None if args.exact else WorkBounds(min_mask_score=0.0)
    pred = CellPredictor(cfg, args.checkpoint, device='cpu',
                         optimize=False, bounds=bounds)
    # stock runs the model as built; ours its inference rewrite (same
    # weights: BN folded, channels-last), unless --no-optimize
    # (with mmdet's FCNMaskHead: full-image masks, as stock pastes them)
    from mmseg_cells.models import to_stock_mask_head
    model = to_stock_mask_head(copy.deepcopy(pred.model))
    if not args.no_optimize and not pred.optimize():
        print('warning: the inference rewrite was rejected by its probe')
    rcnn_cfg = pred.model.roi_head.test_cfg

    def cap(cells):
        return args.fixed_dets or int(min(
            args.max_per_img, max(1, round(args.dets_per_cell * cells))))

    images, centres = [], []
    if args.real:
        images = real_images(args.real, args.images)
        sizes = [im[0].shape[:2] for im in images]
    else:
        sizes = pick_sizes(args.images or (
            len(REAL_SIZES) if args.full else 12))
    for i, (h, w) in enumerate([] if args.real else sizes):
        rgb, maps = synthetic_image(args.seed + i, h, w)
        cen = []
        for m in maps.values():
            ids = m.astype(np.int64).ravel()
            n_ids = ids.max() + 1
            cnt = np.bincount(ids, minlength=n_ids)
            yy, xx = np.divmod(np.arange(ids.size), w)
            sy = np.bincount(ids, yy, minlength=n_ids)
            sx = np.bincount(ids, xx, minlength=n_ids)
            present = cnt[1:] > 0
            cen.append(np.stack([sy[1:][present] / cnt[1:][present],
                                 sx[1:][present] / cnt[1:][present]], 1))
        cen = np.concatenate(cen) if cen else np.zeros((0, 2))
        images.append((rgb, len(cen), cap(len(cen))))
        centres.append(cen)

    def set_cap(n):
        if n is None:  # real images: the config's caps
            return
        rcnn_cfg.max_per_img = n
        model.roi_head.test_cfg.max_per_img = n
        pred.max_per_img = n

    predict_array = pred._predict_array

    def ours(i):
        from mmseg_cells.apis import should_tile, tile_grid
        rgb, _, n = images[i]
        set_cap(n)
        h, w = rgb.shape[:2]
        if n is not None and should_tile(h, w, pred.tile_size,
                                         pred.tile_above):
            # per-tile cap from the cells each tile contains
            windows = iter([(ys, ye, xs, xe)
                            for ys, ye, _, _ in tile_grid(
                                h, pred.tile_size, pred.tile_overlap)
                            for xs, xe, _, _ in tile_grid(
                                w, pred.tile_size, pred.tile_overlap)])
            cy, cx = centres[i][:, 0], centres[i][:, 1]

            def capped(tile, *a, **k):
                ys, ye, xs, xe = next(windows)
                rcnn_cfg.max_per_img = cap(int(np.sum(
                    (cy >= ys) & (cy < ye) & (cx >= xs) & (cx < xe))))
                return predict_array(tile, *a, **k)
            pred._predict_array = capped
        try:
            timer.enabled = True
            return pred.to_coco_results(pred.predict(rgb), i + 1)
        finally:
            timer.enabled = False
            pred._predict_array = predict_array

    def stock(i):
        rgb, _, n = images[i]
        set_cap(n)
        return stock_results(model, np.ascontiguousarray(rgb[..., ::-1]),
                             i + 1)

    timer = instrument(pred)
    # warm-up (first-call costs: oneDNN kernels, allocator)
    ours(0), stock(0)
    timer.seconds.clear()
    t_ours, t_stock, n_ours, n_stock = [], [], [], []
    print(f'{len(images)} images ({sum(h * w for h, w in sizes) / 1e6:.2f} '
          f'Mpx), config {Path(args.config).name}; {torch_info()}')
    print()
    print('| image | cells | max dets | ours s | stock s | dets ours/stock '
          '| stock/ours |')
    print('|---|---|---|---|---|---|---|')
    for i, (rgb, cells, n) in enumerate(images):
        order = (('ours', ours), ('stock', stock))
        if i % 2:
            order = order[::-1]
        res = {}
        for name, fn in order:
            t0 = time.perf_counter()
            r = fn(i)
            res[name] = (time.perf_counter() - t0, len(r))
        t_ours.append(res['ours'][0])
        t_stock.append(res['stock'][0])
        n_ours.append(res['ours'][1])
        n_stock.append(res['stock'][1])
        h, w = rgb.shape[:2]
        print(f'| {h}x{w} | {cells} | {n or "-"} | {res["ours"][0]:.2f} | '
              f'{res["stock"][0]:.2f} | {res["ours"][1]}/{res["stock"][1]} '
              f'| {res["stock"][0] / res["ours"][0]:.2f}x |')
    timer.restore()
    tot_o, tot_s = sum(t_ours), sum(t_stock)
    speedup = tot_s / tot_o
    per_img = np.median(np.array(t_stock) / np.array(t_ours))
    print()
    print(f'ours {len(images) / tot_o:.3f} images/s, stock '
          f'{len(images) / tot_s:.3f} images/s: {speedup:.2f}x '
          f'(median per image {per_img:.2f}x; target >= '
          f'{TARGET_SPEEDUP}x '
          f'{"OK" if speedup >= TARGET_SPEEDUP else "MISSED"})')
    print()
    print('Stage breakdown of ours (wall time, all images):')
    print()
    print('| stage | seconds | share |')
    print('|---|---|---|')
    rest = tot_o - sum(timer.seconds.values())
    for st in STAGES:
        s = timer.seconds.get(st, 0.0)
        print(f'| {st} | {s:.2f} | {s / tot_o:.1%} |')
    print(f'| rest (pipeline, tiling, python) | {rest:.2f} | '
          f'{rest / tot_o:.1%} |')

    # profiler pass over ours: share of conv/matmul time
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for i in range(len(images)):
            ours(i)
        wall = time.perf_counter() - t0
    conv = conv_seconds(prof)
    nonconv = 1 - conv / wall
    print()
    print(f'profiled pass of ours: {wall:.2f} s wall, {conv:.2f} s in '
          f'conv/matmul operators -> non-conv share {nonconv:.1%} (target '
          f'<= {TARGET_NONCONV:.0%} '
          f'{"OK" if nonconv <= TARGET_NONCONV else "MISSED"})')
    print()
    print('ours, top operators by self CPU time:')
    print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                    row_limit=15))
    if args.profile_stock:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for i in range(len(images)):
                stock(i)
            wall_s = time.perf_counter() - t0
        print(f'stock, top operators by self CPU time ({wall_s:.2f} s wall, '
              f'conv/matmul {conv_seconds(prof) / wall_s:.1%}):')
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=15))
    print(f'machine: {machine_info()}, {torch_info()}')

    ok = speedup >= TARGET_SPEEDUP and nonconv <= TARGET_NONCONV
    if not args.no_record:
        mode_name = 'real ' + '+'.join(Path(d).parent.name or Path(d).name
                                       for d in args.real) \
            if args.real else 'full' if args.full else 'quick'
        dets = ('trained ' + Path(args.checkpoint).name if args.real else
                f'{args.fixed_dets} dets' if args.fixed_dets else
                f'{args.dets_per_cell:g} dets/cell <= {args.max_per_img}')
        extra = ''.join(', ' + t for t in (
            'not optimized' if args.no_optimize else '',
            'exact' if args.exact else 'WorkBounds', args.label) if t)
        name = (f'{BENCHMARK} ({mode_name}, {len(images)} images, {dets}, '
                f'{Path(args.config).stem}, {torch.get_num_threads()} '
                f'threads, load {load_avg()}{extra})')
        rows = [
            ('ours images/s', f'{len(images) / tot_o:.3f}', '-'),
            ('stock images/s', f'{len(images) / tot_s:.3f}', '-'),
            ('ours / stock throughput', f'{speedup:.2f}x',
             f'>= {TARGET_SPEEDUP}x'),
            ('non-conv share of ours (profiled)', f'{nonconv:.1%}',
             f'<= {TARGET_NONCONV:.0%}'),
        ] + [(f'stage share: {st}',
              f'{timer.seconds.get(st, 0.0) / tot_o:.1%}', '-')
             for st in STAGES]
        append_result(name, rows, path=args.results, section=BENCHMARK)
        print(f'recorded in {args.results}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

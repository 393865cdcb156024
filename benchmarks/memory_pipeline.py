"""Peak memory of the training data pipeline on the most crowded image.

Builds a crowded synthetic sample (by default 800 non-overlapping elliptic
cells, box side ~21 px median, on a 1024x1024 image; RLE masks in a
COCO-like ``data_info``), then runs the project's training pipeline

    LoadCellImageFromFile -> <loader>(with_bbox, with_mask) ->
    Resize(scale_factor=1.5, keep_ratio) -> RandomFlip(h/v/diagonal) ->
    RandomCrop(1024, absolute, recompute_bbox, allow_negative_crop) ->
    FilterAnnotations(min_gt_bbox_wh=(1, 1), keep_empty=False) ->
    PackDetInputs

in a fresh subprocess per loader, (a) mmdet's ``LoadAnnotations`` (full
``BitmapMasks``) and (b) ``LoadCellAnnotations`` (``CropBitmapMasks``), and
reports the peak RSS of the child (``ru_maxrss``) minus its RSS after the
imports and the pipeline construction. With ``--train-step`` each child
then also runs ``DetDataPreprocessor(pad_mask=True, pad_size_divisor=32)``
and the mask head's ``mask_target`` for 128 positive RoIs (Mask R-CNN's
sampler: 512 RoIs x 0.25) on the CPU, reported as a second metric.

Usage (from the repository root)::

    python benchmarks/memory_pipeline.py [--cells 800] [--size 1024]
        [--runs 3] [--seed 0] [--train-step] [--no-record]

Results are printed and appended to ``benchmarks/RESULTS.md`` under
``## memory_pipeline``. Target: <= 0.5 GB (512 MiB) for (b).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, RESULTS, append_result, paint_cells,  # noqa: E402
                    place_ellipses)

__all__ = ['build_sample', 'main', 'pipeline_cfg']

BENCHMARK = 'memory_pipeline'
TARGET_MIB = 512.0
LOADERS = {'stock': 'LoadAnnotations', 'compact': 'LoadCellAnnotations'}


def build_sample(size: int, cells: int, seed: int):
    """``(rgb, instances)``: an ``size x size`` RGB image with ``cells``
    non-overlapping elliptic cells (lognormal side, median 21 px) and the
    COCO-like instances (xyxy ``bbox``, ``bbox_label``, ``ignore_flag``,
    compressed-RLE ``mask``) that ``CocoDataset`` would produce."""
    import pycocotools.mask as mask_util
    rng = np.random.default_rng(seed)
    h = w = size
    occupied, placed = place_ellipses(
        rng, h, w, cells, median_side=21, side_range=(10, 45),
        max_attempts=50 * cells)
    buf = np.zeros((h, w), np.uint8, order='F')  # reused for encoding
    instances = []
    for label, y0, x0, blob in placed:
        bh, bw = blob.shape
        buf[y0:y0 + bh, x0:x0 + bw] = blob
        rle = mask_util.encode(buf)
        buf[y0:y0 + bh, x0:x0 + bw] = 0
        ys, xs = np.nonzero(blob)
        instances.append(
            dict(
                bbox=[
                    float(x0 + xs.min()),
                    float(y0 + ys.min()),
                    float(x0 + xs.max() + 1),
                    float(y0 + ys.max() + 1)
                ],
                bbox_label=label,
                ignore_flag=0,
                mask=dict(size=[h, w], counts=rle['counts'].decode())))
    return paint_cells(occupied), instances


def pipeline_cfg(loader: str, crop: int = 1024) -> list:
    """The training pipeline of ``configs/_base_/datasets/hw3_cells.py``
    with ``loader`` as the annotation loader and a ``crop`` px RandomCrop."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'datasets' / 'hw3_cells.py'))
    steps = [dict(t) for t in cfg.train_pipeline]
    for t in steps:
        if t['type'] in ('LoadAnnotations', 'LoadCellAnnotations'):
            t['type'] = loader
        elif t['type'] == 'RandomCrop':
            t['crop_size'] = (crop, crop)
    return steps


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args) -> int:
    """Run one loader's pipeline; prints one JSON line."""
    import random

    import torch
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    from mmseg_cells.utils import register_all_modules
    register_all_modules()
    torch.set_num_threads(1)
    init_default_scope('mmdet')
    with open(Path(args.data) / 'data_info.json') as f:
        info = json.load(f)
    pipeline = Compose(pipeline_cfg(LOADERS[args.child]))
    if args.train_step:
        from mmdet.models.data_preprocessors import DetDataPreprocessor
        from mmdet.structures.mask import mask_target
        from mmengine.config import ConfigDict
        pre = DetDataPreprocessor(
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_mask=True,
            pad_size_divisor=32)
    base = _maxrss_mib()
    t0 = time.perf_counter()
    peaks, num_gt, types = [], [], set()
    for run in range(args.runs):
        random.seed(args.seed + run)
        np.random.seed(args.seed + run)
        out = pipeline(json.loads(json.dumps(info)))
        masks = out['data_samples'].gt_instances.masks
        num_gt.append(len(masks))
        types.add(type(masks).__name__)
        del out, masks
        peaks.append(_maxrss_mib())
    secs = (time.perf_counter() - t0) / args.runs
    result = dict(
        loader=LOADERS[args.child],
        mask_type=sorted(types),
        baseline_mib=round(base, 1),
        peak_mib=round(peaks[-1], 1),
        delta_mib=round(peaks[-1] - base, 1),
        seconds_per_sample=round(secs, 3),
        num_gt=num_gt)
    if args.train_step:
        rng = np.random.default_rng(args.seed)
        out = pipeline(json.loads(json.dumps(info)))
        data = pre(
            dict(inputs=[out['inputs']], data_samples=[out['data_samples']]),
            True)
        gt = data['data_samples'][0].gt_instances
        boxes = gt.bboxes  # a Tensor after the preprocessor
        boxes = getattr(boxes, 'tensor', boxes).numpy()
        n = len(boxes)
        t1 = time.perf_counter()
        if n:
            pick = rng.integers(0, n, 128)
            jitter = rng.normal(0, 2, (128, 4)).astype(np.float32)
            props = torch.from_numpy(boxes[pick] + jitter)
            targets = mask_target([props], [torch.from_numpy(pick)],
                                  [gt.masks], ConfigDict(mask_size=28))
            assert targets.shape == (128, 28, 28)
        result['train_step_peak_mib'] = round(_maxrss_mib(), 1)
        result['train_step_delta_mib'] = round(_maxrss_mib() - base, 1)
        result['mask_target_seconds'] = round(time.perf_counter() - t1, 3)
    print(json.dumps(result))
    return 0


def run_child(kind: str, data: Path, args) -> dict:
    """Run :func:`child` for ``kind`` in a fresh process; its JSON result."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()), '--child', kind, '--data',
        str(data), '--runs',
        str(args.runs), '--seed',
        str(args.seed)
    ]
    if args.train_step:
        cmd.append('--train-step')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{kind} child failed:\n{proc.stderr[-4000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Run the benchmark; returns 0 if the target is met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cells', type=int, default=800)
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--runs', type=int, default=3,
                        help='pipeline runs (seeds) per child')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train-step', action='store_true',
                        help='also DetDataPreprocessor + mask_target')
    parser.add_argument('--only', choices=sorted(LOADERS),
                        help='run one loader only (no record)')
    parser.add_argument('--no-record', action='store_true',
                        help='do not append to benchmarks/RESULTS.md')
    parser.add_argument('--child', choices=sorted(LOADERS),
                        help=argparse.SUPPRESS)
    parser.add_argument('--data', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from mmseg_cells.data import write_image_tif
    with tempfile.TemporaryDirectory(prefix='memory_pipeline_') as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        rgb, instances = build_sample(args.size, args.cells, args.seed)
        write_image_tif(tmp / 'image.tif', rgb)
        info = dict(
            img_path=str(tmp / 'image.tif'),
            img_id=0,
            height=args.size,
            width=args.size,
            instances=instances)
        with open(tmp / 'data_info.json', 'w') as f:
            json.dump(info, f)
        sides = [
            max(i['bbox'][2] - i['bbox'][0], i['bbox'][3] - i['bbox'][1])
            for i in instances
        ]
        print(f'sample: {len(instances)} cells on {args.size}x{args.size} '
              f'(median box side {np.median(sides):g} px), built in '
              f'{time.perf_counter() - t0:.1f} s')
        kinds = [args.only] if args.only else ['stock', 'compact']
        res = {k: run_child(k, tmp, args) for k in kinds}

    print()
    print('| loader | masks | peak RSS - baseline (MiB) | baseline (MiB) '
          '| s/sample | gt after crop |' +
          (' train step (MiB) |' if args.train_step else ''))
    print('|---|---|---|---|---|---|' + ('---|' if args.train_step else ''))
    for k in kinds:
        r = res[k]
        line = (f'| {r["loader"]} | {",".join(r["mask_type"])} | '
                f'{r["delta_mib"]:.1f} | {r["baseline_mib"]:.1f} | '
                f'{r["seconds_per_sample"]:.2f} | {r["num_gt"]} |')
        if args.train_step:
            line += f' {r["train_step_delta_mib"]:.1f} |'
        print(line)
    ok = True
    if 'compact' in res:
        ok = res['compact']['delta_mib'] <= TARGET_MIB
        print(f'target (LoadCellAnnotations) <= {TARGET_MIB:g} MiB: '
              f'{"OK" if ok else "MISSED"}')
    if not args.no_record and not args.only:
        name = (f'{BENCHMARK} ({len(instances)} cells, '
                f'{args.size}x{args.size}, Resize x1.5 + RandomCrop 1024, '
                f'{args.runs} runs)')
        rows = [
            ('peak RSS - baseline, LoadAnnotations (MiB)',
             f'{res["stock"]["delta_mib"]:.1f}', '-'),
            ('peak RSS - baseline, LoadCellAnnotations (MiB)',
             f'{res["compact"]["delta_mib"]:.1f}', f'<= {TARGET_MIB:g}'),
            ('s/sample, LoadAnnotations',
             f'{res["stock"]["seconds_per_sample"]:.2f}', '-'),
            ('s/sample, LoadCellAnnotations',
             f'{res["compact"]["seconds_per_sample"]:.2f}', '-'),
        ]
        if args.train_step:
            rows += [(f'peak RSS - baseline incl. preprocessor + '
                      f'mask_target, {res[k]["loader"]} (MiB)',
                      f'{res[k]["train_step_delta_mib"]:.1f}', '-')
                     for k in ('stock', 'compact')]
        append_result(name, rows, section=BENCHMARK)
        print(f'recorded in {RESULTS}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

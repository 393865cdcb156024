"""Peak memory and time of training and of validation, measured apart.

A config (default the main one, ``configs/cbam_mask_rcnn.py``; random init,
batch 1) on crowded synthetic H&E images of ``--size`` (default 1000x1000
tiles; the largest hw3 image is 2500x1987), or ``--data`` in the hw3
training layout (e.g. real tiles):

1. ``tools/train.py`` for ``--train-iters`` iterations, no validation:
   peak RSS of training, seconds per iteration;
2. ``tools/test.py`` on ``--val-images`` images (the loop and metric that
   validation inside training runs) with the configs' mask head
   (``CropFCNMaskHead``: box-crop masks) and with mmdet's stock
   ``FCNMaskHead`` (``N x H x W`` full-image masks): peak RSS, seconds per
   image and the metric values, which must be equal. ``score_thr=0`` and
   ``max_per_img=--dets`` make the random model keep ``--dets`` (1000)
   detections per image, the crowded case.

Each run is a fresh process; its peak is its ``ru_maxrss``. Usage::

    python benchmarks/train_val_memory.py [--train-iters 4] [--val-images 4]
        [--config CFG] [--size H W] [--dets 1000] [--data DIR]
        [--work-dir DIR] [--threads 2] [--no-record]
"""
import argparse
import json
import pickle
import re
import sys
import tempfile
from pathlib import Path
from typing import Tuple

import numpy as np

from common import REPO, add_record_args, append_result, run_peak

DEFAULT_CONFIG = 'configs/cbam_mask_rcnn.py'
def make_tiles(root: Path, n: int, size: Tuple[int, int] = (1000, 1000),
               seed: int = 0) -> None:
    """``n`` crowded synthetic images in the hw3 training layout."""
    from mmseg_cells.data.io import (CLASS_NAMES, write_image_tif,
                                     write_instance_map)
    from mmseg_cells.data.synthetic import synthesize_sample
    rng = np.random.default_rng(seed)
    for i in range(n):
        rgb, masks = synthesize_sample(rng, size[0], size[1], crowded=True)
        d = root / 'train' / f'tile{i:02d}'
        d.mkdir(parents=True)
        write_image_tif(d / 'image.tif', rgb)
        for cls, ids in masks.items():
            write_instance_map(d / f'{CLASS_NAMES[cls - 1]}.tif', ids)


def _metrics(out: str) -> dict:
    line = [ln for ln in out.splitlines() if 'coco/segm_mAP:' in ln][-1]
    return {k: v for k, v in re.findall(r'(coco/\S+): (\S+)', line)}


def _seconds_per(out: str, what: str) -> float:
    """Median ``time`` of mmengine's iteration log lines of ``what``."""
    times = [float(t) for t in re.findall(
        rf'{what}\)[^\n]*?\stime: ([\d.]+)', out)]
    return float(np.median(times)) if times else float('nan')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path,
                        help='hw3 training layout (default: synthetic '
                        'crowded 1000x1000 tiles)')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--size', type=int, nargs=2, default=(1000, 1000),
                        metavar=('H', 'W'), help='synthetic image size')
    parser.add_argument('--dets', type=int, default=1000,
                        help='detections per validation image')
    parser.add_argument('--train-iters', type=int, default=4)
    parser.add_argument('--val-images', type=int, default=4)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--work-dir', type=Path)
    add_record_args(parser)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from mmseg_cells.data.hw3_coco import convert_hw3

    work = args.work_dir or Path(tempfile.mkdtemp(prefix='trainval_mem_'))
    data = args.data
    if data is None:
        data = work / 'data'
        if not (data / 'train').is_dir():
            make_tiles(data, args.train_iters + args.val_images,
                       tuple(args.size))
    n_all = len([p for p in (data / 'train').iterdir() if p.is_dir()])
    ann = work / 'annotations'
    convert_hw3(data, ann, val_ratio=args.val_images / n_all, seed=0,
                workers=1, progress=False)
    n_val = len(json.loads((ann / 'val.json').read_text())['images'])
    n_train = len(json.loads((ann / 'train.json').read_text())['images'])
    # absolute annotation paths: --data-root leaves them as they are
    common = [
        'model.backbone.init_cfg=None',
        f'train_dataloader.dataset.ann_file={ann}/train.json',
        f'val_dataloader.dataset.ann_file={ann}/val.json',
        f'test_dataloader.dataset.ann_file={ann}/val.json',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1'
    ]
    iters = min(args.train_iters, n_train)
    train_peak, out = run_peak([
        sys.executable, 'tools/train.py', args.config, '--work-dir',
        str(work / 'train'),
        '--data-root', str(data), '--cfg-options', *common,
        'train_dataloader.batch_size=1', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=100',
        f'train_dataloader.dataset.indices={iters}'
    ], work / 'train.log', args.threads)
    train_s = _seconds_per(out, 'Epoch\\(train')
    ckpt = (work / 'train' / 'last_checkpoint').read_text().strip()
    print(f'train: {iters} iterations of batch 1, peak {train_peak:.0f} MiB,'
          f' {train_s:.1f} s/iteration')
    val = {}
    for head in ('CropFCNMaskHead', 'FCNMaskHead'):
        peak, out = run_peak([
            sys.executable, 'tools/test.py', args.config, ckpt,
            '--work-dir', str(work / head),
            '--data-root', str(data), '--out', str(work / f'{head}.pkl'),
            '--cfg-options', *common, f'model.roi_head.mask_head.type={head}',
            'model.test_cfg.rcnn.score_thr=0.0',
            f'model.test_cfg.rcnn.max_per_img={args.dets}',
            f'model.test_cfg.rpn.max_per_img={2 * args.dets}'
        ], work / f'test_{head}.log', args.threads)
        val[head] = (peak, _seconds_per(out, 'Epoch\\(test'), _metrics(out))
        with open(work / f'{head}.pkl', 'rb') as f:
            dets = [len(r['pred_instances']['scores'])
                    for r in pickle.load(f)]
        print(f'validation ({head}): {n_val} images, {dets} detections, '
              f'peak {peak:.0f} MiB, {val[head][1]:.1f} s/image')
    same = val['CropFCNMaskHead'][2] == val['FCNMaskHead'][2]
    print('metric values ' + ('identical' if same else 'DIFFER: ' + str(
        {h: v[2] for h, v in val.items()})))
    if not args.no_record:
        src = (str(args.data) if args.data else
               'synthetic crowded {}x{} images'.format(*args.size))
        bench = (f'train_val_memory ({args.config}, random init, batch 1, '
                 f'{src}, {args.threads} threads)')
        if args.label:
            bench += f'; {args.label}'
        rows = [(f'train peak RSS MiB / s per iteration ({iters} iterations)',
                 f'{train_peak:.0f} / {train_s:.1f}', '-')]
        for head, (peak, sec, _) in val.items():
            rows.append((f'validation peak RSS MiB / s per image ({head}, '
                         f'{n_val} images)', f'{peak:.0f} / {sec:.1f}', '-'))
        rows.append(('validation metric values crop head == stock head',
                     str(same), 'True'))
        append_result(bench, rows, path=args.results,
                      section='train_val_memory')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())

"""Peak memory of prediction on a large crowded image.

``python benchmarks/memory.py [--dets 1000] [--stock] [--no-record]``

In a fresh child process each: builds the main config
(``configs/cbam_mask_rcnn.py``, random init), draws one 2500x1987 synthetic
H&E image (the largest test image), and predicts it with
``score_thr=0``, the box head's NMS switched off (IoU threshold 1) and
``max_per_img=--dets``, so that the random model keeps every proposal and
the count reaches ``--dets`` (checked: the run fails if it does not; a
random model's NMS had left 436 of 1000), then RLE-encodes every mask:

* ours: :class:`~mmseg_cells.apis.CellPredictor` (tiles, mask head in
  chunks, masks pasted and encoded one box crop at a time);
* ``--stock``: ``mmdet.apis.inference_detector`` (pastes N full-image masks)
  + ``pycocotools`` encode of each full mask, as mmdet's CocoMetric does.
  Slow and needs > 5 GB; off by default.

Reports peak RSS (``ru_maxrss``) and the baseline after imports and image
synthesis, and appends them to ``benchmarks/RESULTS.md``. Target: ours
<= 2 GB. The training data pipeline's memory is measured by
``benchmarks/memory_pipeline.py``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

CHILD = r'''
import json, resource, sys, time
import numpy as np, torch
from mmseg_cells.utils import register_all_modules
register_all_modules()
from mmengine.config import Config
from mmseg_cells.data.synthetic import synthesize_sample
mode, dets_n = sys.argv[1], int(sys.argv[2])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rgb, _ = synthesize_sample(np.random.default_rng(0), 2500, 1987,
                           max_cells=1000)
cfg = Config.fromfile('configs/cbam_mask_rcnn.py')
cfg.model.backbone.init_cfg = None
cfg.model.test_cfg.rcnn.score_thr = 0.0
cfg.model.test_cfg.rcnn.nms.iou_threshold = 1.0  # keep every proposal
cfg.model.test_cfg.rcnn.max_per_img = dets_n
base = rss()
t = time.perf_counter()
if mode == 'ours':
    from mmseg_cells.apis import CellPredictor
    p = CellPredictor(cfg, None, device='cpu', bounds=None)  # worst case
    d = p.predict(rgb)
    n = len(p.to_coco_results(d, 1))
else:
    from mmdet.apis import init_detector, inference_detector
    from pycocotools import mask as mask_util
    cfg.model.roi_head.mask_head.type = 'FCNMaskHead'  # stock pasting
    model = init_detector(cfg, None, device='cpu')
    res = inference_detector(model, np.ascontiguousarray(rgb[..., ::-1]))
    masks = res.pred_instances.masks.numpy()
    n = len([mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
             for m in masks])
print(json.dumps(dict(mode=mode, dets=n, base_mib=base, peak_mib=rss(),
                      seconds=time.perf_counter() - t)))
'''


def run(mode: str, dets: int) -> dict:
    proc = subprocess.run([sys.executable, '-c', CHILD, mode, str(dets)],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{mode} child failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dets', type=int, default=1000)
    parser.add_argument('--stock', action='store_true',
                        help='also measure stock mmdet (slow, > 5 GB)')
    parser.add_argument('--no-record', action='store_true')
    args = parser.parse_args(argv)
    results = [run('ours', args.dets)]
    if args.stock:
        results.append(run('stock', args.dets))
    short = [r for r in results if r['dets'] != args.dets]
    if short:
        print('error: the count was not forced: ' + ', '.join(
            f'{r["mode"]} reached {r["dets"]} of {args.dets} detections'
            for r in short), file=sys.stderr)
        return 1
    print(f'{"pipeline":8} {"dets":>5} {"baseline MiB":>13} '
          f'{"peak MiB":>9} {"seconds":>8}')
    for r in results:
        print(f'{r["mode"]:8} {r["dets"]:5d} {r["base_mib"]:13.0f} '
              f'{r["peak_mib"]:9.0f} {r["seconds"]:8.1f}')
    full_masks = args.dets * 2500 * 1987 / 2**20
    print(f'stock mmdet holds {args.dets} full-image masks: '
          f'{full_masks:.0f} MiB as bool before encoding')
    if not args.no_record:
        from common import append_result
        rows = [(f'peak RSS {r["mode"]} (MiB, 2500x1987, {r["dets"]} dets)',
                 f'{r["peak_mib"]:.0f}',
                 '<= 2048' if r['mode'] == 'ours' else '-')
                for r in results]
        append_result('memory (predict)', rows)
    ok = results[0]['peak_mib'] <= 2048
    return 0 if ok else 1


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    sys.exit(main())

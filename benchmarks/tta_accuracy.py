"""Does flip test-time augmentation help? Mask AP50 with and without --tta.

``python benchmarks/tta_accuracy.py CONFIG CHECKPOINT --data-root D
[--split val] [--max-images N]``

Predicts the images of ``D/annotations/<split>.json`` with
:class:`~mmseg_cells.apis.CellPredictor` (the pipeline of
``tools/predict.py``) twice, without and with flip TTA, scores both with
:func:`~mmseg_cells.evaluation.ap50.evaluate_ap50` against the split's ground
truth, prints AP50 (maxDets 100 and 1000) and the time ratio, and appends the
figures to ``benchmarks/RESULTS.md``.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import append_result  # noqa: E402

from mmseg_cells.apis import CellPredictor  # noqa: E402
from mmseg_cells.data.io import read_image  # noqa: E402
from mmseg_cells.evaluation.ap50 import evaluate_ap50  # noqa: E402


def predict_split(predictor: CellPredictor, data_root: str, images: list):
    results, t0 = [], time.perf_counter()
    for img in images:
        rgb = read_image(osp.join(data_root, img['file_name']))
        results += predictor.to_coco_results(predictor.predict(rgb),
                                             img['id'])
    return results, time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--split', default='val')
    parser.add_argument('--max-images', type=int, default=None)
    args = parser.parse_args(argv)
    ann = osp.join(args.data_root, 'annotations', f'{args.split}.json')
    with open(ann) as f:
        gt = json.load(f)
    if args.max_images:
        keep = sorted(gt['images'], key=lambda i: i['id'])[:args.max_images]
        ids = {i['id'] for i in keep}
        gt = dict(gt, images=keep,
                  annotations=[a for a in gt['annotations']
                               if a['image_id'] in ids])
    rows, table = [], []
    base_time = None
    for tta in (False, True):
        predictor = CellPredictor(args.config, args.checkpoint, tta=tta)
        results, secs = predict_split(predictor, args.data_root,
                                      gt['images'])
        ap = evaluate_ap50(gt, results) if results else {
            'ap50@100': 0.0, 'ap50@1000': 0.0}
        base_time = base_time or secs
        name = 'tta' if tta else 'plain'
        table.append((name, ap['ap50@100'], ap['ap50@1000'], secs))
        rows += [(f'{name} segm AP50@100', f'{ap["ap50@100"]:.4f}', ''),
                 (f'{name} segm AP50@1000', f'{ap["ap50@1000"]:.4f}', '')]
    ratio = table[1][3] / table[0][3]
    rows.append(('tta / plain predict time', f'{ratio:.2f}x', ''))
    rows.append(('images', str(len(gt['images'])),
                 f'{osp.basename(args.config)} {args.split}'))
    print(f'{"mode":6} {"AP50@100":>9} {"AP50@1000":>10} {"seconds":>8}')
    for name, a100, a1000, secs in table:
        print(f'{name:6} {a100:9.4f} {a1000:10.4f} {secs:8.1f}')
    print(f'TTA costs {ratio:.2f}x the time and changes AP50@1000 by '
          f'{table[1][2] - table[0][2]:+.4f}')
    append_result('tta_accuracy', rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())

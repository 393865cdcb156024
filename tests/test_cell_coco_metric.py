"""CellCocoMetric: CocoMetric's keys plus the leaderboard's mask AP50."""
import json

import numpy as np
import pytest
import torch

from mmseg_cells.utils import register_all_modules
from mmdet.registry import METRICS
from mmseg_cells.evaluation.ap50 import evaluate_ap50

register_all_modules()  # registrations and compat fixes

H = W = 400
CLASSES = ('class1', 'class2', 'class3', 'class4')


def crowded_image(n_class1=150, n_class2=5):
    """One image with a grid of 20 px square cells: many of class 1, a few
    of class 2. Returns the COCO ground truth and the cells' boxes."""
    from pycocotools import mask as mask_util
    boxes = []
    for k in range(n_class1 + n_class2):
        r, c = divmod(k, 15)
        boxes.append((3 + 26 * c, 3 + 26 * r, 20, 20))
    anns = []
    for k, (x, y, w, h) in enumerate(boxes):
        m = np.zeros((H, W), np.uint8, order='F')
        m[y:y + h, x:x + w] = 1
        rle = mask_util.encode(m)
        rle['counts'] = rle['counts'].decode()
        anns.append(dict(id=k + 1, image_id=1, iscrowd=0, area=w * h,
                         bbox=[x, y, w, h], segmentation=rle,
                         category_id=1 if k < n_class1 else 2))
    gt = dict(images=[dict(id=1, width=W, height=H, file_name='a.tif')],
              annotations=anns,
              categories=[dict(id=i + 1, name=n)
                          for i, n in enumerate(CLASSES)])
    return gt, boxes


def test_leaderboard_ap50_next_to_cocometric_keys(tmp_path):
    """Perfect predictions of 150 cells of one class: AP50 at 1000
    detections is 1, the leaderboard's (100 per image and category) is
    what pycocotools' defaults give, about 100/150."""
    gt, boxes = crowded_image()
    ann = tmp_path / 'gt.json'
    ann.write_text(json.dumps(gt))
    metric = METRICS.build(dict(
        type='CellCocoMetric', ann_file=str(ann), metric=['bbox', 'segm'],
        proposal_nums=(100, 300, 1000)))
    metric.dataset_meta = dict(classes=CLASSES)
    n = len(boxes)
    masks = torch.zeros((n, H, W), dtype=torch.bool)
    for k, (x, y, w, h) in enumerate(boxes):
        masks[k, y:y + h, x:x + w] = True
    labels = torch.tensor([a['category_id'] - 1 for a in gt['annotations']])
    # scores decreasing with k: class1 cells first
    scores = torch.linspace(0.99, 0.5, n)
    xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes],
                        dtype=torch.float32)
    metric.process({}, [dict(img_id=1, ori_shape=(H, W), pred_instances=dict(
        bboxes=xyxy, scores=scores, labels=labels, masks=masks))])
    out = metric.evaluate(1)
    assert out['coco/segm_mAP_50'] == pytest.approx(1.0)
    lb = out['coco/segm_leaderboard_AP50']
    # class1: 100 of 150 reachable, class2: all 5 -> mean over 2 classes
    assert 0.8 < lb < 0.85
    # the same number as tools/eval_ap50.py on the same results
    results = [dict(image_id=1, category_id=int(labels[k]) + 1,
                    score=float(scores[k]),
                    segmentation=a['segmentation'])
               for k, a in enumerate(gt['annotations'])]
    ref = evaluate_ap50(str(ann), results, max_dets=(100, ))['ap50@100']
    assert lb == pytest.approx(ref, abs=1e-4)


def test_no_detections_scores_zero(tmp_path):
    gt, _ = crowded_image(10, 0)
    ann = tmp_path / 'gt.json'
    ann.write_text(json.dumps(gt))
    metric = METRICS.build(dict(type='CellCocoMetric', ann_file=str(ann),
                                metric=['segm']))
    metric.dataset_meta = dict(classes=CLASSES)
    empty = torch.zeros((0, H, W), dtype=torch.bool)
    metric.process({}, [dict(img_id=1, ori_shape=(H, W), pred_instances=dict(
        bboxes=torch.zeros((0, 4)), scores=torch.zeros(0),
        labels=torch.zeros(0, dtype=torch.long), masks=empty))])
    assert metric.evaluate(1)['coco/segm_leaderboard_AP50'] == 0.0

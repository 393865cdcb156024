"""CropFCNMaskHead: validation / tools/test.py with box-crop masks give the
stock mask head's masks, metric values and dumped results."""
import pickle
import re

import numpy as np
import pytest
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from conftest import TINY_CONFIG, last_checkpoint, run_tool
from mmseg_cells.models import CropFCNMaskHead
from mmseg_cells.structures.crop_masks import CropBitmapMasks
from mmseg_cells.utils import register_all_modules

register_all_modules()


def _heads(class_agnostic=False):
    torch.manual_seed(0)
    stock = FCNMaskHead(num_convs=1, in_channels=8, conv_out_channels=8,
                        num_classes=3, class_agnostic=class_agnostic)
    ours = CropFCNMaskHead(num_convs=1, in_channels=8, conv_out_channels=8,
                           num_classes=3, class_agnostic=class_agnostic)
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def _boxes(rng, n, h, w):
    """Boxes in the network's (x1.5) frame, clipped to it as the box head
    clips them: inside, on the border, tiny and degenerate."""
    x1 = rng.uniform(-20, 1.5 * w, n)
    y1 = rng.uniform(-20, 1.5 * h, n)
    bw, bh = rng.uniform(0.5, 60, n), rng.uniform(0.5, 60, n)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, 1.5 * w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, 1.5 * h)
    boxes[0] = (10, 10, 10, 30)  # zero width
    return torch.tensor(boxes, dtype=torch.float32)


@pytest.mark.parametrize('rescale', [True, False])
@pytest.mark.parametrize('class_agnostic', [False, True])
def test_crop_masks_are_the_stock_masks(rescale, class_agnostic):
    stock, ours = _heads(class_agnostic)
    rng = np.random.default_rng(1)
    h, w, n = 97, 131, 60
    logits = torch.tensor(
        rng.normal(0, 3, (n, 1 if class_agnostic else 3, 28, 28)),
        dtype=torch.float32)
    boxes = _boxes(rng, n, h, w)
    labels = torch.tensor(rng.integers(0, 3, n))
    meta = dict(ori_shape=(h, w), scale_factor=(1.5, 1.5))
    cfg = ConfigDict(mask_thr_binary=0.5)
    b_stock, b_ours = boxes.clone(), boxes.clone()
    full = stock._predict_by_feat_single(logits, b_stock, labels, meta, cfg,
                                         rescale=rescale)
    crops = ours._predict_by_feat_single(logits, b_ours, labels, meta, cfg,
                                         rescale=rescale)
    assert isinstance(crops, CropBitmapMasks) and len(crops) == n
    assert (crops.height, crops.width) == tuple(full.shape[1:])
    assert torch.equal(b_stock, b_ours)  # boxes rescaled in place alike
    got = crops.to_ndarray().astype(bool)
    assert np.array_equal(got, full.numpy())
    assert full.numpy().sum() > 1000  # the test compares real masks
    # the crops hold the cells, not the image
    assert crops.nbytes < full.numpy().nbytes / 20


def test_negative_threshold_falls_back_to_stock_probability_maps():
    stock, ours = _heads()
    logits = torch.randn(4, 3, 28, 28)
    boxes = torch.tensor([[2., 3., 30., 40.]] * 4)
    labels = torch.tensor([0, 1, 2, 0])
    meta = dict(ori_shape=(50, 60), scale_factor=(1.0, 1.0))
    cfg = ConfigDict(mask_thr_binary=-1)
    a = stock._predict_by_feat_single(logits, boxes.clone(), labels, meta,
                                      cfg)
    b = ours._predict_by_feat_single(logits, boxes.clone(), labels, meta, cfg)
    assert b.dtype == torch.uint8 and torch.equal(a, b)


def test_visualizer_draws_crop_masks_like_full_masks():
    from mmseg_cells.visualization.local_visualizer import \
        CellLocalVisualizer
    rng = np.random.default_rng(2)
    full = np.zeros((3, 40, 50), bool)
    full[0, 5:15, 5:20] = True
    full[1, 20:35, 10:30] = True
    full[2, 0:8, 40:50] = True
    inst = dict(bboxes=torch.tensor([[5., 5, 20, 15], [10, 20, 30, 35],
                                     [40, 0, 50, 8]]),
                labels=torch.tensor([0, 1, 2]),
                scores=torch.tensor([0.9, 0.8, 0.7]))
    img = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    vis = CellLocalVisualizer(name=f'vis{id(full)}')
    classes, palette = ('a', 'b', 'c'), [(255, 0, 0), (0, 255, 0),
                                         (0, 0, 255)]
    np.random.seed(0)  # mmdet jitters the mask colours with np.random
    a = vis._draw_instances(img.copy(),
                            InstanceData(masks=full, **inst), classes,
                            palette)
    crop = InstanceData(masks=CropBitmapMasks.from_bitmap(full), **inst)
    np.random.seed(0)
    b = vis._draw_instances(img.copy(), crop, classes, palette)
    assert np.array_equal(a, b)
    assert isinstance(crop.masks, CropBitmapMasks)  # input left as it was


def test_metric_values_from_crop_masks_equal_the_stock_encoding(tmp_path):
    """CellCocoMetric on the same predictions given as full tensors (stock
    head) and as crop masks: identical metric values, on a ground truth made
    from part of the predictions (so that AP is neither 0 nor 1)."""
    import json

    from pycocotools import mask as mask_util

    from mmseg_cells.evaluation.metrics import CellCocoMetric
    stock, ours = _heads()
    rng = np.random.default_rng(5)
    h, w, n = 83, 117, 40
    preds, images, anns = [], [], []
    for img_id in (1, 2):
        logits = torch.tensor(rng.normal(0, 3, (n, 3, 28, 28)),
                              dtype=torch.float32)
        boxes = _boxes(rng, n, h, w)
        labels = torch.tensor(rng.integers(0, 3, n))
        meta = dict(ori_shape=(h, w), scale_factor=(1.5, 1.5))
        cfg = ConfigDict(mask_thr_binary=0.5)
        b = boxes.clone()
        full = stock._predict_by_feat_single(logits, b, labels, meta, cfg,
                                             rescale=True)
        crops = ours._predict_by_feat_single(logits, boxes.clone(), labels,
                                             meta, cfg, rescale=True)
        scores = torch.tensor(rng.uniform(0.05, 1, n), dtype=torch.float32)
        preds.append((img_id, b, scores, labels, full, crops))
        images.append(dict(id=img_id, width=w, height=h,
                           file_name=f'{img_id}.png'))
        for i in np.flatnonzero(rng.random(n) < 0.5):
            m = full[i].numpy()
            if m.sum() < 4:
                continue
            rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode()
            x, y, bw, bh = mask_util.toBbox(rle).tolist()
            anns.append(dict(id=len(anns) + 1, image_id=img_id,
                             category_id=int(labels[i]) + 1, iscrowd=0,
                             area=float(m.sum()), bbox=[x, y, bw, bh],
                             segmentation=rle))
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=i, name=f'c{i}') for i in (1, 2, 3)])))
    values = []
    for use_crops in (False, True):
        metric = CellCocoMetric(ann_file=str(ann_file), metric=['segm'],
                                proposal_nums=(1, 10, 100))
        metric.dataset_meta = dict(classes=('c1', 'c2', 'c3'))
        for img_id, b, scores, labels, full, crops in preds:
            metric.process({}, [dict(
                img_id=img_id, ori_shape=(h, w),
                pred_instances=dict(bboxes=b, scores=scores, labels=labels,
                                    masks=crops if use_crops else full))])
        values.append(metric.evaluate(size=2))
    assert values[0] == values[1]
    assert 0.05 < values[0]['coco/segm_mAP_50'] < 1
    assert 'coco/segm_leaderboard_AP50' in values[1]


def _metrics(out: str) -> dict:
    """The metric values of mmengine's test summary line."""
    line = [ln for ln in out.splitlines() if 'coco/segm_mAP:' in ln][-1]
    return dict(re.findall(r'(coco/\S+): (\S+)', line))


def test_test_tool_with_crop_masks_matches_the_stock_head(
        trained_tiny, tiny_data_root, tmp_path):
    """tools/test.py on the trained tiny model, with the crop head (the
    configs' default) and with mmdet's FCNMaskHead: the same metric values
    (bbox, segm and the leaderboard AP50) and the same dumped results."""
    work_dir, _ = trained_tiny
    ckpt = last_checkpoint(work_dir)
    runs = {}
    for head in ('CropFCNMaskHead', 'FCNMaskHead'):
        out = tmp_path / f'{head}.pkl'
        proc = run_tool([
            'tools/test.py', TINY_CONFIG, ckpt, '--work-dir',
            str(tmp_path / head), '--data-root', tiny_data_root, '--out',
            str(out), '--cfg-options',
            f'model.roi_head.mask_head.type={head}',
            'model.test_cfg.rcnn.score_thr=0.0'
        ])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with open(out, 'rb') as f:
            runs[head] = (_metrics(proc.stdout + proc.stderr), pickle.load(f))
    (m_crop, d_crop), (m_stock, d_stock) = runs.values()
    assert m_crop == m_stock
    assert 'coco/segm_leaderboard_AP50' in m_crop
    assert len(d_crop) == len(d_stock) > 0
    n_masks = 0
    for a, b in zip(d_crop, d_stock):
        pa, pb = a['pred_instances'], b['pred_instances']
        assert pa['masks'] == pb['masks']  # RLEs, counts as bytes
        assert torch.equal(pa['bboxes'], pb['bboxes'])
        assert torch.equal(pa['scores'], pb['scores'])
        n_masks += len(pa['masks'])
    assert n_masks > 50


def test_to_stock_mask_head_swaps_the_pasting_only():
    from types import SimpleNamespace

    from mmseg_cells.models import to_stock_mask_head
    _, ours = _heads()
    weights = {k: v.clone() for k, v in ours.state_dict().items()}
    model = SimpleNamespace(roi_head=SimpleNamespace(mask_head=ours))
    assert to_stock_mask_head(model) is model
    assert type(model.roi_head.mask_head) is FCNMaskHead
    out = model.roi_head.mask_head._predict_by_feat_single(
        torch.randn(2, 3, 28, 28), torch.tensor([[1., 1., 20., 20.]] * 2),
        torch.tensor([0, 1]), dict(ori_shape=(30, 30), scale_factor=(1, 1)),
        ConfigDict(mask_thr_binary=0.5))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 30, 30)
    for k, v in model.roi_head.mask_head.state_dict().items():
        assert torch.equal(v, weights[k])


def test_split_crop_masks_copies_and_encodes_only_crop_masks():
    """The evaluator shares its sample dicts between metrics: the split
    leaves them as they were, passes other samples through, and encodes the
    crop masks as pycocotools encodes the full masks."""
    from pycocotools import mask as mask_util

    from mmseg_cells.evaluation.metrics.crop_mask_samples import \
        split_crop_masks
    full = np.zeros((2, 20, 30), bool)
    full[0, 2:9, 3:11] = True
    full[1, 12:20, 25:30] = True
    crop = dict(img_id=1, pred_instances=dict(
        scores=torch.ones(2), masks=CropBitmapMasks.from_bitmap(full)))
    plain = dict(img_id=2, pred_instances=dict(scores=torch.ones(1),
                                               masks=torch.zeros(1, 4, 4)))
    samples, rles = split_crop_masks([crop, plain])
    assert samples[1] is plain and rles[1] is None
    assert 'masks' not in samples[0]['pred_instances']
    assert isinstance(crop['pred_instances']['masks'], CropBitmapMasks)
    assert samples[0]['img_id'] == 1
    want = mask_util.encode(np.asfortranarray(
        full.transpose(1, 2, 0).astype(np.uint8)))
    assert [r['counts'] for r in rles[0]] == [
        w['counts'].decode() for w in want]

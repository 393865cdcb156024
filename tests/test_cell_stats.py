"""Tests of ``mmseg_cells.analysis`` and ``tools/analysis/cell_stats.py`` on
hand-checkable cases.

Every expected value below is derived by hand in the comments; the anchor
search is additionally checked against a brute-force evaluation over the
complete mmdet anchor grid.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mmseg_cells.analysis import (anchor_recall, box_stats, capped_recall,
                                  caps_cfg_options,
                                  coco_boxes_xyxy, format_report,
                                  instance_count_stats, instances_per_image,
                                  max_anchor_iou, mmdet_base_anchors,
                                  run_cell_stats)

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = REPO_ROOT / 'tools' / 'analysis' / 'cell_stats.py'


def _load_cli_main() -> Callable[..., None]:
    """``main`` of the command-line tool (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location('cell_stats_cli', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


main = _load_cli_main()

RATIOS = (0.5, 1.0, 2.0)
STRIDES = (4, 8, 16, 32, 64)


def _xywh(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """xyxy -> COCO xywh."""
    return [x1, y1, x2 - x1, y2 - y1]


def _synthetic_coco() -> dict:
    """Three images: 3 boxes, 0 boxes, 1 box + 1 crowd box."""
    boxes = [
        # image 1 (256 x 256)
        (1, 1, [48, 48, 112, 112]),  # = stride-8, scale-8, ratio-1 anchor
        (1, 2, [0, 0, 16, 16]),
        (1, 2, [100, 100, 130, 120]),
        # image 3 (512 x 512)
        (3, 1, [28, 28, 228, 228]),  # 200 x 200 centred on (128, 128)
    ]
    anns = [{
        'id': i, 'image_id': img, 'category_id': cat,
        'bbox': _xywh(*b), 'area': 0.5 * (b[2] - b[0]) * (b[3] - b[1]),
        'iscrowd': 0, 'segmentation': []
    } for i, (img, cat, b) in enumerate(boxes)]
    anns.append({'id': 99, 'image_id': 3, 'category_id': 1, 'iscrowd': 1,
                 'bbox': [0, 0, 10, 10], 'area': 100, 'segmentation': []})
    return {
        'images': [
            {'id': 1, 'file_name': 'a.tif', 'height': 256, 'width': 256},
            {'id': 2, 'file_name': 'b.tif', 'height': 64, 'width': 64},
            {'id': 3, 'file_name': 'c.tif', 'height': 512, 'width': 512},
        ],
        'annotations': anns,
        'categories': [{'id': 1, 'name': 'class1'},
                       {'id': 2, 'name': 'class2'},
                       {'id': 3, 'name': 'class3'}],
    }


# ---------------------------------------------------------------------------
# instances per image / capped recall
# ---------------------------------------------------------------------------
def test_capped_recall_handmade() -> None:
    counts = [1, 5, 10]  # 16 instances
    assert capped_recall(counts, 5) == pytest.approx((1 + 5 + 5) / 16)
    assert capped_recall(counts, 1) == pytest.approx(3 / 16)
    assert capped_recall(counts, 10) == 1.0
    assert capped_recall(counts, 1000) == 1.0
    assert math.isnan(capped_recall([0, 0], 5))


def test_instance_count_stats() -> None:
    st = instance_count_stats([1, 5, 150, 0], caps=(5, 100, 200),
                              dense_threshold=100)
    assert st['num_images'] == 4 and st['num_instances'] == 156
    assert st['median'] == 3.0 and st['max'] == 150 and st['min'] == 0
    assert st['dense_images'] == 1
    assert st['dense_instance_fraction'] == pytest.approx(150 / 156)
    # K=5: 1 + 5 + 5 + 0; K=100: 1 + 5 + 100
    assert st['capped_recall'] == {
        5: pytest.approx(11 / 156), 100: pytest.approx(106 / 156), 200: 1.0}


def test_instances_per_image_counts_empty_and_drops_crowd() -> None:
    coco = _synthetic_coco()
    np.testing.assert_array_equal(instances_per_image(coco), [3, 0, 1])
    np.testing.assert_array_equal(
        instances_per_image(coco, include_crowd=True), [3, 0, 2])
    data = coco_boxes_xyxy(coco)
    np.testing.assert_array_equal(data['boxes'][0], [48, 48, 112, 112])
    np.testing.assert_array_equal(data['img_hw'][-1], [512, 512])


def test_bbox_from_polygon_when_missing() -> None:
    coco = {'images': [{'id': 1, 'height': 50, 'width': 60}],
            'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1,
                             'segmentation': [[10, 20, 30, 20, 30, 40,
                                               10, 40]]}]}
    box = coco_boxes_xyxy(coco)['boxes'][0]
    np.testing.assert_allclose(box, [10, 20, 30, 40], atol=1)


def test_box_stats_sizes_and_per_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 20, 20], [0, 0, 40, 10]], float)
    st = box_stats(boxes, np.array([1, 1, 2]), np.array([50., 300., 400.]),
                   [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}],
                   percentiles=(50, ))
    pct = st['percentiles']
    assert pct['sqrt(w*h)'][50.0] == pytest.approx(20.0)  # 10, 20, 20
    assert pct['min side'][50.0] == pytest.approx(10.0)  # 10, 20, 10
    assert pct['max side'][50.0] == pytest.approx(20.0)  # 10, 20, 40
    assert pct['aspect h/w'][50.0] == pytest.approx(1.0)  # 1, 1, 0.25
    a, b = st['per_class']
    assert (a['count'], b['count']) == (2, 1)
    assert a['median_mask_area'] == pytest.approx(175.0)
    assert a['median_box_area'] == pytest.approx(250.0)
    assert b['median_sqrt_wh'] == pytest.approx(20.0)


# ---------------------------------------------------------------------------
# anchors
# ---------------------------------------------------------------------------
def test_base_anchors_match_mmdet() -> None:
    # mmdet docstring: AnchorGenerator([16], [1.], [1.], [9]) -> +-4.5
    np.testing.assert_allclose(mmdet_base_anchors(9, [1.0], [1.0]),
                               [[-4.5, -4.5, 4.5, 4.5]])
    a = mmdet_base_anchors(4, RATIOS, [8.0, 16.0])
    assert a.shape == (6, 4)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    # scale_major order: ratio-major, scale-minor; ratio = h / w
    np.testing.assert_allclose(h / w, [0.5, 0.5, 1, 1, 2, 2])
    np.testing.assert_allclose(np.sqrt(w * h), [32, 64, 32, 64, 32, 64])


def test_box_equal_to_anchor_has_iou_one() -> None:
    s2 = math.sqrt(2.0)
    boxes = np.array([
        [48, 48, 112, 112],  # stride 8, scale 8, ratio 1 centred (80, 80)
        # stride 4, scale 8, ratio 0.5 (w = 32*sqrt2, h = 32/sqrt2) at (40, 40)
        [40 - 16 * s2, 40 - 8 * s2, 40 + 16 * s2, 40 + 8 * s2],
    ])
    iou, level = max_anchor_iou(boxes, (256, 256), STRIDES, RATIOS, [8.0])
    np.testing.assert_allclose(iou, [1.0, 1.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(level, [1, 0])


def test_200px_box_scale2_has_no_positive_anchor() -> None:
    box = np.array([[28, 28, 228, 228]])  # 200 x 200, centre on P6 grid
    iou, _ = max_anchor_iou(box, (512, 512), STRIDES, RATIOS, [2.0])
    # largest anchors: 128 x 128 (and 181 x 90.5, same area) at P6 ->
    # 128^2 / 200^2
    assert iou[0] == pytest.approx((128 / 200)**2)
    rec = anchor_recall(box, [[512, 512]], [2.0])['recall']
    assert rec == {0.7: 0.0, 0.5: 0.0, 0.3: 1.0}
    # default scale 8: 256 x 256 anchor at P5 (centre 128 = 4 * 32)
    iou8, level8 = max_anchor_iou(box, (512, 512), STRIDES, RATIOS, [8.0])
    assert iou8[0] == pytest.approx((200 / 256)**2)
    assert level8[0] == 3


def test_off_grid_box() -> None:
    # 16 x 16 box centred at (10, 10), halfway between stride-4 centres 8 and
    # 12; with scales [4] the best is the 16 x 16 P2 anchor shifted by (2, 2):
    # 14*14 / (2*256 - 14*14) = 196 / 316
    box = np.array([[2, 2, 18, 18]])
    iou, level = max_anchor_iou(box, (64, 64), STRIDES, RATIOS, [4.0])
    assert iou[0] == pytest.approx(196 / 316)
    assert level[0] == 0


def test_upscale_scales_boxes_and_grid() -> None:
    box = np.array([[24, 24, 40, 40]])  # 16 x 16 centred (32, 32)
    # x1: smallest scale-8 anchor is 32 x 32 at (32, 32): 256 / 1024
    r1 = anchor_recall(box, [[256, 256]], [8.0], upscale=1.0)
    assert r1['mean_max_iou'] == pytest.approx(0.25)
    # x2: the box becomes 32 x 32 at (64, 64) = a P2 anchor
    r2 = anchor_recall(box, [[256, 256]], [8.0], upscale=2.0)
    assert r2['mean_max_iou'] == pytest.approx(1.0)
    assert r2['recall'][0.7] == 1.0 and r2['level_fraction'][0] == 1.0


def _brute_force_max_iou(boxes: np.ndarray, hw: tuple[int, int],
                         scales: list[float]) -> np.ndarray:
    """Max IoU over the full mmdet grid (``grid_priors`` re-implemented)."""
    h, w = hw
    ph, pw = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
    anchors = []
    for s in STRIDES:
        base = mmdet_base_anchors(s, RATIOS, scales)
        sx = np.arange(math.ceil(pw / s)) * s
        sy = np.arange(math.ceil(ph / s)) * s
        xx, yy = np.meshgrid(sx, sy)
        shifts = np.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        anchors.append((shifts + base[None]).reshape(-1, 4))
    a = np.concatenate(anchors)
    ix = np.clip(np.minimum(boxes[:, None, 2], a[:, 2]) -
                 np.maximum(boxes[:, None, 0], a[:, 0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, None, 3], a[:, 3]) -
                 np.maximum(boxes[:, None, 1], a[:, 1]), 0, None)
    inter = ix * iy
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return (inter / (area_b[:, None] + area_a - inter)).max(1)


@pytest.mark.parametrize('scales', [[8.0], [2.0], [3.0, 6.0],
                                    [4.0, 4.0 * 2**0.5]])
def test_windowed_search_equals_brute_force(scales: list[float]) -> None:
    rng = np.random.default_rng(0)
    hw = (100, 130)  # padded to 128 x 160; touches the clipped borders
    n = 300
    wh = np.exp(rng.uniform(np.log(3), np.log(90), size=(n, 2)))
    x1 = rng.uniform(0, hw[1] - wh[:, 0])
    y1 = rng.uniform(0, hw[0] - wh[:, 1])
    boxes = np.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], 1)
    expected = _brute_force_max_iou(boxes, hw, scales)
    got, _ = max_anchor_iou(boxes, hw, STRIDES, RATIOS, scales, window=2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    got1, _ = max_anchor_iou(boxes, hw, STRIDES, RATIOS, scales, window=1,
                             chunk=37)
    np.testing.assert_allclose(got1, expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# end to end
# ---------------------------------------------------------------------------
def test_run_cell_stats_and_format() -> None:
    report = run_cell_stats(_synthetic_coco(), scale_sets=([8.0], [2.0]),
                            upscales=(1.0, 2.0), caps=(1, 3),
                            test_hw=np.array([[10, 20], [30, 40]]))
    assert report['instances']['num_instances'] == 4
    assert report['instances']['capped_recall'] == {
        1: pytest.approx(2 / 4), 3: 1.0}
    assert len(report['anchors']) == 4
    rec = report['recommendation']
    assert rec['rcnn_max_per_img'] == 3
    assert rec['rpn_max_per_img'] == 500  # 2.5 * 3 rounded up to 500
    text = format_report(report)
    for header in ('== 0.', '== 1.', '== 2.', '== 3.', '== 4.'):
        assert header in text


def test_main_writes_json(tmp_path: Path, capsys) -> None:
    src = tmp_path / 'gt.json'
    src.write_text(json.dumps(_synthetic_coco()))
    out = tmp_path / 'sub' / 'report.json'
    main([str(src), '--out', str(out), '--scales', '8', '4,8',
          '--upscales', '1'])
    printed = capsys.readouterr().out
    assert 'Anchor recall' in printed
    report = json.loads(out.read_text())
    assert report['instances']['max'] == 3
    assert [r['label'] for r in report['anchors']] == ['[8]', '[4, 8]']


def test_cli_script_runs_from_repo_root(tmp_path: Path) -> None:
    src = tmp_path / 'gt.json'
    src.write_text(json.dumps(_synthetic_coco()))
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/cell_stats.py', str(src),
         '--scales', '2', '--upscales', '1'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '== 4. Recommendations ==' in proc.stdout


def test_print_cfg_options_gives_the_recommended_caps(tmp_path: Path,
                                                      capsys) -> None:
    """``--print-cfg-options`` prints only the caps of the recommendation,
    as tokens that tools/train.py's --cfg-options merge into the model."""
    from mmengine.config import Config, ConfigDict, DictAction
    src = tmp_path / 'gt.json'
    src.write_text(json.dumps(_synthetic_coco()))
    main([str(src), '--print-cfg-options', '--scales', '8',
          '--upscales', '1'])
    tokens = capsys.readouterr().out.split()
    rec = run_cell_stats(_synthetic_coco(), scale_sets=([8.0], ),
                         upscales=(1.0, ))['recommendation']
    assert tokens == caps_cfg_options(rec)
    cfg = Config(dict(model=dict(
        train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=1000)),
        test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=1000),
                      rcnn=dict(max_per_img=300)))))
    cfg.merge_from_dict(
        {k: DictAction._parse_iterable(v)
         for k, v in (t.split('=', 1) for t in tokens)})
    model = ConfigDict(cfg.model)
    # 3 cells at most: the smallest default cap with full recall, 100
    assert model.test_cfg.rcnn.max_per_img == rec['rcnn_max_per_img'] == 100
    assert model.test_cfg.rpn.max_per_img == rec['rpn_max_per_img'] == 500
    assert model.train_cfg.rpn_proposal.max_per_img == 500
    assert model.test_cfg.rpn.nms_pre == rec['rpn_nms_pre'] == \
        model.train_cfg.rpn_proposal.nms_pre

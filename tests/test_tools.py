"""browse_dataset, plot_curves, the TIFF loading transform, tool errors."""
import json
import os.path as osp

import numpy as np
import pytest

from conftest import TINY_CONFIG, run_tool
from mmseg_cells.data.io import write_image_tif


def test_load_cell_image_gives_bgr_uint8(tmp_path):
    from mmseg_cells.datasets.transforms import LoadCellImageFromFile
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[..., 2] = 10
    path = tmp_path / 'image.tif'
    write_image_tif(path, rgb)  # RGBA, LZW like the real data
    out = LoadCellImageFromFile()(dict(img_path=str(path)))
    assert out['img'].dtype == np.uint8 and out['img'].shape == (5, 7, 3)
    # BGR, as mmdet's loaders and DetDataPreprocessor(bgr_to_rgb=True) expect
    assert (out['img'][..., 2] == 200).all() and (out['img'][..., 0] == 10
                                                  ).all()
    assert out['ori_shape'] == (5, 7)
    f32 = LoadCellImageFromFile(to_float32=True)(dict(img_path=str(path)))
    assert f32['img'].dtype == np.float32
    bad = tmp_path / 'bad.tif'
    bad.write_bytes(b'not a tiff')
    with pytest.raises(ValueError, match=str(bad)):
        LoadCellImageFromFile()(dict(img_path=str(bad)))
    assert LoadCellImageFromFile(ignore_empty=True)(
        dict(img_path=str(bad))) is None


def test_browse_dataset_draws_ground_truth(tiny_data_root, tmp_path):
    proc = run_tool([
        'tools/browse_dataset.py', TINY_CONFIG, '--data-root',
        tiny_data_root, '--output-dir',
        str(tmp_path), '--max-images', '3'
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    pngs = sorted(tmp_path.glob('*.png'))
    assert len(pngs) == 3
    with open(osp.join(tiny_data_root, 'annotations', 'train.json')) as f:
        train = json.load(f)
    folders = {osp.basename(osp.dirname(i['file_name']))
               for i in train['images']}
    assert {p.stem for p in pngs} <= folders  # named after <uuid>, not image
    import cv2
    img = cv2.imread(str(pngs[0]))
    first = next(i for i in train['images'] if i['file_name'].split('/')[1]
                 == pngs[0].stem)
    assert img.shape[:2] == (first['height'], first['width'])
    # the training pipeline's view (compact crop masks, flips, x1.5)
    aug = tmp_path / 'aug'
    proc = run_tool([
        'tools/browse_dataset.py', TINY_CONFIG, '--data-root',
        tiny_data_root, '--output-dir',
        str(aug), '--max-images', '1', '--augment'
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (png, ) = aug.glob('*.png')
    info = next(i for i in train['images']
                if i['file_name'].split('/')[1] == png.stem)
    h, w = cv2.imread(str(png)).shape[:2]
    # mmcv rescales to int(side * 1.5 + 0.5)
    assert {h, w} == {int(info['height'] * 1.5 + .5),
                      int(info['width'] * 1.5 + .5)}


def test_plot_curves_from_training_logs(trained_tiny, tmp_path):
    work_dir, _ = trained_tiny
    proc = run_tool(['tools/plot_curves.py', work_dir, '--out-dir',
                     str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / 'loss.png').stat().st_size > 1000
    assert (tmp_path / 'val_ap50.png').stat().st_size > 1000
    empty = run_tool(['tools/plot_curves.py', str(tmp_path)])
    assert empty.returncode == 1
    assert 'no */vis_data/scalars.json' in empty.stderr


def test_read_curves_averages_per_epoch(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'plot_curves', osp.join(osp.dirname(osp.dirname(__file__)), 'tools',
                                'plot_curves.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    log = tmp_path / 'run' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    rows = [dict(loss=4.0, epoch=1, iter=1), dict(loss=2.0, epoch=1, iter=2),
            {'coco/segm_mAP_50': 0.25, 'step': 1},
            dict(loss=1.0, epoch=2, iter=3),
            {'coco/segm_mAP_50': 0.5, 'step': 2}]
    log.write_text('\n'.join(json.dumps(r) for r in rows))
    curves = mod.read_curves(mod.find_scalar_logs(str(tmp_path)))
    assert curves['loss']['loss'] == [(1, 3.0), (2, 1.0)]
    assert curves['val']['coco/segm_mAP_50'] == [(1, 0.25), (2, 0.5)]


def test_train_flags_fail_clearly_on_cpu(tiny_data_root, tmp_path):
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--data-root',
                     tiny_data_root, '--work-dir', str(tmp_path), '--amp'])
    assert proc.returncode != 0
    assert '--amp needs a CUDA GPU' in proc.stderr
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--data-root',
                     tiny_data_root, '--work-dir', str(tmp_path),
                     '--resume', str(tmp_path / 'missing.pth')])
    assert proc.returncode != 0
    assert 'missing.pth: checkpoint not found' in proc.stderr

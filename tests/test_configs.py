"""Every config under configs/ loads, inherits correctly and builds."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmseg_cells  # noqa: F401
from mmdet.registry import MODELS
from mmseg_cells.models import CBAM

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


def test_expected_configs_exist():
    names = {str(p.relative_to(REPO / 'configs')) for p in CONFIGS}
    assert {
        'mask_rcnn_r50_fpn_cells.py', 'cbam_mask_rcnn.py',
        'ablations/cbam_channel_only.py', 'ablations/cbam_spatial_only.py',
        'ablations/cbam_c3_c5.py', 'ablations/cbam_reduction8.py',
        'ablations/cbam_stage_end.py', 'ablations/gcb_mask_rcnn.py',
        'demo/cbam_mask_rcnn_demo.py', 'demo/mask_rcnn_demo.py'
    } <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_builds(path):
    text = path.read_text()
    first = next(line for line in text.splitlines()
                 if line.strip() and not line.startswith('#'))
    assert first.startswith('_base_'), f'{path}: _base_ must come first'
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports == dict(
        imports=['mmseg_cells'], allow_failed_imports=False)
    assert cfg.model.roi_head.bbox_head.num_classes == 4
    assert cfg.model.roi_head.mask_head.num_classes == 4
    # crowded images: >= 1000 detections and COCOeval maxDets up to 1000
    assert cfg.model.test_cfg.rcnn.max_per_img >= (
        1000 if 'demo' not in str(path) else 300)
    assert max(cfg.val_evaluator.proposal_nums) >= 1000
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}
    assert cfg.default_hooks.checkpoint.save_best == 'coco/segm_mAP_50'
    cfg.model.backbone.init_cfg = None  # no download in tests
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    n_cbam = sum(isinstance(m, CBAM) for m in model.modules())
    if 'cbam' in path.stem and 'gcb' not in path.stem:
        assert n_cbam > 0
        if path.stem in ('cbam_mask_rcnn', 'cbam_mask_rcnn_demo',
                         'cbam_channel_only', 'cbam_spatial_only',
                         'cbam_reduction8'):
            assert n_cbam == 16  # every bottleneck of C2-C5
        elif path.stem == 'cbam_c3_c5':
            assert n_cbam == 13
        elif path.stem == 'cbam_stage_end':
            assert n_cbam == 4
    elif path.stem in ('mask_rcnn_r50_fpn_cells', 'mask_rcnn_demo'):
        assert n_cbam == 0


def test_main_config_recipe():
    cfg = Config.fromfile(str(REPO / 'configs' / 'cbam_mask_rcnn.py'))
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert cfg.train_dataloader.batch_size == 3
    cosine = cfg.param_scheduler[-1]
    assert cosine.type == 'CosineAnnealingLR' and cosine.eta_min == 5e-6
    assert cosine.convert_to_iter_based
    assert cfg.param_scheduler[0].type == 'LinearLR'
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'
    assert cfg.model.test_cfg.rcnn.score_thr <= 0.01
    assert cfg.model.rpn_head.anchor_generator.octave_base_scale == 4
    assert cfg.model.backbone.plugins[0].position == 'after_conv3'
    train = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train[:2] == ['LoadCellImageFromFile', 'LoadCellAnnotations']
    test = cfg.test_dataloader.dataset.pipeline
    assert test[0].type == 'LoadCellImageFromFile'
    assert not any(t.get('with_mask') for t in test)

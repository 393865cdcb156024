"""Every config under configs/ loads, inherits correctly and builds."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmseg_cells.utils import REGISTERING_PACKAGES, register_all_modules
from mmdet.registry import MODELS
from mmseg_cells.models import CBAM

register_all_modules()  # registrations and compat fixes

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
        imports=list(REGISTERING_PACKAGES), allow_failed_imports=False)
    assert cfg.model.roi_head.bbox_head.num_classes == 4
    assert cfg.model.roi_head.mask_head.num_classes == 4
    # crowded images: >= 1000 detections and COCOeval maxDets up to 1000
    assert cfg.model.test_cfg.rcnn.max_per_img >= (
        1000 if 'demo' not in str(path) else 300)
    assert max(cfg.val_evaluator.proposal_nums) >= 1000
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}
    assert cfg.val_evaluator.type == 'CellCocoMetric'
    assert cfg.default_hooks.checkpoint.save_best == \
        'coco/segm_leaderboard_AP50'
    cfg.model.backbone.init_cfg = None  # no download in tests
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    n_cbam = sum(isinstance(m, CBAM) for m in model.modules())
    # lean test-time masks and training IoU, as built from the config
    from mmseg_cells.models import ChunkedBboxOverlaps2D, CropFCNMaskHead
    assert type(model.roi_head.mask_head) is CropFCNMaskHead
    assert isinstance(model.rpn_head.assigner.iou_calculator,
                      ChunkedBboxOverlaps2D)
    assert cfg.visualizer.type == 'CellLocalVisualizer'
    # every CBAM of the configs' backbone gates in place without autograd
    assert all(m.inplace for m in model.modules() if isinstance(m, CBAM))
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


def _one_image_batch(size=256, seed=0):
    """A data batch of one random image with a few square cells."""
    import numpy as np
    import torch
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(
        rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    boxes, masks = [], []
    for i in range(6):
        x, y = rng.integers(4, size - 32, 2)
        s = int(rng.integers(14, 28))
        boxes.append([x, y, x + s, y + s])
        m = np.zeros((size, size), np.uint8)
        m[y:y + s, x:x + s] = 1
        masks.append(m)
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32)
    gt.labels = torch.tensor([i % 4 for i in range(6)])
    gt.masks = BitmapMasks(np.stack(masks), size, size)
    sample = DetDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size),
        pad_shape=(size, size), scale_factor=(1.0, 1.0)))
    sample.gt_instances = gt
    return dict(inputs=[img], data_samples=[sample])


def _pretrained_like(backbone, inputs):
    """Give a randomly initialised backbone the BN state of a pretrained
    one: non-zero scales (mmdet's random init zeroes the last BN of every
    bottleneck, zero_init_residual, which would feed the attention modules
    all-zero maps) and running statistics calibrated on ``inputs`` (with
    the init's mean 0 / var 1, activations die or explode with depth)."""
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm
    gen = torch.Generator().manual_seed(0)
    norms = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    for m in norms:
        m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
        m.bias.data = torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    backbone.train()
    for m in norms:
        m.train()
    with torch.no_grad():
        backbone(inputs)
    for m in norms:
        m.momentum = 0.1


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_attention_learns_where_pretrained_weights_are_frozen(path,
                                                               tmp_path):
    """Each config as written, with its own frozen_stages: every parameter
    of every attention module (CBAM, ContextBlock) learns, while frozen
    stages' pretrained layers stay fixed and in eval mode.

    Configs that load ImageNet weights load a random ResNet-50 checkpoint
    instead (same keys, same ``Pretrained`` init path; BN calibrated on the
    input, see :func:`_pretrained_like`); configs trained from scratch keep
    their own random init. The attention modules start as the identity
    (their last layer is zero) and mmdet's from-scratch init zeroes the
    last BN of every bottleneck, so gradients reach the hidden layers only
    after the layers behind them moved: the check is made on the backward
    pass after two optimizer steps."""
    import torch
    from mmcv.cnn.bricks import ContextBlock
    from torch.nn.modules.batchnorm import _BatchNorm

    from mmdet.models.backbones import ResNet
    cfg = Config.fromfile(str(path))
    frozen = cfg.model.backbone.get('frozen_stages', -1)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    batch = model.data_preprocessor(_one_image_batch(), True)
    init = cfg.model.backbone.get('init_cfg')
    if init is not None:
        assert init.type == 'Pretrained'
        plain = ResNet(depth=cfg.model.backbone.depth,
                       base_channels=cfg.model.backbone.get(
                           'base_channels', 64))
        plain.init_weights()
        _pretrained_like(plain, batch['inputs'])
        ckpt = tmp_path / 'resnet50_random.pth'
        torch.save(plain.state_dict(), ckpt)
        model.backbone.init_cfg = dict(type='Pretrained',
                                       checkpoint=str(ckpt))
    model.init_weights()
    model.train()
    attention = {n: m for n, m in model.named_modules()
                 if isinstance(m, (CBAM, ContextBlock))}
    attn_params = {f'{n}.{k}': p for n, m in attention.items()
                   for k, p in m.named_parameters()}
    prefixes = ['backbone.conv1.', 'backbone.bn1.', 'backbone.stem.'] \
        if frozen >= 0 else []
    prefixes += [f'backbone.layer{i}.' for i in range(1, frozen + 1)]
    frozen_params = {n: p for n, p in model.named_parameters()
                     if n.startswith(tuple(prefixes)) and
                     n not in attn_params}
    if frozen >= 1:
        assert frozen_params
    if 'cbam' in path.stem or 'gcb' in path.stem:
        assert attention
    # modes after model.train(): frozen pretrained norms in eval mode,
    # attention modules (inside frozen stages too) in train mode
    frozen_norms = [n for n, m in model.named_modules()
                    if isinstance(m, _BatchNorm) and
                    n.startswith(tuple(prefixes))]
    assert not [n for n in frozen_norms
                if model.get_submodule(n).training]
    assert all(m.training for m in attention.values())

    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.requires_grad for p in attn_params.values())
    # small steps, as at the start of the warm-up (lr 2e-4 x 1e-3)
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    for step in range(3):
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model.parse_losses(
            model.loss(batch['inputs'], batch['data_samples']))
        loss.backward()
        if step < 2:
            optimizer.step()
    dead = [n for n, p in attn_params.items()
            if p.grad is None or not p.grad.abs().sum() > 0]
    # softmax is shift-invariant: the bias of ContextBlock's attention
    # logits has an exactly zero gradient by construction
    dead = [n for n in dead if not n.endswith('conv_mask.bias')]
    assert not dead, f'attention parameters without gradient: {dead}'
    moved = [n for n, p in frozen_params.items()
             if p.requires_grad or p.grad is not None]
    assert not moved, f'frozen pretrained parameters that train: {moved}'


def test_recipe_trial_is_the_base_pipeline_plus_its_two_transforms():
    """configs/ablations/demo_rot90_hed.py writes the train pipeline out (a
    config can replace a list, not insert into it): it must stay the demo's
    pipeline with only the stain jitter and the rotations added, so that
    the trial measures those two changes and nothing else."""
    base = Config.fromfile(
        str(REPO / 'configs' / 'demo' / 'cbam_mask_rcnn_demo.py'))
    trial = Config.fromfile(
        str(REPO / 'configs' / 'ablations' / 'demo_rot90_hed.py'))
    steps = trial.train_dataloader.dataset.pipeline
    assert [s for s in steps if s['type'] not in (
        'RandomHEDJitter', 'RandomRot90')] == \
        base.train_dataloader.dataset.pipeline
    types = [s['type'] for s in steps]
    # jitter before the x1.5 upscale (cheaper), rotations after the flips
    assert types.index('RandomHEDJitter') < types.index('Resize')
    assert types.index('RandomFlip') + 1 == types.index('RandomRot90')
    assert trial.model == base.model


@pytest.mark.parametrize('name,added,replaced', [
    ('demo_hed_strong.py', ['RandomHEDJitter'], None),
    ('demo_scale_jitter.py', [], 'RandomScaleFactorResize'),
])
def test_recipe_trials_change_one_thing(name, added, replaced):
    """The one-change recipe trials of benchmarks/real_accuracy.py: the demo
    pipeline with one transform added (stain jitter, before the upscale) or
    the fixed x1.5 upscale replaced by scale jitter centred on x1.5."""
    base = Config.fromfile(
        str(REPO / 'configs' / 'demo' / 'cbam_mask_rcnn_demo.py'))
    trial = Config.fromfile(str(REPO / 'configs' / 'ablations' / name))
    steps = [dict(s) for s in trial.train_dataloader.dataset.pipeline]
    want = [dict(s) for s in base.train_dataloader.dataset.pipeline]
    got = [s for s in steps if s['type'] not in added]
    if replaced:
        i = [s['type'] for s in want].index('Resize')
        assert want[i]['scale_factor'] == 1.5
        new = got[i]
        assert new['type'] == replaced
        lo, hi = new['ratio_range']
        assert lo < 1.5 < hi and abs(lo * hi - 1.5**2) < 1e-9
        got[i] = want[i]
    assert got == want
    types = [s['type'] for s in steps]
    for t in added:
        assert types.index(t) < types.index('Resize')
    assert trial.model == base.model
    # the test pipeline (and so the predictor's scale) is the demo's
    assert trial.test_dataloader.dataset.pipeline == \
        base.test_dataloader.dataset.pipeline

"""ChunkedBboxOverlaps2D: the stock IoU, a block of rows at a time."""
import pytest
import torch
from mmdet.models.task_modules.assigners import (BboxOverlaps2D,
                                                 MaxIoUAssigner)
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from conftest import REPO
from mmseg_cells.models import ChunkedBboxOverlaps2D
from mmseg_cells.utils import register_all_modules

register_all_modules()


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 500
    wh = torch.rand(n, 2, generator=g) * 60
    wh[0] = 0  # a degenerate box
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize('mode', ['iou', 'iof', 'giou'])
@pytest.mark.parametrize('max_pairs', [1, 7, 100, 10**9])
def test_blocks_give_the_stock_overlaps(mode, max_pairs):
    a, b = _boxes(53, 0), _boxes(41, 1)
    stock = BboxOverlaps2D()(a, b, mode=mode)
    ours = ChunkedBboxOverlaps2D(max_pairs=max_pairs)(a, b, mode=mode)
    assert ours.shape == (53, 41)
    assert torch.equal(ours, stock)
    # boxes with scores, box structures, aligned mode and empty inputs
    a5 = torch.cat([a, torch.rand(53, 1)], 1)
    assert torch.equal(
        ChunkedBboxOverlaps2D(max_pairs=max_pairs)(
            a5, HorizontalBoxes(b), mode=mode), stock)
    assert torch.equal(
        ChunkedBboxOverlaps2D(max_pairs=max_pairs)(a, a, mode, True),
        BboxOverlaps2D()(a, a, mode, True))
    assert ChunkedBboxOverlaps2D(max_pairs=max_pairs)(
        a, torch.zeros(0, 4)).shape == (53, 0)


def test_assigner_with_blocks_assigns_as_the_stock_one():
    """The RPN assigner of the configs (match_low_quality) gives the same
    assignment with the block-wise IoU."""
    gts, anchors = _boxes(37, 2), _boxes(900, 3)
    gt = InstanceData(bboxes=gts, labels=torch.zeros(37, dtype=torch.long))
    pred = InstanceData(priors=anchors)
    kw = dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
              match_low_quality=True, ignore_iof_thr=-1)
    a = MaxIoUAssigner(**kw).assign(pred, gt)
    b = MaxIoUAssigner(**kw, iou_calculator=dict(
        type='ChunkedBboxOverlaps2D', max_pairs=500)).assign(pred, gt)
    assert (a.gt_inds > 0).sum() > 10
    assert torch.equal(a.gt_inds, b.gt_inds)
    assert torch.equal(a.max_overlaps, b.max_overlaps)


def test_arguments_are_checked_and_the_config_uses_it():
    from mmengine.config import Config
    with pytest.raises(ValueError):
        ChunkedBboxOverlaps2D(max_pairs=0)
    cfg = Config.fromfile(str(REPO / 'configs' / 'cbam_mask_rcnn.py'))
    assert cfg.model.train_cfg.rpn.assigner.iou_calculator.type == \
        'ChunkedBboxOverlaps2D'

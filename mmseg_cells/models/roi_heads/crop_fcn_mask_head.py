"""FCN mask head whose predictions are box crops, not full-image masks."""
import numpy as np
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import Tensor

from mmseg_cells.mask_codec import paste_mask_crop
from mmseg_cells.structures.crop_masks import CropBitmapMasks

__all__ = ['CropFCNMaskHead', 'to_stock_mask_head']


@MODELS.register_module()
class CropFCNMaskHead(FCNMaskHead):
    """:class:`~mmdet.models.roi_heads.mask_heads.FCNMaskHead` that returns
    its predicted masks as :class:`CropBitmapMasks`.

    Training, the layers and the checkpoint keys are mmdet's. At test time
    stock mmdet pastes every detection into a full-image bool mask: ``N x H
    x W`` bytes per image, about 5 GB for 1000 detections on a 2500x1987
    image, which the validation inside training and ``tools/test.py`` then
    hold until the metric RLE-encodes them. This head pastes each
    detection only into its box (:func:`~mmseg_cells.mask_codec.
    paste_mask_crop`, the same bilinear sampling and ``>= mask_thr_binary``
    test as mmdet's ``_do_paste_mask`` on CPU), so the masks of an image
    take the size of the cells. :class:`~mmseg_cells.evaluation.metrics.
    CellCocoMetric` encodes them without building full masks; the metric
    values are those of the stock head (``tests/test_crop_mask_head.py``).

    A negative ``mask_thr_binary`` (uint8 probability maps, a debugging
    mode of mmdet) falls back to the stock full-image masks.
    """

    def _predict_by_feat_single(self,
                                mask_preds: Tensor,
                                bboxes: Tensor,
                                labels: Tensor,
                                img_meta: dict,
                                rcnn_test_cfg: ConfigDict,
                                rescale: bool = False,
                                activate_map: bool = False):
        threshold = rcnn_test_cfg.mask_thr_binary
        if threshold < 0:
            return super()._predict_by_feat_single(
                mask_preds, bboxes, labels, img_meta, rcnn_test_cfg, rescale,
                activate_map)
        scale_factor = bboxes.new_tensor(img_meta['scale_factor']).repeat(
            (1, 2))
        img_h, img_w = img_meta['ori_shape'][:2]
        if not activate_map:
            mask_preds = mask_preds.sigmoid()
        else:  # activated before, in test-time augmentation
            mask_preds = bboxes.new_tensor(mask_preds)
        if rescale:  # in place, as the stock head (the results keep them)
            bboxes /= scale_factor
        else:
            w_scale, h_scale = scale_factor[0, 0], scale_factor[0, 1]
            img_h = int(np.round(img_h * h_scale.item()))
            img_w = int(np.round(img_w * w_scale.item()))
        n = len(mask_preds)
        if not self.class_agnostic:
            mask_preds = mask_preds[torch.arange(n), labels]
        else:
            mask_preds = mask_preds[:, 0]
        probs = mask_preds.detach().float().cpu().numpy()
        boxes = bboxes.detach().float().cpu().numpy()
        crops, offsets = [], np.zeros((n, 2), np.int64)
        for i in range(n):
            crop, x0, y0 = paste_mask_crop(probs[i], boxes[i], img_h, img_w,
                                           threshold=threshold)
            crops.append(crop)
            offsets[i] = (x0, y0)
        return CropBitmapMasks(crops, offsets, img_h, img_w, dtype=bool)


def to_stock_mask_head(model: torch.nn.Module) -> torch.nn.Module:
    """Make ``model``'s :class:`CropFCNMaskHead` mmdet's
    :class:`FCNMaskHead` again, in place (same modules and weights; only the
    test-time pasting changes back to full-image masks). For comparisons
    with stock mmdet (``inference_detector``); returns ``model``."""
    head = model.roi_head.mask_head
    if isinstance(head, CropFCNMaskHead):
        head.__class__ = FCNMaskHead
    return model

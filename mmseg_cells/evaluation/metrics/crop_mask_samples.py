"""Crop-mask predictions in the data samples an evaluator hands its
metrics."""
from typing import List, Optional, Sequence, Tuple

from mmseg_cells.structures.crop_masks import CropBitmapMasks

__all__ = ['split_crop_masks']


def split_crop_masks(
    data_samples: Sequence[dict]
) -> Tuple[List[dict], List[Optional[List[dict]]]]:
    """Take :class:`CropBitmapMasks` predictions out of ``data_samples``.

    mmengine's evaluator hands the same sample dicts to each of its
    metrics, so they are copied (shallowly), not modified.

    Returns:
        tuple: the samples, where a sample whose ``pred_instances.masks``
        are crop masks is a copy without them; and per sample the COCO RLEs
        of those masks (``counts`` as ``str``, encoded from the crops), or
        None where the masks were not crop masks (or absent).
    """
    samples, rles = [], []
    for sample in data_samples:
        pred = sample.get('pred_instances')
        masks = None if pred is None else pred.get('masks')
        if isinstance(masks, CropBitmapMasks):
            pred = {k: v for k, v in pred.items() if k != 'masks'}
            sample = dict(sample, pred_instances=pred)
            rles.append(masks.to_rle_list())
        else:
            rles.append(None)
        samples.append(sample)
    return samples, rles

"""``LoadAnnotations`` that keeps instance masks as per-instance crops."""
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS

from mmseg_cells.structures.crop_masks import CropBitmapMasks


@TRANSFORMS.register_module()
class LoadCellAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` with compact instance masks.

    With ``with_mask=True`` and ``compact_masks=True`` (and the default
    ``poly2mask=True``), every instance mask (polygons, uncompressed or
    compressed COCO RLE) is decoded straight into its tight crop, giving a
    :class:`~mmseg_cells.structures.CropBitmapMasks` instead of a
    ``BitmapMasks`` of ``N`` full-image bitmaps: RLE runs are decoded into
    the crop only, polygons are rasterised to RLE by pycocotools first (as
    in ``LoadAnnotations._poly2mask``), so no full-size mask is allocated.
    The decoded pixels, boxes, labels and ignore flags (including mmdet's
    handling of invalid polygons/RLEs) are those of ``LoadAnnotations``;
    ``CropBitmapMasks`` behaves like ``BitmapMasks`` in mmdet's geometric
    transforms, ``PackDetInputs``, ``DetDataPreprocessor`` and the mask head
    targets.

    Args:
        compact_masks (bool): Produce ``CropBitmapMasks``; False gives the
            stock ``BitmapMasks``. Defaults to True.
        **kwargs: The arguments of ``mmdet.datasets.transforms
            .LoadAnnotations`` (``with_bbox``, ``with_label``, ``with_mask``,
            ``poly2mask``, ``box_type``, ...).
    """

    def __init__(self, *args, compact_masks: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compact_masks = compact_masks

    def _load_masks(self, results: dict) -> None:
        """Load ``results['gt_masks']`` (compact unless disabled)."""
        if not (self.compact_masks and self.poly2mask):
            super()._load_masks(results)
            return
        h, w = results['ori_shape']
        gt_masks = self._process_masks(results)
        results['gt_masks'] = CropBitmapMasks.from_annotations(gt_masks, h, w)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', compact_masks={self.compact_masks})')


__all__ = ['LoadCellAnnotations']

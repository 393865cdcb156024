"""mmdet's DetLocalVisualizer, also for crop masks (registers it)."""
from typing import List, Optional

import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer
from mmengine.structures import InstanceData

from mmseg_cells import compat  # noqa: F401  (first: stack fixes)
from mmseg_cells.structures.crop_masks import CropBitmapMasks

__all__ = ['CellLocalVisualizer']


@VISUALIZERS.register_module()
class CellLocalVisualizer(DetLocalVisualizer):
    """:class:`~mmdet.visualization.DetLocalVisualizer` that also draws
    :class:`CropBitmapMasks` (the predictions of
    :class:`~mmseg_cells.models.CropFCNMaskHead`), by expanding them to
    full masks for the one image being drawn. Arguments are
    DetLocalVisualizer's."""

    def _draw_instances(self, image: np.ndarray, instances: InstanceData,
                        classes: Optional[List[str]],
                        palette: Optional[List[tuple]]) -> np.ndarray:
        masks = instances.get('masks')
        if isinstance(masks, CropBitmapMasks):
            instances = instances.clone()
            instances.masks = masks.to_ndarray().astype(bool)
        return super()._draw_instances(image, instances, classes, palette)

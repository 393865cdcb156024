"""Object instances of per-class instance-id maps (the hw3 ``classN.tif``
files) and their COCO annotation fields.

Every distinct non-zero id of a class map is one instance of that class;
the same id value in two class maps is two different instances. Instances
are kept as tight boolean crops, and masks are encoded as compressed COCO
RLE (``counts`` is a ``str``) straight from the crop.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
from scipy import ndimage

from mmseg_cells.mask_codec import encode_crop_rle

__all__ = ['Instance', 'encode_instances', 'instances_from_class_maps']

#: Ids larger than this are compacted before ``ndimage.find_objects`` (whose
#: output has one entry per id value up to the maximum).
_MAX_DIRECT_LABEL = 1 << 20

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True, eq=False)
class Instance:
    """One object instance, stored as a tight boolean crop.

    Attributes:
        category_id: COCO category id (``N`` of ``classN.tif``).
        instance_id: The id value in the class map.
        y0: Top row of the crop in the image.
        x0: Left column of the crop in the image.
        mask: ``h x w`` bool crop; its bounding box is tight.
        image_shape: ``(H, W)`` of the full image.
    """
    category_id: int
    instance_id: int
    y0: int
    x0: int
    mask: np.ndarray
    image_shape: Tuple[int, int]

    @property
    def bbox(self) -> List[int]:
        """Tight ``[x, y, w, h]`` box in integer pixels."""
        h, w = self.mask.shape
        return [self.x0, self.y0, w, h]

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(np.count_nonzero(self.mask))

    def full_mask(self) -> np.ndarray:
        """Return the ``H x W`` bool mask."""
        out = np.zeros(self.image_shape, dtype=bool)
        h, w = self.mask.shape
        out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.mask
        return out

    def num_components(self) -> int:
        """Number of 8-connected components of the mask."""
        return int(ndimage.label(self.mask, structure=_EIGHT_CONNECTED)[1])


def instances_from_class_maps(
        class_maps: Mapping[int, np.ndarray]) -> List[Instance]:
    """Split per-class instance-id maps into instances.

    Args:
        class_maps: ``{category_id: H x W integer id map}``; 0 is background.
            All maps must have the same shape.

    Returns:
        list[Instance]: One entry per distinct non-zero id of every map,
        ordered by category id, then id value. The same id in two maps gives
        two instances.
    """
    instances: List[Instance] = []
    shapes = {tuple(m.shape) for m in class_maps.values()}
    if len(shapes) > 1:
        raise ValueError(f'class maps have different shapes: {shapes}')
    for cat_id in sorted(class_maps):
        ids = np.asarray(class_maps[cat_id])
        if ids.ndim != 2:
            raise ValueError(f'class map {cat_id} is not 2-D: {ids.shape}')
        if not np.issubdtype(ids.dtype, np.integer):
            ids = ids.astype(np.int64)
        image_shape = (int(ids.shape[0]), int(ids.shape[1]))
        max_id = int(ids.max()) if ids.size else 0
        if max_id == 0:
            continue
        if max_id > _MAX_DIRECT_LABEL:
            values, labels = np.unique(ids, return_inverse=True)
            labels = labels.reshape(ids.shape)
            # values[0] is 0 (background) unless the map has no background.
            offset = 0 if values[0] == 0 else 1
            labels = labels + offset
            values = np.concatenate([[0], values]) if offset else values
        else:
            labels, values = ids, None
        for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            crop = labels[sl] == idx
            value = idx if values is None else int(values[idx])
            instances.append(
                Instance(
                    category_id=int(cat_id),
                    instance_id=int(value),
                    y0=int(sl[0].start),
                    x0=int(sl[1].start),
                    mask=crop,
                    image_shape=image_shape))
    return instances


def encode_instances(instances: Sequence[Instance]) -> List[Dict[str, Any]]:
    """COCO annotation fields (without ``id``/``image_id``) for instances:
    ``category_id``, ``segmentation`` (compressed RLE, ``counts`` str),
    ``area``, ``bbox`` and ``iscrowd``."""
    if not instances:
        return []
    height, width = instances[0].image_shape
    return [{
        'category_id': inst.category_id,
        'segmentation': encode_crop_rle(inst.mask, inst.x0, inst.y0, height,
                                        width),
        'area': inst.area,
        'bbox': inst.bbox,
        'iscrowd': 0,
    } for inst in instances]

"""Dataset analysis helpers (pure numpy / pycocotools, no torch or mmdet).

* :mod:`.dataset_stats`: loading a COCO ground truth; image sizes,
  instances per image and box sizes.
* :mod:`.anchors`: mmdet's anchor generator in numpy and the anchor recall
  of candidate anchor settings.
* :mod:`.recommend`: config values derived from those statistics.
* :mod:`.report`: the whole report, as a dict, as text and JSON-safe.

These modules are safe to import on a machine without the deep-learning
stack; ``tools/analysis/cell_stats.py`` is their command line.
"""
from .anchors import (DEFAULT_RATIOS, DEFAULT_SCALE_SETS, DEFAULT_STRIDES,
                      IOU_THRS, anchor_recall, anchor_recall_table,
                      max_anchor_iou, mmdet_base_anchors, scale_label)
from .dataset_stats import (DEFAULT_CAPS, DEFAULT_UPSCALES,
                            MMDET_DEFAULT_SCALE, PERCENTILES, SIZE_BUCKETS,
                            box_stats, capped_recall, coco_boxes_xyxy,
                            image_size_stats, images_hw, instance_count_stats,
                            instances_per_image, load_coco, load_image_sizes)
from .recommend import caps_cfg_options, recommend
from .report import format_report, format_table, run_cell_stats, to_jsonable

__all__ = [
    'DEFAULT_CAPS', 'DEFAULT_RATIOS', 'DEFAULT_SCALE_SETS', 'DEFAULT_STRIDES',
    'DEFAULT_UPSCALES', 'IOU_THRS', 'MMDET_DEFAULT_SCALE', 'PERCENTILES',
    'SIZE_BUCKETS', 'anchor_recall', 'anchor_recall_table', 'box_stats',
    'capped_recall', 'caps_cfg_options', 'coco_boxes_xyxy', 'format_report', 'format_table',
    'image_size_stats', 'images_hw', 'instance_count_stats',
    'instances_per_image', 'load_coco', 'load_image_sizes', 'max_anchor_iou',
    'mmdet_base_anchors', 'recommend', 'run_cell_stats', 'scale_label',
    'to_jsonable'
]

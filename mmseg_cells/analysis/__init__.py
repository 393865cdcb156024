"""Dataset analysis helpers (pure numpy / pycocotools, no torch or mmdet).

These modules are safe to import on a machine without the deep-learning
stack; they are used by the command-line tools under ``tools/analysis``.
"""
from .cell_stats import (DEFAULT_CAPS, DEFAULT_RATIOS, DEFAULT_SCALE_SETS,
                         DEFAULT_STRIDES, DEFAULT_UPSCALES, anchor_recall,
                         anchor_recall_table, box_stats, capped_recall,
                         coco_boxes_xyxy, instance_count_stats,
                         instances_per_image, load_coco, max_anchor_iou,
                         mmdet_base_anchors, recommend, run_cell_stats)

__all__ = [
    'DEFAULT_CAPS', 'DEFAULT_RATIOS', 'DEFAULT_SCALE_SETS', 'DEFAULT_STRIDES',
    'DEFAULT_UPSCALES', 'anchor_recall', 'anchor_recall_table', 'box_stats',
    'capped_recall', 'coco_boxes_xyxy', 'instance_count_stats',
    'instances_per_image', 'load_coco', 'max_anchor_iou',
    'mmdet_base_anchors', 'recommend', 'run_cell_stats'
]

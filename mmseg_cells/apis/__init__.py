"""Inference: :class:`CellPredictor` and the pieces it is made of.

- :mod:`.detections`: :class:`Detections`, one image's result;
- :mod:`.tiling`: large images by overlapping tiles, merged without
  duplicates;
- :mod:`.fast_roi`: the RoI heads' inference fast paths;
- :mod:`.fast_rpn`: the RPN's proposals by ``topk`` (bounded path);
- :mod:`.inference_model`: BN folding / channels-last rewrite, probed;
- :mod:`.tta`: flip test-time augmentation;
- :mod:`.results`: COCO results entries and instance label maps;
- :mod:`.slide`: whole slides tile by tile, results streamed;
- :mod:`.writers`: streamed COCO results, QuPath GeoJSON, slide overlays;
- :mod:`.work_bounds`: :class:`WorkBounds`, per-image work caps that keep
  the AP50;
- :mod:`.predictor`: :class:`CellPredictor`, which runs them.
"""
from .detections import Detections
from .fast_roi import extract_roi_feats
from .inference_model import rewrite_for_inference
from .predictor import CellPredictor
from .results import coco_results, instance_label_maps, published_score
from .slide import predict_slide, predict_slide_to_files, slide_windows
from .tiling import predict_tiled, should_tile, tile_grid
from .tta import predict_flip_tta
from .work_bounds import WorkBounds
from .writers import CocoResultsWriter, GeoJSONWriter, SlideOverlayWriter

__all__ = [
    'CellPredictor', 'CocoResultsWriter', 'Detections', 'GeoJSONWriter',
    'SlideOverlayWriter', 'WorkBounds', 'coco_results', 'extract_roi_feats',
    'instance_label_maps', 'predict_flip_tta', 'predict_slide',
    'predict_slide_to_files', 'predict_tiled', 'published_score',
    'rewrite_for_inference', 'should_tile', 'slide_windows', 'tile_grid'
]

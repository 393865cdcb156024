from .predictor import CellPredictor, Detections, predict_tiled, tile_grid

__all__ = ['CellPredictor', 'Detections', 'predict_tiled', 'tile_grid']

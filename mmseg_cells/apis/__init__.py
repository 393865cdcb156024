from .predictor import CellPredictor, Detections, tile_grid

__all__ = ['CellPredictor', 'Detections', 'tile_grid']

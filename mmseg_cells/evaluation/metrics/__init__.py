from .cell_coco_metric import CellCocoMetric

__all__ = ['CellCocoMetric']

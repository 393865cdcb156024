from mmseg_cells import compat  # noqa: F401  (first: stack fixes)
from .cell_coco_metric import CellCocoMetric

__all__ = ['CellCocoMetric']

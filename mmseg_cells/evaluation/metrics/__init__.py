from mmseg_cells import compat  # noqa: F401  (first: stack fixes)
from .cell_coco_metric import CellCocoMetric
from .dump_results import CellDumpDetResults

__all__ = ['CellCocoMetric', 'CellDumpDetResults']

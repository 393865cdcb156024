"""mmseg-cells: MMDetection 3.x extension for cell instance segmentation.

Importing the package is light (no torch, no mmdet), so that the data
tools (converter, readers, synthetic generator in :mod:`mmseg_cells.data`)
and the analysis helpers start fast and run without the training stack.

The modules for MMDetection's registries live in three packages that the
configs import (``custom_imports``) and that
:func:`mmseg_cells.utils.register_all_modules` imports for tools and
scripts: :mod:`mmseg_cells.models` (the ``CBAM`` plugin, the
``ResNetStagePlugins`` backbone), :mod:`mmseg_cells.datasets` (the
``LoadCellImageFromFile`` / ``LoadCellAnnotations`` transforms) and
:mod:`mmseg_cells.evaluation.metrics` (``CellCocoMetric``). Each of them
first applies the stack fixes of :mod:`mmseg_cells.compat`.
"""
from .version import __version__

__all__ = ['__version__']

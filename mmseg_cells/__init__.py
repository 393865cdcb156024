"""mmseg-cells: MMDetection 3.x extension for cell instance segmentation.

Importing the package (every project config does, through
``custom_imports=dict(imports=['mmseg_cells'])``) applies the stack fixes of
:mod:`mmseg_cells.compat` and registers the project's modules in
MMDetection's registries: the ``CBAM`` plugin, the ``ResNetStagePlugins``
backbone, the ``LoadCellImageFromFile`` / ``LoadCellAnnotations`` transforms
and the ``CellCocoMetric`` metric.
"""
from . import compat  # noqa: F401  (first: fixes torch.load & torchvision://)
from .datasets import *  # noqa: F401,F403
from .evaluation.metrics import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .version import __version__

__all__ = ['__version__']

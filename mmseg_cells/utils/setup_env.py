"""Registration of the project's modules for tools and scripts."""
import importlib
from typing import Tuple

__all__ = ['REGISTERING_PACKAGES', 'register_all_modules']

#: The packages whose import registers modules in MMDetection's registries
#: (and applies :mod:`mmseg_cells.compat`); the configs' ``custom_imports``
#: list the same ones.
REGISTERING_PACKAGES: Tuple[str, ...] = (
    'mmseg_cells.datasets', 'mmseg_cells.evaluation.metrics',
    'mmseg_cells.models', 'mmseg_cells.visualization.local_visualizer')


def register_all_modules() -> None:
    """Import every registering package of mmseg-cells (the counterpart of
    ``mmdet.utils.register_all_modules`` for scripts that build models or
    datasets without loading a project config)."""
    for name in REGISTERING_PACKAGES:
        importlib.import_module(name)

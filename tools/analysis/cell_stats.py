#!/usr/bin/env python
"""Cell dataset statistics for tuning a Mask R-CNN config.

Usage (from the repository root)::

    python tools/analysis/cell_stats.py COCO_JSON [--out report.json]
        [--test-info test_image_name_to_ids.json]

Thin wrapper around :mod:`mmseg_cells.analysis.cell_stats` (numpy and
pycocotools only). The analysis module is loaded straight from its file in
this checkout, because importing the ``mmseg_cells`` package runs its
``__init__``, which imports torch and mmdet (seconds, and not needed here).
If the file is not there (script copied elsewhere), the installed package is
imported, with the repository root put on ``sys.path`` as a fallback.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType


__all__ = ['load_cell_stats', 'main']


REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_FILE = REPO_ROOT / 'mmseg_cells' / 'analysis' / 'cell_stats.py'


def load_cell_stats() -> ModuleType:
    """The ``cell_stats`` module, from this checkout if not installed."""
    sys.path.insert(0, str(REPO_ROOT))
    from mmseg_cells.analysis import cell_stats
    return cell_stats


def main() -> None:
    """Entry point."""
    load_cell_stats().main(sys.argv[1:])


if __name__ == '__main__':
    main()

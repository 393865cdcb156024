"""Helpers shared by the model benchmarks of ``benchmarks/``.

Not a benchmark itself. Results are recorded with
:func:`convert_speed.append_result` (re-exported here), so every script
writes the same ``benchmarks/RESULTS.md`` table format.
"""
import gc
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(REPO), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from convert_speed import (REAL_SIZES, RESULTS, append_result,  # noqa: E402
                           machine_info)

__all__ = [
    'BASE_CONFIG', 'CBAM_CONFIG', 'REAL_SIZES', 'RESULTS',
    'add_record_args', 'append_result', 'interleaved', 'load_config',
    'machine_info', 'quiet', 'ratio_summary', 'synthetic_image', 'torch_info'
]

BASE_CONFIG = str(REPO / 'configs' / 'mask_rcnn_r50_fpn_cells.py')
CBAM_CONFIG = str(REPO / 'configs' / 'cbam_mask_rcnn.py')


def add_record_args(parser) -> None:
    """``--no-record``, ``--label`` and ``--results``: whether and where a
    benchmark appends its rows, and text added to its name there."""
    parser.add_argument('--no-record', action='store_true',
                        help='do not append to benchmarks/RESULTS.md')
    parser.add_argument('--label', default='',
                        help='text added to the RESULTS.md benchmark name')
    parser.add_argument('--results', type=Path, default=RESULTS,
                        help='RESULTS.md to append to')


def quiet() -> None:
    """Silence the deprecation chatter of the pinned stack."""
    warnings.filterwarnings('ignore')
    import logging
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.ERROR)


def torch_info() -> str:
    import torch
    return f'torch {torch.__version__}, {torch.get_num_threads()} threads'


def load_config(path: str,
                score_thr: Optional[float] = None,
                max_per_img: Optional[int] = None):
    """A model config with random init (no download)."""
    from mmengine.config import Config
    from mmseg_cells.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    if score_thr is not None:
        cfg.model.test_cfg.rcnn.score_thr = float(score_thr)
    if max_per_img is not None:
        cfg.model.test_cfg.rcnn.max_per_img = int(max_per_img)
    return cfg


def synthetic_image(seed: int, height: int, width: int,
                    max_cells: Optional[int] = None,
                    crowded: Optional[bool] = None):
    """(rgb, {class: id map}) from the project's H&E generator."""
    from mmseg_cells.data.synthetic import synthesize_sample
    return synthesize_sample(
        np.random.default_rng(seed), height, width, max_cells=max_cells,
        crowded=crowded)


def interleaved(fns: Dict[str, Callable[[], object]], reps: int,
                warmup: int = 1,
                on_rep: Optional[Callable[[int, Dict[str, float]],
                                          None]] = None
                ) -> Dict[str, List[float]]:
    """Time each callable ``reps`` times, interleaved (A B, B A, A B ...)
    so that drifting machine load hits all of them alike. Returns the
    seconds of every repetition per name."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times = {n: [] for n in names}
    for r in range(reps):
        order = names if r % 2 == 0 else names[::-1]
        this = {}
        for n in order:
            gc.collect()
            t0 = time.perf_counter()
            fns[n]()
            this[n] = time.perf_counter() - t0
            times[n].append(this[n])
        if on_rep is not None:
            on_rep(r, this)
    return times


def ratio_summary(num: Sequence[float], den: Sequence[float]
                  ) -> Tuple[float, float, float]:
    """(median, min, max) of the per-repetition ratios ``num / den``."""
    r = np.asarray(num, float) / np.asarray(den, float)
    return float(np.median(r)), float(r.min()), float(r.max())


def load_avg() -> str:
    if hasattr(os, 'getloadavg'):
        return f'{os.getloadavg()[0]:.1f}'
    return '?'

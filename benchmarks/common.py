"""Helpers shared by the benchmarks of ``benchmarks/``.

Not a benchmark itself. Every script records its results with
:func:`append_result`, so that ``benchmarks/RESULTS.md`` has one table
format; the data helpers (:data:`REAL_SIZES`, :func:`place_ellipses`,
:func:`synthetic_image`) give them the same inputs. Importing this module
puts the repository and ``benchmarks/`` on ``sys.path`` and imports numpy
and :mod:`mmseg_cells.utils.atomic` only (torch, mmdet and the data
generator are imported by the helpers that need them).
"""
import datetime
import gc
import os
import platform
import re
import subprocess
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

from mmseg_cells.utils.atomic import atomic_write  # noqa: E402

__all__ = [
    'BASE_CONFIG', 'CBAM_CONFIG', 'CLASS_PROBS', 'REAL_SIZES', 'REPO',
    'RESULTS', 'add_record_args', 'append_result', 'interleaved', 'load_avg',
    'load_config', 'machine_info', 'paint_cells', 'place_ellipses', 'quiet',
    'ratio_summary', 'run_logged', 'run_peak', 'schedule_options',
    'synthetic_image', 'torch_info'
]

BASE_CONFIG = str(REPO / 'configs' / 'mask_rcnn_r50_fpn_cells.py')
CBAM_CONFIG = str(REPO / 'configs' / 'cbam_mask_rcnn.py')
RESULTS = BENCH_DIR / 'RESULTS.md'

# (height, width) of the 101 hw3 test images (test_image_name_to_ids.json),
# embedded so that the benchmark runs without ../shared.
REAL_SIZES: List[Tuple[int, int]] = [
    (33, 86), (37, 85), (82, 35), (87, 66), (109, 113), (123, 114),
    (125, 129), (125, 171), (128, 128), (134, 124), (134, 224), (139, 88),
    (142, 115), (143, 320), (150, 150), (151, 147), (157, 219), (160, 1500),
    (170, 145), (171, 277), (171, 634), (174, 482), (179, 95), (185, 221),
    (201, 464), (206, 272), (221, 242), (222, 222), (229, 393), (233, 490),
    (237, 240), (252, 230), (253, 316), (255, 170), (272, 264), (277, 302),
    (293, 341), (297, 296), (300, 300), (306, 443), (307, 582), (309, 448),
    (315, 333), (316, 177), (325, 429), (348, 348), (350, 265), (367, 431),
    (372, 688), (373, 299), (374, 651), (384, 497), (401, 443), (426, 491),
    (430, 1987), (441, 528), (446, 512), (449, 935), (460, 500), (496, 524),
    (503, 477), (509, 539), (518, 783), (523, 858), (547, 563), (556, 736),
    (566, 615), (567, 796), (578, 676), (582, 583), (585, 839), (600, 600),
    (633, 709), (635, 840), (653, 664), (655, 787), (743, 435), (755, 601),
    (781, 892), (833, 748), (849, 388), (879, 726), (885, 633), (912, 1007),
    (950, 310), (992, 1079), (1000, 350), (1000, 400), (1005, 1164),
    (1026, 1158), (1200, 410), (1251, 1500), (1315, 1460), (1400, 1872),
    (1500, 760), (1500, 1500), (1771, 1760), (1974, 868), (2000, 475),
    (2150, 1401), (2500, 735)
]

#: Share of instances per class (class1..class4) in the real validation
#: annotations.
CLASS_PROBS = (0.262, 0.690, 0.028, 0.020)


# ------------------------------------------------------------------ records
def load_avg() -> str:
    """The 1-minute load average as text (``'?'`` where unknown)."""
    if hasattr(os, 'getloadavg'):
        return f'{os.getloadavg()[0]:.1f}'
    return '?'


def machine_info() -> str:
    """One-line description of the machine and software."""
    load = f', load avg {load_avg()}' if hasattr(os, 'getloadavg') else ''
    return (f'{platform.platform()}, {platform.machine()}, '
            f'{os.cpu_count()} CPUs{load}, Python '
            f'{platform.python_version()}, numpy {np.__version__}')


def append_result(benchmark: str,
                  rows: Sequence[Tuple[str, str, str]],
                  path: Path = RESULTS,
                  section: str = None) -> None:
    """Append ``(metric, value, target)`` rows to the ``## <section>``
    section (default: ``benchmark``) of ``RESULTS.md``, created with a
    header when missing. ``benchmark`` fills the benchmark column."""
    header = ['| date | benchmark | metric | value | target | machine |',
              '|---|---|---|---|---|---|']
    date = datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %z')
    machine = machine_info()
    new = [f'| {date} | {benchmark} | {m} | {v} | {t} | {machine} |'
           for m, v, t in rows]
    lines = path.read_text().splitlines() if path.exists() else [
        '# Benchmark results', '',
        'Rows are appended by the scripts in `benchmarks/`; one section '
        'per benchmark.'
    ]
    title = f'## {section or benchmark}'
    if title in lines:
        i = lines.index(title) + 1
        while i < len(lines) and not lines[i].startswith('|'):
            if lines[i].startswith('## '):
                break
            i += 1
        if i < len(lines) and lines[i].startswith('|'):
            while i < len(lines) and lines[i].startswith('|'):
                i += 1
            lines[i:i] = new
        else:
            lines[i:i] = header + new + ['']
    else:
        if lines and lines[-1].strip():
            lines.append('')
        lines += [title, ''] + header + new
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')




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
    """Torch version and thread count, for the result rows."""
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


# -------------------------------------------------------------------- data
def place_ellipses(rng: np.random.Generator,
                   height: int,
                   width: int,
                   count: int,
                   median_side: float,
                   side_range: Tuple[float, float],
                   max_attempts: int,
                   label_first: bool = False
                   ) -> Tuple[np.ndarray, List[Tuple[int, int, int,
                                                     np.ndarray]]]:
    """Random non-overlapping elliptic cells with class labels.

    Every attempt draws a box side (log-normal around ``median_side``,
    sigma 0.3, clipped to ``side_range``), a minor/major axis ratio in
    ``[0.7, 1]``, a horizontal or vertical major axis and a centre uniform
    in the image; a cell that would overlap an earlier one is dropped. Stops
    after ``count`` cells or ``max_attempts`` attempts. Labels are drawn
    from :data:`CLASS_PROBS`, at the start of every attempt with
    ``label_first``, else after every placed cell (for one seed the two
    orders give different cells).

    Returns:
        tuple: ``(occupied, cells)``: the ``height x width`` bool union of
        the cells and one ``(label 0..3, y0, x0, mask)`` per cell, ``mask``
        being the bool crop of the cell's box whose top left is
        ``(y0, x0)``.
    """
    occupied = np.zeros((height, width), bool)
    cells = []
    attempts = 0
    while len(cells) < count and attempts < max_attempts:
        attempts += 1
        if label_first:
            label = int(rng.choice(4, p=CLASS_PROBS))
        side = float(np.clip(rng.lognormal(np.log(median_side), 0.3),
                             *side_range))
        ry = side / 2
        rx = max(side / 2 * rng.uniform(0.7, 1.0), 2.0)
        if rng.random() < 0.5:
            ry, rx = rx, ry
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, height)
        x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, width)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        blob = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
        if not blob.any() or (blob & occupied[y0:y1, x0:x1]).any():
            continue  # cells do not overlap: try another place
        occupied[y0:y1, x0:x1] |= blob
        if not label_first:
            label = int(rng.choice(4, p=CLASS_PROBS))
        cells.append((label, y0, x0, blob))
    return occupied, cells


def paint_cells(occupied: np.ndarray) -> np.ndarray:
    """A flat ``H x W x 3`` uint8 image: purple cells on a pink ground."""
    rgb = np.empty(occupied.shape + (3, ), np.uint8)
    rgb[...] = (232, 196, 222)
    rgb[occupied] = (120, 60, 150)
    return rgb


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


def run_logged(cmd: Sequence, log: Path,
               threads: Optional[int] = None) -> float:
    """Run ``cmd`` from the repository root with its output in ``log``;
    returns the seconds it took. ``threads`` sets ``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS`` (default: the environment's, else one per CPU). A
    failure stops the benchmark with the command and the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if threads is None:
        env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    else:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    with open(log, 'w') as f:
        proc = subprocess.run([str(c) for c in cmd], cwd=REPO, stdout=f,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f'failed ({proc.returncode}): '
                         f'{" ".join(map(str, cmd))}\n'
                         f'{log.read_text()[-3000:]}')
    return time.perf_counter() - t0


# runs a command and prints its peak RSS (KiB on Linux) as the last line
_PEAK = ('import resource, subprocess, sys; '
         'rc = subprocess.run(sys.argv[1:]).returncode; '
         'print("PEAK_KIB", resource.getrusage('
         'resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)')


def run_peak(cmd: Sequence, log: Path,
             threads: Optional[int] = None) -> Tuple[float, str]:
    """Run ``cmd`` in a fresh process (:func:`run_logged`); returns (the
    peak RSS in MiB of its largest process, its output)."""
    run_logged([sys.executable, '-c', _PEAK, *cmd], log, threads)
    out = log.read_text()
    kib = int(re.findall(r'PEAK_KIB (\d+)', out)[-1])
    return kib / 1024, out


def schedule_options(epochs: int) -> List[str]:
    """``--cfg-options`` giving a project config's schedule ``epochs``
    epochs (the cosine phase is ``param_scheduler.1`` in the demo and the
    real configs), one evaluation at the end."""
    return [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'param_scheduler.1.end={epochs}', f'param_scheduler.1.T_max={epochs}'
    ]

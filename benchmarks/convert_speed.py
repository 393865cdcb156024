"""Benchmark of the hw3 -> COCO converter.

Generates a synthetic hw3 data root whose image sizes follow the real test
set, with a heavy-tailed number of small blob instances per image (median
about 18, one image with 800; median box side about 21 px), writes it with
the project's hw3 writers, then times :func:`convert_hw3` with 2 workers.

Usage (from the repository root)::

    python benchmarks/convert_speed.py [--images 209] [--workers 2]
        [--seed 0] [--keep DIR] [--no-record]

The result is printed and appended to ``benchmarks/RESULTS.md`` under the
``## convert_speed`` section. Target: <= 30 s for 209 images.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:
    import mmseg_cells  # noqa: F401
except ModuleNotFoundError as e:  # not installed: run from a checkout
    if e.name != 'mmseg_cells':
        raise
    sys.path.insert(0, str(REPO))
from mmseg_cells.data.hw3_coco import convert_hw3  # noqa: E402
from mmseg_cells.data.io import (write_image_tif,  # noqa: E402
                                 write_instance_map)
from mmseg_cells.utils.atomic import atomic_write  # noqa: E402

__all__ = ['append_result', 'generate_dataset', 'machine_info', 'main']

BENCHMARK = 'convert_speed'
TARGET_S = 30.0
RESULTS = REPO / 'benchmarks' / 'RESULTS.md'
SIZES_JSON = (REPO.parent / 'shared' / 'data' / 'hw3_sample' /
              'test_image_name_to_ids.json')

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

# Share of instances per class in the real validation annotations.
CLASS_PROBS = (0.262, 0.690, 0.028, 0.020)
MAX_INSTANCES = 800
MEDIAN_INSTANCES = 18
MEDIAN_SIDE = 22


def real_sizes() -> List[Tuple[int, int]]:
    """Image sizes from ../shared when available, else the embedded list."""
    if SIZES_JSON.is_file():
        with open(SIZES_JSON) as f:
            return [(int(e['height']), int(e['width'])) for e in json.load(f)]
    return list(REAL_SIZES)


def _paint_image(rng: np.random.Generator, h: int, w: int,
                 n: int) -> Tuple[np.ndarray, dict]:
    """Non-overlapping elliptic blobs; returns the RGB image and class
    maps."""
    occupied = np.zeros((h, w), bool)
    maps = {c: np.zeros((h, w), np.float64) for c in (1, 2, 3, 4)}
    next_id = {c: 1 for c in maps}
    painted, attempts = 0, 0
    while painted < n and attempts < 4 * n:
        attempts += 1
        cat = int(rng.choice(4, p=CLASS_PROBS)) + 1
        side = float(np.clip(rng.lognormal(np.log(MEDIAN_SIDE), 0.3), 6, 120))
        ry = side / 2
        rx = max(side / 2 * rng.uniform(0.7, 1.0), 2.0)
        if rng.random() < 0.5:
            ry, rx = rx, ry
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, h)
        x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, w)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        blob = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
        if (blob & occupied[y0:y1, x0:x1]).any():
            continue  # cells do not overlap: try another place
        occupied[y0:y1, x0:x1] |= blob
        maps[cat][y0:y1, x0:x1][blob] = next_id[cat]
        next_id[cat] += 1
        painted += 1
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[...] = (232, 196, 222)
    rgb[occupied] = (120, 60, 150)
    noise = rng.integers(-12, 13, size=(h, w, 1), dtype=np.int16)
    rgb = np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return rgb, {c: m for c, m in maps.items() if next_id[c] > 1}


def generate_dataset(root: Path, n_images: int = 209,
                     seed: int = 0) -> Tuple[int, List[int]]:
    """Write a synthetic hw3 data root; returns (images, instances/image)."""
    rng = np.random.default_rng(seed)
    sizes = real_sizes()
    picks = [sizes[i] for i in rng.integers(0, len(sizes), size=n_images)]
    # the density cap below trims small images, hence the higher median
    counts = np.clip(
        np.rint(rng.lognormal(np.log(MEDIAN_INSTANCES * 1.25), 1.2,
                              n_images)), 1,
        MAX_INSTANCES).astype(int)
    # at most one cell per ~30 x 30 px, so that blobs fit
    for i, (h, w) in enumerate(picks):
        counts[i] = max(1, min(counts[i], h * w // 900))
    largest = int(np.argmax([h * w for h, w in picks]))
    counts[largest] = MAX_INSTANCES
    written = []
    for i, ((h, w), n) in enumerate(zip(picks, counts)):
        rgb, maps = _paint_image(rng, h, w, int(n))
        d = root / 'train' / f'{i:08x}-bench'
        d.mkdir(parents=True)
        write_image_tif(d / 'image.tif', rgb)
        for c, m in maps.items():
            write_instance_map(d / f'class{c}.tif', m)
        written.append(sum(int(len(np.unique(m)) - 1) for m in maps.values()))
    return n_images, written


def machine_info() -> str:
    """One-line description of the machine and software."""
    load = ''
    if hasattr(os, 'getloadavg'):
        load = f', load avg {os.getloadavg()[0]:.1f}'
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


def main(argv=None) -> int:
    """Run the benchmark; returns 0 if the target is met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=209)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--keep', help='generate into this folder and keep')
    parser.add_argument('--no-record', action='store_true',
                        help='do not append to benchmarks/RESULTS.md')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='convert_speed_') as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / 'data'
        t0 = time.perf_counter()
        n_images, per_image = generate_dataset(root, args.images, args.seed)
        gen_s = time.perf_counter() - t0
        print(f'generated {n_images} images, {sum(per_image)} instances '
              f'(median {int(np.median(per_image))}/image, max '
              f'{max(per_image)}) in {gen_s:.1f} s')
        t0 = time.perf_counter()
        stats = convert_hw3(
            root, Path(tmp) / 'out', val_ratio=0.1, seed=0,
            workers=args.workers, progress=False)
        secs = time.perf_counter() - t0

    n_inst = stats['num_instances']
    box = stats['box_max_side']
    ips = n_images / secs
    ok = secs <= TARGET_S
    print()
    print('| images | instances | workers | seconds | images/s | target |')
    print('|---|---|---|---|---|---|')
    print(f'| {n_images} | {n_inst} | {args.workers} | {secs:.2f} | '
          f'{ips:.1f} | <= {TARGET_S:g} s {"OK" if ok else "MISSED"} |')
    print(f'median box side {box["p50"]:g} px; machine: {machine_info()}')
    if not args.no_record:
        name = (f'{BENCHMARK} ({n_images} images, {n_inst} instances, '
                f'workers={args.workers})')
        append_result(
            name, [
                ('seconds', f'{secs:.2f}', f'<= {TARGET_S:g}'),
                ('images/s', f'{ips:.1f}', f'>= {n_images / TARGET_S:.1f}'),
            ],
            section=BENCHMARK)
        print(f'recorded in {RESULTS} ({name})')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

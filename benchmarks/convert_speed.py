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
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REAL_SIZES, REPO, RESULTS, append_result,  # noqa: E402
                    machine_info, paint_cells, place_ellipses)

from mmseg_cells.data import (convert_hw3, write_image_tif,  # noqa: E402
                              write_instance_map)

__all__ = ['generate_dataset', 'main', 'real_sizes']

BENCHMARK = 'convert_speed'
TARGET_S = 30.0
SIZES_JSON = (REPO.parent / 'shared' / 'data' / 'hw3_sample' /
              'test_image_name_to_ids.json')

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
    occupied, cells = place_ellipses(
        rng, h, w, n, median_side=MEDIAN_SIDE, side_range=(6, 120),
        max_attempts=4 * n, label_first=True)
    maps = {c: np.zeros((h, w), np.float64) for c in (1, 2, 3, 4)}
    next_id = {c: 1 for c in maps}
    for label, y0, x0, blob in cells:
        cat = label + 1
        bh, bw = blob.shape
        maps[cat][y0:y0 + bh, x0:x0 + bw][blob] = next_id[cat]
        next_id[cat] += 1
    rgb = paint_cells(occupied)
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

"""How far the synthetic generator's look is from real H&E, and its fit.

Measures, for the nucleus pixels and the background (stroma) pixels
separately, the total-variation distance of the 8x8x8 RGB histograms and
the 1-D Wasserstein distance (grey levels, mean over R, G, B) between
synthetic images and each real set, plus the ratio of their chromatin
texture (per-nucleus haematoxylin coefficient of variation), see
:mod:`mmseg_cells.data.synthetic.realism`. The real sets are the hw3 sample
and the two real H&E sets of ``../shared/data`` (gbm40, cpm15); synthetic
images are drawn with the default look mixture (what ``make demo`` trains
on) and with each anchor look pinned.

``--fit`` re-fits the anchor stain vectors and chromatin gains of
:mod:`mmseg_cells.data.synthetic.render` (mean optical density of the
nucleus and background pixels and median texture of rendered images = the
real set's) and prints them for ``_STAINS``. Usage::

    python benchmarks/synthetic_realism.py [--images 12] [--label TEXT]
    python benchmarks/synthetic_realism.py --fit [--iters 3]
"""
import argparse
import math
import sys
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from common import REPO, add_record_args, append_result

from mmseg_cells.data.io import read_labelled_image  # noqa: E402
from mmseg_cells.data.synthetic import render, synthesize_sample  # noqa: E402
from mmseg_cells.data.synthetic.realism import (  # noqa: E402
    ColourStats, collect_colour_stats, compare_colour_stats,
    pool_colour_stats)

SHARED = REPO.parent / 'shared' / 'data'
#: real set -> (its folder in the hw3 training layout, the anchor look
#: fitted to it)
REAL_SETS: Dict[str, Tuple[Path, str]] = {
    'hw3_sample': (SHARED / 'hw3_sample', 'sample'),
    'gbm40': (SHARED / 'real' / 'gbm40', 'he_dark'),
    'cpm15': (SHARED / 'real' / 'cpm15', 'he_pale'),
}
# mean illumination of the renderer (248 of 255): its optical density
_ILLUM_OD = math.log(255 / 248)


def read_labelled(root: Path) -> Iterator[Tuple[np.ndarray, dict]]:
    """``(rgb, {class: instance map})`` of each ``train/*/`` image."""
    for d in sorted(p for p in (root / 'train').iterdir() if p.is_dir()):
        yield read_labelled_image(d)


def synthetic(n: int, look: Optional[str], seed: int = 0,
              size: int = 512) -> Iterator[Tuple[np.ndarray, dict]]:
    """``n`` crowded synthetic images of ``size`` px (seeded)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield synthesize_sample(rng, size, size, look=look, crowded=True)


def real_stats() -> Dict[str, ColourStats]:
    out = {}
    for name, (root, _) in REAL_SETS.items():
        if (root / 'train').is_dir():
            out[name] = collect_colour_stats(read_labelled(root))
    if not out:
        sys.exit(f'error: no real sets under {SHARED}')
    return out


def fit(real: Dict[str, ColourStats], images: int, iters: int) -> None:
    """Scale each anchor's stain vectors until the rendered nucleus and
    background mean optical densities match its real set's."""
    for name, (_, anchor) in REAL_SETS.items():
        if name not in real:
            continue
        target = real[name].od_mean
        stains = render._STAINS[anchor]
        for it in range(iters):
            syn = collect_colour_stats(synthetic(images, anchor))
            got = syn.od_mean
            for region, parts in (('nucleus', ('nuc', )),
                                  ('background', ('bg', 'fib', 'cyto'))):
                ratio = np.clip((target[region] - _ILLUM_OD) /
                                np.maximum(got[region] - _ILLUM_OD, 1e-3),
                                0.5, 2.0)
                for p in parts:
                    stains[p] = tuple(
                        float(v) for v in np.asarray(stains[p]) * ratio)
            # the texture's coefficient of variation is about linear in it
            stains['chromatin'] = float(
                stains['chromatin'] * np.median(real[name].texture) /
                np.median(syn.texture))
            print(f'{anchor} iter {it}: nucleus OD '
                  f'{np.round(got["nucleus"], 3)} (real '
                  f'{np.round(target["nucleus"], 3)}), background OD '
                  f'{np.round(got["background"], 3)} (real '
                  f'{np.round(target["background"], 3)}), texture '
                  f'{np.median(syn.texture):.3f} (real '
                  f'{np.median(real[name].texture):.3f})')
        print(f"    '{anchor}': dict(" + ', '.join(
            f'{p}=({", ".join(f"{v:.2f}" for v in stains[p])})'
            for p in ('nuc', 'bg', 'fib', 'cyto')) +
            f', chromatin={stains["chromatin"]:.2f}),')


def _row(what: str, d: dict) -> Tuple[str, str, str]:
    return (f'{what}: nucleus TV / W1, background TV / W1, texture ratio',
            f'{d["nucleus_tv"]:.3f} / {d["nucleus_w1"]:.1f}, '
            f'{d["background_tv"]:.3f} / {d["background_w1"]:.1f}, '
            f'{d["texture_ratio"]:.2f}', 'lower; texture 1')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=12,
                        help='synthetic images per look (512x512, crowded)')
    parser.add_argument('--fit', action='store_true',
                        help='re-fit the anchor stain vectors and print them')
    parser.add_argument('--iters', type=int, default=3)
    add_record_args(parser)
    args = parser.parse_args(argv)
    real = real_stats()
    if args.fit:
        fit(real, args.images, args.iters)
        return 0
    rows = []
    for name, stats in real.items():
        print(f'real {name}: {stats.summary()}')
    pooled = pool_colour_stats(list(real.values()))
    closest: Dict[str, Tuple[float, str, dict]] = {}
    for look in (None, ) + tuple(render.LOOKS):
        syn = collect_colour_stats(synthetic(args.images, look))
        label = 'default mix' if look is None else f'look {look}'
        print(f'synthetic {label}: {syn.summary()}')
        for name, stats in list(real.items()) + [('pooled', pooled)]:
            d = compare_colour_stats(syn, stats)
            print(f'  vs {name}: ' + ', '.join(
                f'{k} {v:.3f}' for k, v in d.items()))
            if look is None and name == 'pooled':
                rows.append(_row('synthetic default mix vs the real sets '
                                 '(pooled, equal weights)', d))
            total = d['nucleus_tv'] + d['background_tv']
            if look is not None and name != 'pooled' and (
                    name not in closest or total < closest[name][0]):
                closest[name] = (total, look, d)
    for name, (_, look, d) in closest.items():
        rows.append(_row(f'closest pinned look ({look}) vs {name}', d))
    if not args.no_record:
        bench = (f'synthetic_realism ({args.images} crowded 512x512 images '
                 'per look, seed 0; real: ' + ', '.join(real) + ')')
        if args.label:
            bench += f'; {args.label}'
        append_result(bench, rows, path=args.results,
                      section='synthetic_realism')
    return 0


if __name__ == '__main__':
    sys.exit(main())

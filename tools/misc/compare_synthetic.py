"""Render the real hw3 sample next to synthetic images (with mask overlays).

Usage::

    python tools/misc/compare_synthetic.py /tmp/synth_compare.png \
        [--real-dir /work/shared/data/hw3_sample/train/sample] [--seed 0]

Top row: the real image and synthetic images of the same size (the look of
the released sample, H&E, and a random draw). Bottom row: the same images
with the instance outlines coloured by class (class1 green, class2 yellow,
class3 cyan, class4 magenta). Needs numpy, tifffile and OpenCV only.
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np


__all__ = ['compare', 'main']


REPO_ROOT = Path(__file__).resolve().parents[2]


sys.path.insert(0, str(REPO_ROOT))  # this checkout's mmseg_cells
from mmseg_cells.data.io import read_labelled_image  # noqa: E402
from mmseg_cells.data.synthetic import synthesize_sample  # noqa: E402
from mmseg_cells.visualization import draw_instance_overlay  # noqa: E402


DEFAULT_REAL_DIR = str(REPO_ROOT.parent / 'shared' / 'data' / 'hw3_sample' /
                       'train' / 'sample')
# outline colour of class1..class4
CLASS_COLOURS = [(0, 255, 0), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def count(masks: Dict[int, np.ndarray]) -> int:
    """Number of instances in ``{class: instance-id map}``."""
    return int(sum(len(np.unique(v[v > 0])) for v in masks.values()))


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


def compare(out_path: str, real_dir: Optional[str] = None,
            seed: int = 0) -> str:
    """Write the comparison PNG to ``out_path`` and return the path."""
    real_dir = real_dir or DEFAULT_REAL_DIR
    if osp.isfile(osp.join(real_dir, 'image.tif')):
        rgb, masks = read_labelled_image(real_dir)
        panels = [('real', rgb, masks)]
    else:
        print(f'no real sample in {real_dir}; synthetic only')
        rgb, panels = np.zeros((397, 482, 3), np.uint8), []
    h, w = rgb.shape[:2]
    n_real = count(panels[0][2]) if panels else None
    rng = np.random.default_rng(seed)
    for name, look, crowded in (('synthetic (sample look)', 'sample', True),
                                ('synthetic (H&E look)', 'he', True),
                                ('synthetic (random)', None, None)):
        img, m = synthesize_sample(rng, h, w, look=look, crowded=crowded)
        if crowded and n_real:
            # of a few draws, show the one closest to the real cell count
            for _ in range(5):
                cand = synthesize_sample(rng, h, w, look=look, crowded=True)
                if abs(count(cand[1]) - n_real) < abs(count(m) - n_real):
                    img, m = cand
        panels.append((name, img, m))
    top: List[np.ndarray] = []
    bottom: List[np.ndarray] = []
    sep = np.full((h, 6, 3), 255, np.uint8)
    for name, img, m in panels:
        n = count(m)
        top += [label(img, f'{name}: {n} cells'), sep]
        outlined = draw_instance_overlay(
            img, {cls - 1: ids for cls, ids in m.items()}, CLASS_COLOURS,
            fill_alpha=0, outline_colour=None, outline='inner')
        bottom += [label(outlined, 'outlines'), sep]
    grid = np.concatenate([
        np.concatenate(top[:-1], 1),
        np.full((6, len(top[:-1]) and sum(x.shape[1] for x in top[:-1]), 3),
                255, np.uint8),
        np.concatenate(bottom[:-1], 1)
    ], 0)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    cv2.imwrite(out_path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return out_path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', nargs='?', default='/tmp/synth_compare.png',
                        help='output PNG path')
    parser.add_argument('--real-dir', default=None,
                        help=f'directory with image.tif and classN.tif '
                        f'(default: {DEFAULT_REAL_DIR})')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    path = compare(args.out, args.real_dir, args.seed)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

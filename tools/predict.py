"""Predict test images and write the submission.

``python tools/predict.py CONFIG CHECKPOINT --data-root D --out-dir O
[--score-thr T] [--max-per-img K] [--save-label-maps] [--save-overlays]
[--no-tta] [--tta-merge cluster|nms] [--images DIR]``

Reads ``D/test_image_name_to_ids.json`` (ids and sizes) and predicts every
listed image of ``D/test_release/`` (or, with ``--images DIR``, every
.tif/.tiff/.png/.jpg in DIR, ids assigned in name order and written to
``O/image_name_to_ids.json``). Writes

- ``O/test-results.json``: COCO results (``image_id``, ``category_id`` 1..4,
  ``score``, ``bbox`` [x, y, w, h], ``segmentation`` RLE with str counts) at
  the original image size;
- ``O/submission.zip`` with ``test-results.json`` at its root;
- ``--save-label-maps``: ``O/label_maps/<stem>/class1.tif..class4.tif``,
  float64 instance-id maps in the training layout (absent class -> no file);
- ``--save-overlays``: ``O/overlays/<stem>.png``.

Flip test-time augmentation is on by default (``--no-tta`` turns it off):
measured on held-out real H&E it raised the leaderboard mask AP50 on both
real sets (see README, "Real data").

Every output file is written atomically. An image that fails is reported
with its file name and skipped; the others' results are still written and
the exit status is 1.
"""
import argparse
import os
import os.path as osp
import sys
import time
import zipfile

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmseg_cells.data import (TEST_IMAGE_DIR, TEST_LISTING,  # noqa: E402
                              DataFormatError, read_image, read_test_listing,
                              write_instance_map)
from mmseg_cells.utils import atomic_write, atomic_write_json  # noqa: E402
from mmseg_cells.visualization import draw_instance_overlay  # noqa: E402

IMAGE_EXTS = ('.tif', '.tiff', '.png', '.jpg', '.jpeg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Predict cells and write test-results.json')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained checkpoint (.pth)')
    parser.add_argument('--data-root',
                        help='folder with test_image_name_to_ids.json and '
                        'test_release/')
    parser.add_argument('--images',
                        help='predict every image of this folder instead')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--score-thr', type=float, default=None,
                        help='minimum score (default: the config\'s, 0.001 '
                        'for AP)')
    parser.add_argument('--max-per-img', type=int, default=None,
                        help='detections per image (default: the '
                        'config\'s, 1000)')
    parser.add_argument('--save-label-maps', action='store_true')
    parser.add_argument('--save-overlays', action='store_true')
    parser.add_argument('--tta', action=argparse.BooleanOptionalAction,
                        default=True,
                        help='flip test-time augmentation: original, '
                        'horizontal and vertical flips (default: on, '
                        '1.2-1.6x the prediction time on real tiles; '
                        '--no-tta: one view)')
    parser.add_argument('--tta-merge', choices=['cluster', 'nms'],
                        default='cluster',
                        help='TTA: cluster the views\' boxes and average '
                        'boxes, scores and masks (default), or keep the '
                        'NMS survivors')
    parser.add_argument('--tile-size', type=int, default=1024)
    parser.add_argument('--tile-overlap', type=int, default=192)
    parser.add_argument('--tile-above', type=int, default=1600,
                        help='tile images whose longer side exceeds this '
                        'and whose area exceeds one --tile-size square '
                        '(0: never)')
    parser.add_argument('--device', default=None,
                        help='cuda, cuda:1, cpu (default: cuda if present)')
    args = parser.parse_args(argv)
    if bool(args.data_root) == bool(args.images):
        parser.error('give exactly one of --data-root and --images')
    return args


def list_images(args) -> list:
    """``[(path, image_id, (h, w) or None)]`` to predict."""
    if args.images:
        if not osp.isdir(args.images):
            raise DataFormatError(f'{args.images}: not a folder')
        names = sorted(n for n in os.listdir(args.images)
                       if n.lower().endswith(IMAGE_EXTS))
        if not names:
            raise DataFormatError(f'{args.images}: no .tif/.png/.jpg images')
        return [(osp.join(args.images, n), i + 1, None)
                for i, n in enumerate(names)]
    listing = osp.join(args.data_root, TEST_LISTING)
    if not osp.exists(listing):
        raise DataFormatError(
            f'{listing}: not found (use --images DIR for a plain folder)')
    # listed images are checked one by one while predicting: a missing or
    # unreadable one is reported and the others are still predicted
    entries = read_test_listing(args.data_root, check_images=False)
    if not entries:
        raise DataFormatError(f'{listing}: expected a non-empty list')
    return [(osp.join(args.data_root, TEST_IMAGE_DIR, e['file_name']),
             e['id'], (e['height'], e['width'])) for e in entries]


def write_label_maps(folder: str, maps: dict, classes) -> None:
    """Write ``classN.tif`` for present classes; drop stale ones."""
    os.makedirs(folder, exist_ok=True)
    for label in range(len(classes)):
        path = osp.join(folder, f'class{label + 1}.tif')
        if label in maps:
            write_instance_map(path, maps[label])
        elif osp.exists(path):
            os.remove(path)


def write_overlay(path: str, rgb: np.ndarray, maps: dict, palette) -> None:
    """Class-coloured fill + white instance outlines on the image
    (:func:`~mmseg_cells.visualization.draw_instance_overlay`), as PNG."""
    import cv2
    vis = draw_instance_overlay(rgb, maps, palette)
    ok, buf = cv2.imencode('.png', vis[..., ::-1])
    if not ok:
        raise RuntimeError(f'{path}: PNG encoding failed')
    with atomic_write(path, 'wb') as f:
        f.write(buf.tobytes())


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        items = list_images(args)
    except DataFormatError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for p in (args.config, args.checkpoint):
        if not osp.isfile(p):
            print(f'error: {p}: file not found', file=sys.stderr)
            return 1
    from tqdm import tqdm

    from mmseg_cells.apis import CellPredictor
    predictor = CellPredictor(
        args.config, args.checkpoint, device=args.device,
        score_thr=args.score_thr, max_per_img=args.max_per_img,
        tile_size=args.tile_size, tile_overlap=args.tile_overlap,
        tile_above=args.tile_above, tta=args.tta,
        tta_merge=args.tta_merge)
    classes = predictor.classes or ('class1', 'class2', 'class3', 'class4')
    palette = predictor.model.dataset_meta.get('palette') or [
        (220, 20, 60), (0, 130, 255), (255, 160, 0), (20, 200, 80)]
    os.makedirs(args.out_dir, exist_ok=True)

    results, failures = [], []
    t0 = time.perf_counter()
    for path, image_id, size in tqdm(items, desc='predict', unit='img'):
        try:
            rgb = read_image(path)
            if size is not None and rgb.shape[:2] != size:
                raise DataFormatError(
                    f'{path}: image is {rgb.shape[0]}x{rgb.shape[1]} but '
                    f'test_image_name_to_ids.json says {size[0]}x{size[1]}')
            dets = predictor.predict(rgb)
            image_results = predictor.to_coco_results(dets, image_id)
            stem = osp.splitext(osp.basename(path))[0]
            if args.save_label_maps or args.save_overlays:
                maps = predictor.label_maps(dets)
                if args.save_label_maps:
                    write_label_maps(
                        osp.join(args.out_dir, 'label_maps', stem), maps,
                        classes)
                if args.save_overlays:
                    write_overlay(
                        osp.join(args.out_dir, 'overlays', stem + '.png'),
                        rgb, maps, palette)
            results.extend(image_results)
        except Exception as e:  # report, keep the other images' results
            msg = str(e) if str(e).startswith(path) else f'{path}: {e}'
            failures.append(msg)
            tqdm.write(f'error: {msg}', file=sys.stderr)
    elapsed = time.perf_counter() - t0

    results_path = osp.join(args.out_dir, 'test-results.json')
    atomic_write_json(results_path, results)
    with atomic_write(osp.join(args.out_dir, 'submission.zip'), 'wb') as f:
        with zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as z:
            z.write(results_path, 'test-results.json')
    if args.images:
        atomic_write_json(
            osp.join(args.out_dir, 'image_name_to_ids.json'),
            [dict(file_name=osp.basename(p), id=i) for p, i, _ in items],
            indent=1)
    n_ok = len(items) - len(failures)
    print(f'{n_ok}/{len(items)} images, {len(results)} detections in '
          f'{elapsed:.1f} s -> {results_path}')
    if failures:
        print(f'error: {len(failures)} image(s) failed:', file=sys.stderr)
        for msg in failures:
            print(f'  {msg}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    from mmseg_cells.utils.cli import run_cli
    sys.exit(run_cli(main))

"""Predict test images and write the submission.

``python tools/predict.py CONFIG CHECKPOINT --data-root D --out-dir O
[--score-thr T] [--max-per-img K] [--save-label-maps] [--save-overlays]
[--no-tta] [--tta-merge cluster|nms] [--images DIR] [--exact]
[--min-mask-score S] [--area-per-cell A] [--cfg-options K=V ...]
[--show-score-thr 0.3] [--format coco geojson labelmaps overlays]``

``python tools/predict.py CONFIG CHECKPOINT --slides S1.tif [S2.svs ...]
--out-dir O [--format coco geojson overlays] [--no-tissue]``

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
- ``--save-overlays``: ``O/overlays/<stem>.png`` (the cells scoring at
  least ``--show-score-thr``, 0.3);
- ``--format`` picks the outputs: ``coco`` (the default: the two files
  above), ``geojson`` (``O/geojson/<stem>.geojson``: a QuPath-readable
  FeatureCollection of cell polygons), ``labelmaps`` and ``overlays`` (as
  the two flags above).

``--slides`` predicts whole-slide images (pyramidal TIFF / OME-TIFF / SVS
through tifffile; NDPI, MRXS, ... through openslide, ``pip install -e
.[slides]``) tile by tile: level-0 tiles are read as they are needed, tiles
without tissue (Otsu on the saturation of a low-resolution level; off with
``--no-tissue``) are skipped, and the results are streamed to
``O/<stem>.coco.json``, ``O/<stem>.geojson`` and ``O/<stem>.overlay.png``
(a downsampled view with the cells drawn), per ``--format`` (default
``geojson``). A tile that cannot be read is reported with the slide's name
and the tile; the others are still written and the exit status is 1.

Flip test-time augmentation is on by default (``--no-tta`` turns it off):
measured on held-out real H&E it raised the leaderboard mask AP50 on both
real sets (see README, "Real data").

Each image's proposals and detections are capped by what it can hold and
detections scoring below ``--min-mask-score`` (0.01) get no mask and are
dropped (:class:`~mmseg_cells.apis.WorkBounds`: same held-out AP50, less
work); ``--exact`` runs the exact path with the config's fixed caps.

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
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmseg_cells.apis.work_bounds import WorkBounds  # noqa: E402
from mmseg_cells.data import (TEST_IMAGE_DIR, TEST_LISTING,  # noqa: E402
                              DataFormatError, read_image, read_test_listing,
                              write_instance_map)
from mmseg_cells.utils import (atomic_write, atomic_write_json,  # noqa: E402
                               atomic_write_png)
from mmseg_cells.visualization import draw_instance_overlay  # noqa: E402

IMAGE_EXTS = ('.tif', '.tiff', '.png', '.jpg', '.jpeg')
FORMATS = ('coco', 'geojson', 'labelmaps', 'overlays')


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
    parser.add_argument('--slides', nargs='+', metavar='SLIDE',
                        help='predict these whole-slide images instead')
    parser.add_argument('--format', nargs='+', dest='formats',
                        choices=FORMATS, metavar='FORMAT',
                        help=f'outputs, any of {", ".join(FORMATS)} '
                        '(default: coco; slides: geojson)')
    parser.add_argument('--no-tissue', action='store_true',
                        help='slides: predict every tile, not only those '
                        'with tissue')
    parser.add_argument('--launcher', choices=['none', 'pytorch'],
                        default='none',
                        help='pytorch: one of the ranks of '
                        'tools/dist_predict.sh (images or slide tiles are '
                        'shared, rank 0 writes the outputs)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--score-thr', type=float, default=None,
                        help='minimum score (default: the config\'s, 0.001 '
                        'for AP)')
    parser.add_argument('--max-per-img', type=int, default=None,
                        help='detections per image (default: the '
                        'config\'s, 1000)')
    parser.add_argument('--save-label-maps', action='store_true')
    parser.add_argument('--save-overlays', action='store_true')
    parser.add_argument('--show-score-thr', type=float, default=0.3,
                        help='overlays draw only the cells scoring at least '
                        'this (mmdet\'s name and default; the results, '
                        'label maps and GeoJSON keep every detection above '
                        '--score-thr) (default: %(default)s)')
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
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs (as in '
        'tools/test.py), e.g. model.test_cfg.rcnn.nms.iou_threshold=0.6; '
        '--score-thr and --max-per-img are applied after these')
    bounds = WorkBounds()
    parser.add_argument('--exact', action='store_true',
                        help='the exact path: the config\'s fixed proposal '
                        'and detection caps, a mask for every detection '
                        '(default: per-image caps that keep the AP50)')
    parser.add_argument('--min-mask-score', type=float,
                        default=bounds.min_mask_score,
                        help='detections scoring below this get no mask '
                        'and are dropped (default: %(default)s)')
    parser.add_argument('--area-per-cell', type=float,
                        default=bounds.area_per_cell,
                        help='image area per cell (px^2) below which no '
                        'region packs its cells: an image holds at most '
                        'area / this cells, which caps its proposals and '
                        'detections (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.exact:
        args.bounds = None
    else:
        try:
            args.bounds = WorkBounds(area_per_cell=args.area_per_cell,
                                     min_mask_score=args.min_mask_score)
        except ValueError as e:
            parser.error(str(e))
    if sum(map(bool, (args.data_root, args.images, args.slides))) != 1:
        parser.error('give exactly one of --data-root, --images and '
                     '--slides')
    formats = set(args.formats or (['geojson'] if args.slides else
                                   ['coco']))
    if args.save_label_maps:
        formats.add('labelmaps')
    if args.save_overlays:
        formats.add('overlays')
    if args.slides and 'labelmaps' in formats:
        parser.error('--slides: labelmaps are not written for slides (a '
                     'level-0 label map does not fit in memory); use '
                     'geojson')
    args.formats = formats
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
    atomic_write_png(path, draw_instance_overlay(rgb, maps, palette))


def predict_slides(args, predictor, shard) -> int:
    """``--slides``: each slide tile by tile, results streamed (with
    several ranks: tiles shared, rank 0 writes)."""
    from mmseg_cells.apis import predict_slide_to_files
    from mmseg_cells.data import SlideError
    failures = []
    for path in args.slides:
        t0 = time.perf_counter()
        try:
            out = predict_slide_to_files(
                predictor, path, args.out_dir, tuple(sorted(args.formats)),
                args.tile_size, args.tile_overlap, not args.no_tissue,
                shard=shard,
                log=lambda msg: print(f'error: {msg}', file=sys.stderr),
                show_score_thr=args.show_score_thr)
        except SlideError as e:
            failures.append(str(e))
            if shard.is_main:
                print(f'error: {e}', file=sys.stderr)
            continue
        failures.extend(out['errors'])
        if not shard.is_main:
            continue
        print(f'{path}: {out["tiles"]} tiles, {out["cells"]} cells in '
              f'{time.perf_counter() - t0:.1f} s -> {args.out_dir}'
              + (f' ({len(out["errors"])} tiles failed)'
                 if out['errors'] else ''))
    if failures:
        if shard.is_main:
            print(f'error: {len(failures)} slide(s) or tile(s) failed',
                  file=sys.stderr)
        return 1
    return 0


def predict_one(args, predictor, path, image_id, size, classes,
                palette) -> list:
    """COCO entries of one listed image; its per-image files (GeoJSON,
    label maps, overlay) are written here."""
    rgb = read_image(path)
    if size is not None and rgb.shape[:2] != tuple(size):
        raise DataFormatError(
            f'{path}: image is {rgb.shape[0]}x{rgb.shape[1]} but '
            f'test_image_name_to_ids.json says {size[0]}x{size[1]}')
    dets = predictor.predict(rgb)
    stem = osp.splitext(osp.basename(path))[0]
    if 'geojson' in args.formats:
        from mmseg_cells.apis import GeoJSONWriter
        with GeoJSONWriter(osp.join(args.out_dir, 'geojson',
                                    stem + '.geojson'), classes,
                           palette) as gj:
            gj.add(dets, predictor.mask_thr)
    maps = None
    if 'labelmaps' in args.formats:
        maps = predictor.label_maps(dets)
        write_label_maps(osp.join(args.out_dir, 'label_maps', stem), maps,
                         classes)
    if 'overlays' in args.formats:
        shown = dets.scores >= args.show_score_thr
        if maps is None or not shown.all():  # else the label maps' own
            maps = predictor.label_maps(dets.select(shown))
        write_overlay(osp.join(args.out_dir, 'overlays', stem + '.png'), rgb,
                      maps, palette)
    return predictor.to_coco_results(dets, image_id)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        items = [] if args.slides else list_images(args)
    except DataFormatError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for p in (args.config, args.checkpoint):
        if not osp.isfile(p):
            print(f'error: {p}: file not found', file=sys.stderr)
            return 1
    from tqdm import tqdm

    from mmseg_cells.apis import CellPredictor
    from mmseg_cells.apis.shards import PartWriter, Shard, merged_parts
    shard = Shard.from_env(args.launcher)
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        predictor = CellPredictor(
            cfg, args.checkpoint,
            device=shard.local_device(args.device),
            score_thr=args.score_thr, max_per_img=args.max_per_img,
            tile_size=args.tile_size, tile_overlap=args.tile_overlap,
            tile_above=args.tile_above, tta=args.tta,
            tta_merge=args.tta_merge, bounds=args.bounds)
    except (KeyError, TypeError, ValueError, AttributeError,
            SyntaxError) as e:  # a config (or --cfg-options) mmdet refuses
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {args.config}: cannot build the model: {msg}',
              file=sys.stderr)
        return 1
    classes, palette = predictor.class_names, predictor.palette
    os.makedirs(args.out_dir, exist_ok=True)
    if args.slides:
        return predict_slides(args, predictor, shard)

    results, failures = [], []
    part = PartWriter(args.out_dir, 'images', shard.rank) \
        if shard.world > 1 else None
    t0 = time.perf_counter()
    for k, (path, image_id, size) in tqdm(
            shard.mine(items), desc='predict', unit='img',
            disable=not shard.is_main):
        try:
            entries, msg = predict_one(args, predictor, path, image_id,
                                       size, classes, palette), None
        except Exception as e:  # report, keep the other images' results
            entries = []
            msg = str(e) if str(e).startswith(path) else f'{path}: {e}'
            failures.append(msg)
            tqdm.write(f'error: {msg}', file=sys.stderr)
        if part is not None:
            part.put(k, [entries, msg])
        else:
            results.extend(entries)
    if part is not None:  # rank 0 gathers every rank's, in listing order
        part.close()
        shard.barrier()
        if not shard.is_main:
            return 1 if failures else 0
        failures = []
        for _, (entries, msg) in merged_parts(args.out_dir, 'images',
                                              shard.world):
            results.extend(entries)
            if msg is not None:
                failures.append(msg)
    elapsed = time.perf_counter() - t0

    results_path = osp.join(args.out_dir, 'test-results.json')
    if 'coco' in args.formats:
        atomic_write_json(results_path, results)
        with atomic_write(osp.join(args.out_dir, 'submission.zip'),
                          'wb') as f:
            with zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as z:
                z.write(results_path, 'test-results.json')
    else:
        results_path = args.out_dir
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

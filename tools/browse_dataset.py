"""Draw ground-truth overlays of a dataset as PNGs, to check a conversion.

``python tools/browse_dataset.py CONFIG --output-dir O [--split train|val]
[--augment] [--max-images N] [--data-root D] [--cfg-options ...]``

Uses mmdet's ``DetLocalVisualizer`` (boxes, masks, class names in the
config's palette). By default images are loaded without augmentation so the
overlay shows the annotations exactly as converted; ``--augment`` shows the
training pipeline's output instead. Output files are named after the image's
folder (``train/<uuid>/image.tif`` -> ``<uuid>.png``).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmseg_cells.utils.config import load_config  # noqa: E402
from mmseg_cells.utils import register_all_modules  # noqa: E402

register_all_modules()  # compat fixes, registrations


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', required=True,
                        help='folder for the PNG overlays')
    parser.add_argument('--split', choices=['train', 'val', 'test'],
                        default='train')
    parser.add_argument('--augment', action='store_true',
                        help='show the training augmentations')
    parser.add_argument('--max-images', type=int, default=None)
    parser.add_argument('--data-root', help='override the data root')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    return parser.parse_args(argv)


def output_name(img_path: str) -> str:
    """``train/<uuid>/image.tif`` -> ``<uuid>.png``; ``x/a.tif`` -> ``a.png``."""
    stem = osp.splitext(osp.basename(img_path))[0]
    if stem == 'image':
        stem = osp.basename(osp.dirname(img_path)) or stem
    return stem + '.png'


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, cfg_options=args.cfg_options,
                      data_root=args.data_root)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.structures.bbox import BaseBoxes

    ds_cfg = cfg[f'{args.split}_dataloader'].dataset
    if not args.augment:
        ds_cfg.pipeline = [
            dict(type='LoadCellImageFromFile'),
            dict(type='LoadCellAnnotations', with_bbox=True,
                 with_mask=True),
            dict(type='PackDetInputs')
        ]
    ds_cfg.test_mode = False  # keep the annotations
    ann = osp.join(ds_cfg.get('data_root', ''), ds_cfg.ann_file)
    if not osp.isfile(ann):
        print(f'error: {ann}: annotation file not found', file=sys.stderr)
        return 1
    dataset = DATASETS.build(ds_cfg)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.output_dir, exist_ok=True)
    n = len(dataset) if args.max_images is None else min(
        len(dataset), args.max_images)
    progress = ProgressBar(n)
    for i in range(n):
        item = dataset[i]
        img = item['inputs'].permute(1, 2, 0).numpy()[..., [2, 1, 0]]
        sample = item['data_samples'].numpy()
        gt = sample.gt_instances
        if isinstance(gt.get('bboxes', None), BaseBoxes):
            gt.bboxes = gt.bboxes.tensor
        if gt.get('masks', None) is not None:  # one image at a time
            gt.masks = gt.masks.to_ndarray().astype(bool)
        sample.gt_instances = gt
        visualizer.add_datasample(
            output_name(sample.img_path), img, sample, draw_pred=False,
            show=False,
            out_file=osp.join(args.output_dir, output_name(sample.img_path)))
        progress.update()
    print(f'\n{n} overlays written to {args.output_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

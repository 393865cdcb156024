# hw3 cells (MoNuSAC-derived H&E), converted to COCO by
# data_converters/hw3_to_coco.py. File names in the JSONs are relative to
# the hw3-data-release root (e.g. train/<uuid>/image.tif), so data_root is
# that root and the converter's --out-dir defaults to <root>/annotations.
# Override with --cfg-options data_root=... (and the ann files below).
dataset_type = 'CocoDataset'
data_root = 'data/hw3-data-release/'
metainfo = dict(
    classes=('class1', 'class2', 'class3', 'class4'),
    palette=[(220, 20, 60), (0, 130, 255), (255, 160, 0), (20, 200, 80)])
backend_args = None

# Input scale: cells are imaged at one magnification (box side 14-41 px,
# 5-95 %) on images of 33-2500 px a side, so images keep their native
# resolution (mmdet's 1333x800 would scale test images by 0.45x..16x and the
# cells with them) and are upscaled x1.5, so that a p5-sized cell (14 px)
# spans 5.4 instead of 3.6 cells of the stride-4 P2 map its mask RoI is
# pooled from (tools/analysis/cell_stats.py on val_coco.json). Flips in both
# axes (+ both = 180 deg rotation) are label-safe for microscopy. Large
# images are randomly cropped to 1024 px to bound memory and time per step.
train_pipeline = [
    dict(type='LoadCellImageFromFile'),
    # Masks as tight per-cell crops (CropBitmapMasks), not N full-image
    # bitmaps: 800 cells on a 1024^2 image x1.5 take 14 MiB instead of
    # 5.4 GB peak (benchmarks/memory_pipeline.py); same targets as stock.
    dict(type='LoadCellAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale_factor=1.5, keep_ratio=True),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(
        type='RandomCrop',
        crop_size=(1024, 1024),
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadCellImageFromFile'),
    dict(type='Resize', scale_factor=1.5, keep_ratio=True),
    # CocoMetric scores against the annotation file; the boxes are only for
    # visualisation, and full-image GT masks would cost GBs on crowded images
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=3,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img=''),
        # keep small images: a 35 px image with one cell is still data
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# Crowded images (up to ~800 cells): COCOeval's default maxDets (1, 10, 100)
# caps recall at 100 detections per image; 1000 covers the most crowded one
# (coco/segm_mAP_50). CellCocoMetric adds the leaderboard's number, AP50 at
# COCOeval's defaults (100 per image and category): coco/segm_leaderboard_AP50.
val_evaluator = dict(
    type='CellCocoMetric',
    ann_file=data_root + 'annotations/val.json',
    metric=['bbox', 'segm'],
    proposal_nums=(100, 300, 1000),
    classwise=True,
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

_base_ = '../demo/cbam_mask_rcnn_demo.py'
# Recipe trial for benchmarks/real_accuracy.py: the CPU demo with scale
# jitter in place of the fixed x1.5 training upscale: each image is resized
# by a factor drawn log-uniformly from [1.0, 2.25] (geometric centre 1.5, the
# test scale), imitating the spread of nucleus sizes between organs,
# scanners and magnifications (gbm40's median nucleus box is 31 px, cpm15's
# 22 px). The rest is the base pipeline, written out because an mmengine
# config can replace a list but not edit one item of it.
train_pipeline = [
    dict(type='LoadCellImageFromFile'),
    dict(type='LoadCellAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomScaleFactorResize', ratio_range=(1.0, 2.25)),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

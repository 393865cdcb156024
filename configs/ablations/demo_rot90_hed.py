_base_ = '../demo/cbam_mask_rcnn_demo.py'
# Recipe trial for benchmarks/real_accuracy.py: the CPU demo plus
# right-angle rotations (with the flips: all 8 symmetries of the square,
# exact and label-safe) and light H&E stain jitter (Tellez et al. 2018,
# "HED-light": each stain's amount x U(0.95, 1.05) + U(-0.05, 0.05)),
# applied before the x1.5 upscale where it is cheaper.
train_pipeline = [
    dict(type='LoadCellImageFromFile'),
    dict(type='LoadCellAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomHEDJitter', sigma_alpha=0.05, sigma_beta=0.05),
    dict(type='Resize', scale_factor=1.5, keep_ratio=True),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='RandomRot90', prob=0.75),
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

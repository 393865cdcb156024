_base_ = '../demo/cbam_mask_rcnn_demo.py'
# Recipe trial for benchmarks/real_accuracy.py: the CPU demo plus strong H&E
# stain jitter (Tellez et al. 2018 "HED-strong": each stain's amount
# x U(0.8, 1.2) + U(-0.05, 0.05) in optical density), for stains of other
# hospitals. Applied before the x1.5 upscale where it is cheaper; the rest
# is the base pipeline, written out because an mmengine config can replace
# a list but not insert into it.
train_pipeline = [
    dict(type='LoadCellImageFromFile'),
    dict(type='LoadCellAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomHEDJitter', sigma_alpha=0.2, sigma_beta=0.05),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

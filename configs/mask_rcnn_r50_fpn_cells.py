_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/datasets/hw3_cells.py',
    './_base_/schedules/adamw_cosine_36e.py',
    './_base_/default_runtime.py',
]
# Baseline: Mask R-CNN R50-FPN tuned for cells. The numbers in the comments
# are measured on the real ground truth (../shared/data/hw3_sample/
# val_coco.json, 50 images, 6,860 cells) with tools/analysis/cell_stats.py.
custom_imports = dict(imports=['mmseg_cells'], allow_failed_imports=False)

# ImageNet-pretrained ResNet-50 by default. Offline, pass a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/resnet50-0676ba61.pth
pretrained = 'torchvision://resnet50'

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    rpn_head=dict(
        anchor_generator=dict(
            # ANCHOR_SCALES_COMMENT
            scales=[4])),
    roi_head=dict(
        bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=4000, max_per_img=2000),
        rcnn=dict(sampler=dict(num=512))),
    test_cfg=dict(
        # RPN_COMMENT
        rpn=dict(nms_pre=3000, max_per_img=2000),
        # RCNN_COMMENT
        rcnn=dict(score_thr=0.001, max_per_img=1000)))

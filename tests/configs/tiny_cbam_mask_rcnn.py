_base_ = '../../configs/demo/cbam_mask_rcnn_demo.py'
# Tests only: the demo model at half its width again (ResNet-50 depth,
# base_channels=8), CBAM in every bottleneck, 8 epochs of 3 iterations.
width = 8
model = dict(
    backbone=dict(base_channels=width),
    neck=dict(in_channels=[width * 4, width * 8, width * 16, width * 32],
              out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_convs=2)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    # keep validation fast for a random model: fewer, surer detections
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300),
                  rcnn=dict(score_thr=0.05, max_per_img=100)))
train_cfg = dict(max_epochs=8, val_interval=8)
train_dataloader = dict(batch_size=2)
default_hooks = dict(logger=dict(interval=1))
# 24 iterations in all: warm up over 5 instead of 50
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', eta_min=5e-6, begin=0, end=8, T_max=8,
         by_epoch=True, convert_to_iter_based=True)
]

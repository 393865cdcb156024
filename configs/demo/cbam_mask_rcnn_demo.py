_base_ = '../cbam_mask_rcnn.py'
# CPU-sized demo of the main config (used by `make demo`): the synthetic
# dataset written by data_converters/make_synthetic.py, a quarter-width
# ResNet-50 (base_channels=16; same depth, same CBAM placement) with 64-ch
# FPN/heads, random init (no download), and a schedule that trains in a few
# minutes on 2 CPU cores. Swap the data root with tools/train.py --data-root.
data_root = 'demo_out/data/'
width = 16
model = dict(
    backbone=dict(base_channels=width, frozen_stages=-1, norm_eval=False,
                  init_cfg=None),
    neck=dict(in_channels=[width * 4, width * 8, width * 16, width * 32],
              out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64)),
    # the demo's images (<= 320 px) hold at most ~60 cells: 1000 proposals
    # and 300 detections per image leave a wide margin at a third of the cost
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=2000, max_per_img=1000),
        rcnn=dict(max_per_img=300)))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', eta_min=5e-6, begin=0, end=max_epochs,
         T_max=max_epochs, by_epoch=True, convert_to_iter_based=True)
]
# a randomly initialised backbone needs a larger lr than fine-tuning
optim_wrapper = dict(optimizer=dict(lr=1e-3))

train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10))

_base_ = '../mask_rcnn_r50_fpn_cells.py'
# Ablation: one CBAM at the end of each ResNet stage
# (on C2..C5, before the FPN) instead of inside every bottleneck.
model = dict(
    backbone=dict(
        type='ResNetStagePlugins',
        stage_plugins=[
            dict(cfg=dict(type='CBAM'), stages=(True, True, True, True))
        ]))

_base_ = '../mask_rcnn_r50_fpn_cells.py'
# Comparison: mmcv's global context block (GCNet) in C3-C5 bottlenecks, the
# placement and ratio of mmdet's gcnet configs.
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
         stages=(False, True, True, True), position='after_conv3')
]))

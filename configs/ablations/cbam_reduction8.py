_base_ = '../cbam_mask_rcnn.py'
# Ablation: a wider channel MLP (r = 8 instead of 16).
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='CBAM', reduction=8),
         stages=(True, True, True, True), position='after_conv3')
]))

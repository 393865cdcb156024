_base_ = '../cbam_mask_rcnn.py'
# Ablation: channel attention only.
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='CBAM', use_spatial=False),
         stages=(True, True, True, True), position='after_conv3')
]))

_base_ = '../cbam_mask_rcnn.py'
# Ablation: spatial attention only.
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='CBAM', use_channel=False),
         stages=(True, True, True, True), position='after_conv3')
]))

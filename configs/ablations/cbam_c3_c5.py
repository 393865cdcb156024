_base_ = '../cbam_mask_rcnn.py'
# Ablation: CBAM on C3-C5 only (C2 is frozen with frozen_stages=1 anyway,
# but its CBAM modules are trainable in the main config).
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='CBAM'), stages=(False, True, True, True),
         position='after_conv3')
]))

_base_ = '../cbam_mask_rcnn.py'
# Ablation: CBAM on C3-C5 only. The main config also puts CBAM in C2, whose
# pretrained convs are frozen (frozen_stages=1) while its CBAM modules learn;
# this variant measures what C2's attention adds for its cost on the
# largest feature maps.
model = dict(backbone=dict(plugins=[
    dict(cfg=dict(type='CBAM'), stages=(False, True, True, True),
         position='after_conv3')
]))

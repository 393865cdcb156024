_base_ = './mask_rcnn_r50_fpn_cells.py'
# Main config: the cell-tuned baseline + CBAM in every bottleneck of C2-C5,
# after conv3+BN and before the residual add (Woo et al., 2018). CBAM starts
# as the identity so the ImageNet weights are intact at step 0 (see
# mmseg_cells/models/plugins/cbam.py).
model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='CBAM', reduction=16, kernel_size=7),
            stages=(True, True, True, True),
            position='after_conv3')
    ]))

_base_ = './mask_rcnn_r50_fpn_cells.py'
# Main config: the cell-tuned baseline + CBAM in every bottleneck of C2-C5,
# after conv3+BN and before the residual add (Woo et al., 2018). CBAM starts
# as the identity so the ImageNet weights are intact at step 0 (see
# mmseg_cells/models/plugins/cbam.py). All 16 learn, C2's too: the backbone
# (ResNetStagePlugins) freezes only the pretrained weights of frozen stages.
# Without autograd (validation, test, predict) that backbone has CBAM gate
# in place the BN output it receives (nothing else reads it), which saves a
# full-size allocation per block: at C2 (37.7 MB maps for a 512 px image)
# 37 -> 11 ms per module on 2 cores.
model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='CBAM', reduction=16, kernel_size=7),
            stages=(True, True, True, True),
            position='after_conv3')
    ]))

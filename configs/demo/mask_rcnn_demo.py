_base_ = './cbam_mask_rcnn_demo.py'
# The demo without CBAM (baseline for benchmarks/accuracy.py).
model = dict(backbone=dict(plugins=None))

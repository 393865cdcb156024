_base_ = 'mmdet::_base_/default_runtime.py'

# Keep the best checkpoint by the number submissions are judged on: mask AP50
# as the leaderboard computes it (pycocotools' COCOeval defaults, at most 100
# detections per image and category; CellCocoMetric), plus the last 2 for
# --resume. AP50 at 1000 detections (coco/segm_mAP_50) stays in the log.
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=2,
        save_best='coco/segm_leaderboard_AP50',
        rule='greater'))

# Local JSON/scalar logs always (tools/plot_curves.py reads them). TensorBoard:
# `tools/train.py --tensorboard`, or add dict(type='TensorboardVisBackend').
vis_backends = [dict(type='LocalVisBackend')]
# DetLocalVisualizer that also draws the crop masks of CropFCNMaskHead
visualizer = dict(
    type='CellLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

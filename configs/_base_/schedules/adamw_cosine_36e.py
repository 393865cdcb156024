# The training recipe: AdamW, lr 2e-4, weight decay 1e-4, batch 3 per GPU
# (set in the dataset config), linear warm-up then cosine decay to 5e-6,
# both stepped per iteration.
max_epochs = 36
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    # no weight decay on norms and biases (standard for AdamW detectors)
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=5e-6,
        begin=0,
        end=max_epochs,
        T_max=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True)
]

# lr 2e-4 is for 1 GPU x 3 images; `tools/train.py --auto-scale-lr` scales it
# linearly to the actual total batch size.
auto_scale_lr = dict(enable=False, base_batch_size=3)

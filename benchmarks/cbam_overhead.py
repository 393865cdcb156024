"""Cost of CBAM: CBAM config vs baseline config, same inputs, same weights.

Builds ``configs/mask_rcnn_r50_fpn_cells.py`` (baseline) and
``configs/cbam_mask_rcnn.py`` (baseline + CBAM in every bottleneck) with
random init and copies the baseline's weights into the CBAM model. CBAM
keeps its identity initialisation, so both models compute bit-identical
features, detections and losses (checked) and all the work outside CBAM is
the same; CBAM's own cost does not depend on its weights (no
data-dependent branches). Then, on the same synthetic H&E images
(``--size`` px, x1.5 by the test pipeline), it times, with interleaved
repetitions (A B, B A, ...):

* ``predict``: :meth:`CellPredictor.predict` of one image with
  ``score_thr=0`` and ``--dets`` detections per image (forced: a random
  model scores everything above 0), mask probabilities included;
* ``backbone``: ``extract_feat`` (ResNet + FPN) alone, where all of CBAM's
  cost lives (the strictest ratio), of the models **as built** (eval mode,
  no predictor rewrite) at ``--size`` and at 1024 px (target <= 1.05x),
  and of the predictors' rewritten models (channels-last, BN folded);
* ``train step``: ``model.train_step`` (forward, losses, backward, the
  config's AdamW step and gradient clipping, with lr 0 so that every
  repetition starts from the same weights) on a batch of 2 annotated
  images, the RNG reseeded before every step so both models sample the same
  proposals;
* ``CBAM ops alone``: each CBAM module's forward + backward on random maps
  of the shapes one train step feeds it, summed, as ``1 + that / baseline
  step``: CBAM's own cost without the run-to-run noise of whole steps.

Reports the median of the per-repetition ratios CBAM / baseline. Targets:
predict <= 1.03x, backbone+neck as built <= 1.05x, train step <= 1.05x
(CBAM adds ~0.4 % of ResNet-50's FLOPs). In the main config the C2 CBAM
modules learn although C2's pretrained convs are frozen, so a train step
also back-propagates through C2 (data gradients only), which the
baseline, frozen there, skips; ``--cbam-config
configs/ablations/cbam_c3_c5.py`` measures the same without C2. ``--profile``
adds a torch.profiler table of the CBAM model and the share of time spent
inside CBAM modules.

Usage (from the repository root)::

    python benchmarks/cbam_overhead.py [--quick | --full] [--size 512]
        [--dets 100] [--predict-reps N] [--backbone-reps N]
        [--train-reps N] [--cbam-config CONFIG] [--profile]
        [--threads N] [--skip-train] [--label TEXT] [--no-record]

``--quick`` (default) runs in a few minutes on 2 cores; ``--full`` runs
more repetitions and also a 1024 px predict.
"""
import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BASE_CONFIG, CBAM_CONFIG,  # noqa: E402
                    add_record_args, append_result, interleaved,
                    load_avg, load_config, machine_info, quiet,
                    ratio_summary, synthetic_image, torch_info)

import numpy as np  # noqa: E402

BENCHMARK = 'cbam_overhead'
TARGET_PREDICT = 1.03
TARGET_TRAIN = 1.05
TARGET_BACKBONE = 1.05


def build_predictors(dets: int, cbam_config: str = CBAM_CONFIG):
    """Baseline and CBAM predictors sharing all non-CBAM weights, and
    copies of both models as built (for training; the predictors run their
    inference rewrite, :meth:`CellPredictor.optimize`)."""
    import torch
    from mmseg_cells.apis import CellPredictor
    from mmseg_cells.models import CBAM
    torch.manual_seed(0)
    base = CellPredictor(load_config(BASE_CONFIG), None, device='cpu',
                         score_thr=0.0, max_per_img=dets, optimize=False)
    cbam = CellPredictor(load_config(cbam_config), None, device='cpu',
                         score_thr=0.0, max_per_img=dets, optimize=False)
    missing, unexpected = cbam.model.load_state_dict(
        base.model.state_dict(), strict=False)
    assert not unexpected and all('cbam' in k for k in missing), missing
    n_cbam = sum(isinstance(m, CBAM) for m in cbam.model.modules())
    train_models = copy.deepcopy(base.model), copy.deepcopy(cbam.model)
    assert base.optimize() and cbam.optimize()
    return base, cbam, n_cbam, train_models


def make_batch(size: int, n: int = 2, seed: int = 0):
    """A training batch of ``n`` annotated synthetic images (mmdet's Resize
    x1.5 + PackDetInputs, as the config's pipeline minus random crops)."""
    from mmcv.transforms import Compose
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    from mmengine.dataset import pseudo_collate
    pipe = Compose([
        dict(type='mmdet.Resize', scale_factor=1.5, keep_ratio=True),
        dict(type='mmdet.PackDetInputs')
    ])
    samples = []
    for i in range(n):
        rgb, maps = synthetic_image(seed + i, size, size, crowded=True)
        masks, labels = [], []
        for cls, ids in sorted(maps.items()):
            for v in np.unique(ids[ids > 0]):
                masks.append(ids == v)
                labels.append(cls - 1)
        m = np.stack(masks).astype(np.uint8)
        ys = [np.nonzero(x.any(1))[0] for x in m]
        xs = [np.nonzero(x.any(0))[0] for x in m]
        boxes = np.array([[x[0], y[0], x[-1] + 1, y[-1] + 1]
                          for x, y in zip(xs, ys)], np.float32)
        samples.append(pipe(dict(
            img=np.ascontiguousarray(rgb[..., ::-1]), img_id=i,
            img_path=f'synthetic_{i}.png', ori_shape=rgb.shape[:2],
            img_shape=rgb.shape[:2],
            gt_bboxes=HorizontalBoxes(boxes),
            gt_bboxes_labels=np.array(labels, np.int64),
            gt_masks=BitmapMasks(m, size, size),
            gt_ignore_flags=np.zeros(len(labels), bool))))
    return pseudo_collate(samples), sum(
        len(s['data_samples'].gt_instances) for s in samples)


def train_stepper(model, cfg, batch):
    """A closure running one train step of ``model`` on ``batch``."""
    import torch
    from mmengine.optim import build_optim_wrapper
    model.train()
    ocfg = copy.deepcopy(cfg.optim_wrapper)
    ocfg.optimizer.lr = 0.0  # same arithmetic, weights unchanged
    optim = build_optim_wrapper(model, ocfg)

    def step():
        torch.manual_seed(0)
        return model.train_step(copy.copy(batch), optim)
    return step


def cbam_share(predictor, rgb) -> float:
    """Seconds inside CBAM modules during one predict (forward hooks)."""
    from mmseg_cells.models import CBAM
    spent = [0.0]
    start = {}
    hooks = []

    def pre(mod, _):
        start[id(mod)] = time.perf_counter()

    def post(mod, _, __):
        spent[0] += time.perf_counter() - start.pop(id(mod))
    for m in predictor.model.modules():
        if isinstance(m, CBAM):
            hooks.append(m.register_forward_pre_hook(pre))
            hooks.append(m.register_forward_hook(post))
    t0 = time.perf_counter()
    predictor.predict(rgb)
    total = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    return spent[0] / total


def cbam_train_seconds(model, step, reps: int = 5) -> float:
    """Forward + backward time of the model's CBAM modules alone, on random
    maps of the shapes one train ``step`` feeds them (captured by hooks),
    summed: CBAM's own cost in a train step, free of the run-to-run noise of
    whole steps (the median of ``reps`` per module)."""
    import torch
    from mmseg_cells.models import CBAM
    seen = []
    hooks = [m.register_forward_pre_hook(
        lambda mod, args: seen.append(
            (mod, tuple(args[0].shape), args[0].requires_grad)))
        for m in model.modules() if isinstance(m, CBAM)]
    try:
        step()
    finally:
        for h in hooks:
            h.remove()
    total = 0.0
    for mod, shape, needs_grad in seen:
        x = torch.randn(shape, requires_grad=needs_grad)
        grad = torch.randn(shape)
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            out = mod(x)
            if out.requires_grad:
                out.backward(grad)
            times.append(time.perf_counter() - t0)
        total += float(np.median(times[1:]))
    model.zero_grad()
    return total


def profile_table(fn, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(
        sort_by='self_cpu_time_total', row_limit=rows)


def fmt_ratio(name, times_c, times_b, target=None):
    med, lo, hi = ratio_summary(times_c, times_b)
    ok = '' if target is None else (' OK' if med <= target else ' MISSED')
    tgt = f'<= {target:.2f}x' if target else '-'
    print(f'| {name} | {np.median(times_b):.3f} | {np.median(times_c):.3f} '
          f'| {med:.3f}x ({lo:.3f}-{hi:.3f}) | {len(times_b)} | '
          f'{tgt}{ok} |')
    return med


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true',
                      help='a few minutes on 2 cores (default)')
    mode.add_argument('--full', action='store_true',
                      help='more repetitions, plus a 1024 px predict')
    parser.add_argument('--size', type=int, default=512,
                        help='synthetic image side (before the x1.5 resize)')
    parser.add_argument('--dets', type=int, default=100,
                        help='detections per image in predict (forced)')
    parser.add_argument('--predict-reps', type=int)
    parser.add_argument('--backbone-reps', type=int,
                        help='repetitions of the backbone+neck timings '
                        '(default 9, --full 15)')
    parser.add_argument('--cbam-config', default=CBAM_CONFIG,
                        help='the CBAM config to compare with the baseline '
                        '(default: configs/cbam_mask_rcnn.py; e.g. '
                        'configs/ablations/cbam_c3_c5.py)')
    parser.add_argument('--train-reps', type=int)
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--skip-train', action='store_true')
    parser.add_argument('--profile', action='store_true',
                        help='print torch.profiler tables and CBAM share')
    add_record_args(parser)
    args = parser.parse_args(argv)
    quiet()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    p_reps = args.predict_reps or (15 if args.full else 5)
    t_reps = args.train_reps or (9 if args.full else 5)
    b_reps = args.backbone_reps or (15 if args.full else 9)

    base, cbam, n_cbam, (base_train, cbam_train) = build_predictors(
        args.dets, args.cbam_config)
    rgb, _ = synthetic_image(0, args.size, args.size, crowded=True)
    db, dc = base.predict(rgb), cbam.predict(rgb)
    assert len(db) == len(dc) == args.dets, (len(db), len(dc))
    assert np.array_equal(db.bboxes, dc.bboxes) and np.array_equal(
        db.mask_probs, dc.mask_probs), 'identity CBAM changed the outputs'

    print(f'{Path(args.cbam_config).name}: {n_cbam} CBAM modules; image {args.size}x{args.size} '
          f'(network input x1.5), {args.dets} detections; {torch_info()}')

    def feats(p, model=None, img=rgb):
        model = p.model if model is None else model
        data = p.pipeline(dict(img=img[..., ::-1].copy(), img_id=0,
                               img_shape=img.shape[:2],
                               ori_shape=img.shape[:2]))
        x = model.data_preprocessor(
            dict(inputs=[data['inputs']],
                 data_samples=[data['data_samples']]), False)['inputs']

        def run():
            with torch.no_grad():
                return model.extract_feat(x)
        return run

    results = {}
    sizes = [args.size] + ([1024] if args.full and args.size != 1024
                           else [])
    print()
    print('| measurement | baseline s | CBAM s | ratio (min-max) | reps | '
          'target |')
    print('|---|---|---|---|---|---|')
    for size in sizes:
        img = rgb if size == args.size else synthetic_image(
            1, size, size, crowded=True)[0]
        t = interleaved({'base': lambda: base.predict(img),
                         'cbam': lambda: cbam.predict(img)}, p_reps)
        results[f'predict {size}px'] = fmt_ratio(
            f'predict {size}px, {args.dets} dets', t['cbam'], t['base'],
            TARGET_PREDICT)
    # the models as built (what training, validation and tools/test.py
    # run), at the benchmark size and at 1024 px
    base_train.eval()
    cbam_train.eval()
    for size in sorted({args.size, 1024}):
        img = rgb if size == args.size else synthetic_image(
            1, size, size, crowded=True)[0]
        t = interleaved({'base': feats(base, base_train, img),
                         'cbam': feats(cbam, cbam_train, img)}, b_reps)
        results[f'backbone as built {size}px'] = fmt_ratio(
            f'backbone+neck as built {size}px', t['cbam'], t['base'],
            TARGET_BACKBONE)
    t = interleaved({'base': feats(base), 'cbam': feats(cbam)}, b_reps)
    results['backbone'] = fmt_ratio(
        f'backbone+neck {args.size}px, predictor rewrite', t['cbam'],
        t['base'])
    n_gt = 0
    if not args.skip_train:
        batch, n_gt = make_batch(args.size)
        steps = {
            'base': train_stepper(base_train, base.cfg, batch),
            'cbam': train_stepper(cbam_train, cbam.cfg, batch)
        }
        losses = [steps[k]() for k in ('base', 'cbam')]
        assert all(losses[0][k].item() == losses[1][k].item()
                   for k in losses[0]), 'identity CBAM changed the losses'
        t = interleaved(steps, t_reps)
        results['train step'] = fmt_ratio(
            f'train step, batch 2 x {args.size}px ({n_gt} gt)', t['cbam'],
            t['base'], TARGET_TRAIN)
        alone = cbam_train_seconds(cbam_train, steps['cbam'])
        results['train step from CBAM ops alone'] = 1 + alone / float(
            np.median(t['base']))
        print(f'| CBAM modules alone (fwd+bwd, shapes of one step) | - | '
              f'{alone:.3f} | '
              f'{results["train step from CBAM ops alone"]:.3f}x of the '
              f'baseline step | {n_cbam} modules | - |')
        del steps, base_train, cbam_train
    print(f'machine: {machine_info()}, {torch_info()}')

    if args.profile:
        share = cbam_share(cbam, rgb)
        print(f'\ntime inside the {n_cbam} CBAM modules: {share:.1%} of '
              f'one CBAM-model predict')
        print('\nCBAM model predict, top ops:')
        print(profile_table(lambda: cbam.predict(rgb)))
        print('baseline model predict, top ops:')
        print(profile_table(lambda: base.predict(rgb)))

    ok = results[f'predict {args.size}px'] <= TARGET_PREDICT and (
        'train step' not in results
        or results['train step'] <= TARGET_TRAIN) and all(
            v <= TARGET_BACKBONE for k, v in results.items()
            if 'as built' in k)
    if not args.no_record:
        mode_name = 'full' if args.full else 'quick'
        variant = Path(args.cbam_config).stem
        name = (f'{BENCHMARK} ({mode_name}, {variant}, {args.size}px x1.5, '
                f'{args.dets} dets, {p_reps}/{b_reps}/{t_reps} reps, '
                f'{torch.get_num_threads()} threads, load {load_avg()}'
                f'{", " + args.label if args.label else ""})')
        rows = []
        for k, v in results.items():
            tgt = (f'<= {TARGET_PREDICT}x' if k.startswith('predict') else
                   f'<= {TARGET_TRAIN}x' if k == 'train step' else
                   f'<= {TARGET_BACKBONE}x' if 'as built' in k else '-')
            rows.append((f'CBAM/baseline {k} (median ratio)', f'{v:.3f}x',
                         tgt))
        append_result(name, rows, path=args.results, section=BENCHMARK)
        print(f'recorded in {args.results}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

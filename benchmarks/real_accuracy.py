"""Held-out mask AP50 on real H&E, for a fixed training budget.

For each dataset in the hw3 training layout (default: the two real,
single-class sets of ``../shared/data/real/``: ``gbm40`` and ``cpm15``) and
each config (default: the CPU demo configs, CBAM and baseline), with several
training seeds:

1. a deterministic split (``--holdout`` of the images, chosen by a hash of
   their folder names and ``--split-seed``, the same for every seed and
   config): the training images are linked into ``<work>/<dataset>/data/
   train/``, the held-out ones written as ``test_release/<name>.tif`` +
   ``test_image_name_to_ids.json``, exactly the layout of the real test set;
2. conversion with the project's converter (``data_converters/
   hw3_to_coco.py``): the training part (all of it, ``--val-ratio 0``) and
   the held-out part (its ground truth, never seen by training);
3. training with ``tools/train.py`` for ``--iters`` iterations (rounded to
   whole epochs of the training split; no validation during training, the
   last checkpoint is scored), ``--cfg-options`` passed on;
   the proposal and detection caps are derived from the training split
   (``tools/analysis/cell_stats.py --print-cfg-options``, as ``make demo
   DATA=...`` does; ``--config-caps`` keeps the config's);
4. prediction of the held-out images with ``tools/predict.py`` (laid out
   as a test set by ``tools/misc/val_as_test.py``);
5. scoring with ``tools/eval_ap50.py``: the leaderboard's AP50 (COCOeval
   defaults, maxDets 100 per image and category) and AP50 at maxDets 1000.

``--cross`` also scores every trained model on the held-out images of the
other datasets (both real sets are single-class, so this is class-agnostic
AP50): a model that only knows one stain misses the nuclei of another.

The table gives the mean and the spread (min-max) over seeds, the training
and prediction minutes, and is appended to ``benchmarks/RESULTS.md``.
Training uses ``--threads`` OpenMP threads (default 1, as ``make demo``:
the iteration budget fixes the result, the thread count only the time).

Usage (from the repository root)::

    python benchmarks/real_accuracy.py [--data DIR ...] [--config CFG ...]
        [--iters 600] [--seeds 0 1 2] [--holdout 0.25] [--cross]
        [--predict-args ...] [--cfg-options ...] [--work-dir DIR]
        [--no-record] [--label TEXT]
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, add_record_args, append_result,  # noqa: E402
                    run_logged as run, schedule_options)

BENCHMARK = 'real_accuracy'
SHARED_REAL = REPO.parent / 'shared' / 'data' / 'real'
DEFAULT_DATA = (SHARED_REAL / 'gbm40', SHARED_REAL / 'cpm15')
DEFAULT_CONFIGS = ('configs/demo/cbam_mask_rcnn_demo.py',
                   'configs/demo/mask_rcnn_demo.py')
_AP_LINES = {
    'ap50@100': re.compile(r'maxDets=100\):\s+([0-9.]+)'),
    'ap50@1000': re.compile(r'maxDets=1000\):\s+([0-9.]+)'),
}


def split_names(names: Sequence[str], holdout: float,
                seed: int) -> Tuple[List[str], List[str]]:
    """(train, held-out) folder names: the ``holdout`` fraction (at least
    one image) with the smallest ``sha1(seed/name)``, independent of listing
    order."""
    key = {n: hashlib.sha1(f'{seed}/{n}'.encode()).hexdigest() for n in names}
    ranked = sorted(names, key=lambda n: key[n])
    k = max(1, round(holdout * len(names)))
    return sorted(ranked[k:]), sorted(ranked[:k])


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def data_caps(train_json: Path, log: Path, threads: int) -> List[str]:
    """The proposal and detection caps derived from the training split
    (``tools/analysis/cell_stats.py --print-cfg-options``, as ``make demo
    DATA=...`` does), as ``--cfg-options`` tokens."""
    run([sys.executable, 'tools/analysis/cell_stats.py', train_json,
         '--print-cfg-options'], log, threads)
    return log.read_text().split()


def prepare(dataset: Path, work: Path, holdout: float, split_seed: int,
            threads: int) -> Dict[str, object]:
    """Split ``dataset`` and convert both parts (see the module docstring).
    Returns the paths and sizes of the prepared data."""
    names = sorted(p.name for p in (dataset / 'train').iterdir()
                   if (p / 'image.tif').is_file())
    if len(names) < 2:
        raise SystemExit(f'{dataset}/train: fewer than 2 images')
    train, held = split_names(names, holdout, split_seed)
    data, gt_root = work / 'data', work / 'heldout_gt'
    for d in (data, gt_root):
        shutil.rmtree(d, ignore_errors=True)
    for name in train:
        _link(dataset / 'train' / name, data / 'train' / name)
    for name in held:
        _link(dataset / 'train' / name, gt_root / 'train' / name)
    py, logs = sys.executable, work / 'logs'
    gt = gt_root / 'annotations' / 'train.json'
    run([py, 'data_converters/hw3_to_coco.py', '--data-root', gt_root,
         '--out-dir', gt.parent, '--val-ratio', 0],
        logs / 'convert_heldout.log', threads)
    # the held-out images as a test set whose ids are the ground truth's
    run([py, 'tools/misc/val_as_test.py', gt, gt_root, data],
        logs / 'val_as_test.log', threads)
    run([py, 'data_converters/hw3_to_coco.py', '--data-root', data,
         '--out-dir', data / 'annotations', '--val-ratio', 0],
        logs / 'convert_train.log', threads)
    n_cells = len(json.loads(gt.read_text())['annotations'])
    return dict(name=dataset.name, data=data, gt=gt, train=len(train),
                held=len(held), held_cells=n_cells,
                caps=data_caps(data / 'annotations' / 'train.json',
                               logs / 'caps.log', threads))


def epochs_for(iters: int, n_train: int, batch: int) -> int:
    """Whole epochs closest to ``iters`` iterations of ``batch`` images."""
    per_epoch = math.ceil(n_train / batch)
    return max(1, round(iters / per_epoch))


def train_options(epochs: int, seed: int) -> List[str]:
    """``--cfg-options`` for a fixed budget of ``epochs`` with no
    validation (the held-out set is scored afterwards) and one checkpoint
    at the end."""
    return [f'randomness.seed={seed}', *schedule_options(epochs),
            'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
            f'default_hooks.checkpoint.interval={epochs}',
            'default_hooks.checkpoint.save_best=None']


def score(gt: Path, results: Path, log: Path, threads: int) -> Dict[str,
                                                                     float]:
    """AP50 at maxDets 100 and 1000, from ``tools/eval_ap50.py``."""
    run([sys.executable, 'tools/eval_ap50.py', gt, results], log, threads)
    text = log.read_text()
    out = {}
    for key, pattern in _AP_LINES.items():
        m = pattern.search(text)
        if m is None:
            raise SystemExit(f'{log}: no {key} line')
        out[key] = float(m.group(1))
    return out


def _mean_spread(values: Sequence[float]) -> str:
    v = np.asarray(values, float)
    if len(v) == 1:
        return f'{v[0]:.3f}'
    return f'{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, nargs='+',
                        help='datasets in the hw3 training layout (default: '
                        '../shared/data/real/{gbm40,cpm15})')
    parser.add_argument('--config', nargs='+', default=list(DEFAULT_CONFIGS))
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations (rounded to epochs)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--holdout', type=float, default=0.25)
    parser.add_argument('--split-seed', type=int, default=0)
    parser.add_argument('--train-on', nargs='+', metavar='NAME',
                        help='train only on these datasets (folder names; '
                        'default: all); with --cross the models are still '
                        'scored on every dataset')
    parser.add_argument('--cross', action='store_true',
                        help='also score each model on the other datasets')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--config-caps', action='store_true',
                        help="keep the config's proposal / detection caps "
                        'instead of deriving them from the training split')
    parser.add_argument('--predict-args', nargs=argparse.REMAINDER,
                        default=[],
                        help='passed on to tools/predict.py (last option)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed on to tools/train.py')
    parser.add_argument('--work-dir', type=Path,
                        default=REPO / 'work_dirs' / 'real_accuracy')
    add_record_args(parser)
    args = parser.parse_args(argv)
    datasets = args.data or [d for d in DEFAULT_DATA if d.is_dir()]
    if not datasets:
        print(f'skipped: no dataset given and {SHARED_REAL} is absent')
        return 0
    for d in datasets:
        if not (d / 'train').is_dir():
            raise SystemExit(f'error: {d}/train: not found (expected the '
                             'hw3 training layout)')
    unknown = set(args.train_on or ()) - {d.name for d in datasets}
    if unknown:
        raise SystemExit(f'error: --train-on {" ".join(sorted(unknown))}: '
                         'not among the datasets '
                         f'({", ".join(d.name for d in datasets)})')
    work = args.work_dir.resolve()
    from mmengine.config import Config

    from mmseg_cells.utils import register_all_modules
    register_all_modules()  # the stack fixes, before a config is parsed

    prepared = {}
    for d in datasets:
        print(f'preparing {d} -> {work / d.name}')
        prepared[d.name] = prepare(d, work / d.name, args.holdout,
                                   args.split_seed, args.threads)
        p = prepared[d.name]
        print(f'  {p["train"]} train / {p["held"]} held-out images, '
              f'{p["held_cells"]} held-out cells; caps from the training '
              f'split: {" ".join(p["caps"])}')

    # (config, train set, scored set) -> per-seed metrics and times
    results: Dict[Tuple[str, str, str], List[Dict[str, float]]] = {}
    for config in args.config:
        cfg_name = Path(config).stem
        batch = Config.fromfile(config).train_dataloader.batch_size
        for name, p in prepared.items():
            if args.train_on and name not in args.train_on:
                continue
            epochs = epochs_for(args.iters, p['train'], batch)
            iters = epochs * math.ceil(p['train'] / batch)
            caps = [] if args.config_caps else p['caps']
            max_dets = [c.split('=')[1] for c in caps
                        if c.startswith('model.test_cfg.rcnn.max_per_img=')]
            for seed in args.seeds:
                wd = work / name / cfg_name / f'seed{seed}'
                shutil.rmtree(wd, ignore_errors=True)
                print(f'train {cfg_name} on {name} (seed {seed}, {epochs} '
                      f'epochs = {iters} iterations) -> {wd}')
                t_train = run([
                    sys.executable, 'tools/train.py', config, '--data-root',
                    p['data'], '--work-dir', wd, '--cfg-options',
                    *train_options(epochs, seed), *caps, *args.cfg_options
                ], wd / 'train.log', args.threads)
                ckpt = wd / f'epoch_{epochs}.pth'
                targets = list(prepared) if args.cross else [name]
                for target in targets:
                    q = prepared[target]
                    out = wd / f'predict_{target}'
                    t_pred = run([
                        sys.executable, 'tools/predict.py', config, ckpt,
                        '--data-root', q['data'], '--out-dir', out,
                        '--device', 'cpu',
                        *(['--max-per-img', max_dets[0]] if max_dets else []),
                        *args.predict_args
                    ], wd / f'predict_{target}.log', args.threads)
                    m = score(q['gt'], out / 'test-results.json',
                              wd / f'eval_{target}.log', args.threads)
                    m.update(train_min=t_train / 60, predict_s=t_pred,
                             iters=iters)
                    results.setdefault((cfg_name, name, target),
                                       []).append(m)
                    print(f'  on {target}: AP50 {m["ap50@100"]:.4f} '
                          f'(maxDets 1000: {m["ap50@1000"]:.4f}); train '
                          f'{t_train / 60:.1f} min, predict {t_pred:.0f} s')

    print()
    print(f'seeds {args.seeds}, budget ~{args.iters} iterations, '
          f'held-out {args.holdout:.0%} (split seed {args.split_seed}), '
          f'{args.threads} thread(s), '
          f'{"config" if args.config_caps else "data"} caps'
          + (f', cfg-options {" ".join(args.cfg_options)}'
             if args.cfg_options else '')
          + (f', predict {" ".join(args.predict_args)}'
             if args.predict_args else ''))
    print('| config | trained on | scored on | AP50 (maxDets 100) | '
          'AP50 (maxDets 1000) | train min | predict s |')
    print('|---|---|---|---|---|---|---|')
    rows = []
    for (cfg_name, name, target), ms in results.items():
        a100 = _mean_spread([m['ap50@100'] for m in ms])
        a1000 = _mean_spread([m['ap50@1000'] for m in ms])
        t = np.mean([m['train_min'] for m in ms])
        ps = np.mean([m['predict_s'] for m in ms])
        print(f'| {cfg_name} | {name} | {target} | {a100} | {a1000} | '
              f'{t:.1f} | {ps:.0f} |')
        what = f'{cfg_name} {name}->{target}'
        rows.append((f'{what} AP50@100, mean (min-max) of {len(ms)} seeds',
                     a100, '-'))
        rows.append((f'{what} AP50@1000', a1000, '-'))
        rows.append((f'{what} train min / predict s ({ms[0]["iters"]} '
                     f'iterations)', f'{t:.1f} / {ps:.0f}', '-'))
    if not args.no_record:
        desc = (f'{BENCHMARK} ({", ".join(prepared)}; held-out '
                f'{args.holdout:.0%}; ~{args.iters} iters; seeds '
                f'{",".join(map(str, args.seeds))}; {args.threads} thread; '
                f'{"config" if args.config_caps else "data"} caps'
                + (f'; {" ".join(args.cfg_options)}' if args.cfg_options
                   else '')
                + (f'; predict {" ".join(args.predict_args)}'
                   if args.predict_args else '')
                + (f'; {args.label}' if args.label else '') + ')')
        append_result(desc, rows, path=args.results, section=BENCHMARK)
        print(f'recorded in {args.results}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

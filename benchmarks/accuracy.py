"""Mask AP50: CBAM vs baseline, trained the same way on the same data.

Generates a synthetic hw3 data set (``data_converters/make_synthetic.py``),
converts it to COCO (``data_converters/hw3_to_coco.py``), trains both
configs with ``tools/train.py --data-root`` for the same budget and reports
the validation segm AP50 (``coco/segm_mAP_50`` of the last evaluation and
the best one, read from ``<work dir>/*/vis_data/scalars.json``) side by
side.

Modes:

* ``--quick`` (default): the CPU demo configs
  (``configs/demo/mask_rcnn_demo.py`` = baseline,
  ``configs/demo/cbam_mask_rcnn_demo.py``) for ``--epochs`` (6) epochs on
  24 small images (18 train / 6 val), about 10 minutes for both on 2
  cores. At this budget both models are barely past random init: the
  figures show that the pipeline works and both train, not which is better.
* ``--full``: the demo configs with their own schedule (12 epochs) on the
  ``make demo`` data set (48 images of 128-320 px, val 20 %), ~1-2 h on 2
  cores.
* ``--full-configs`` (GPU machines): the real configs
  (``configs/mask_rcnn_r50_fpn_cells.py``, ``configs/cbam_mask_rcnn.py``,
  ImageNet-pretrained ResNet-50, 36 epochs). Point ``--data-root`` at the
  real ``hw3-data-release`` (converted if ``annotations/`` is missing) or
  leave it out for a synthetic set of ``--num-images`` real-sized images.
  The ResNet-50 weights are downloaded on first use (see README).

Usage (from the repository root)::

    python benchmarks/accuracy.py [--quick | --full | --full-configs]
        [--epochs N] [--data-root DIR] [--num-images N] [--work-dir DIR]
        [--seed 0] [--no-record]

Training logs are kept in ``--work-dir`` (default
``work_dirs/accuracy_<mode>``).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, RESULTS, append_result, load_avg,  # noqa: E402
                    run_logged as run, schedule_options,
                    machine_info)

BENCHMARK = 'accuracy'
METRIC = 'coco/segm_mAP_50'

PAIRS = {
    'demo': (('baseline', 'configs/demo/mask_rcnn_demo.py'),
             ('CBAM', 'configs/demo/cbam_mask_rcnn_demo.py')),
    'real': (('baseline', 'configs/mask_rcnn_r50_fpn_cells.py'),
             ('CBAM', 'configs/cbam_mask_rcnn.py')),
}


def read_metric(work_dir: Path):
    """(last, best, evaluations) of ``METRIC`` in the newest run's
    scalars.json."""
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not files:
        raise SystemExit(f'{work_dir}: no */vis_data/scalars.json')
    values = []
    with open(files[-1]) as f:
        for line in f:
            entry = json.loads(line)
            if METRIC in entry:
                values.append(float(entry[METRIC]))
    if not values:
        raise SystemExit(f'{files[-1]}: no {METRIC}')
    return values[-1], max(values), len(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--quick', action='store_true',
                      help='demo configs, a few epochs (default)')
    mode.add_argument('--full', action='store_true',
                      help='demo configs, their 12-epoch schedule')
    mode.add_argument('--full-configs', action='store_true',
                      help='the real configs (GPU machines)')
    parser.add_argument('--epochs', type=int,
                        help='epochs (default: 6 quick, schedule otherwise)')
    parser.add_argument('--data-root', type=Path,
                        help='hw3 data root to use instead of synthetic data')
    parser.add_argument('--num-images', type=int,
                        help='synthetic images (train + val)')
    parser.add_argument('--work-dir', type=Path)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-record', action='store_true')
    parser.add_argument('--results', type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    mode_name = ('full-configs' if args.full_configs else
                 'full' if args.full else 'quick')
    work = (args.work_dir or REPO / 'work_dirs' /
            f'accuracy_{mode_name}').resolve()
    py = sys.executable

    # ------------------------------------------------------------ data
    if args.data_root:
        data = args.data_root.resolve()
        desc = str(data)
    else:
        data = work / 'data'
        if args.full_configs:
            n, sides, val = args.num_images or 60, [], 0.2
        elif args.full:
            n, sides, val = args.num_images or 48, ['--min-side', 128,
                                                    '--max-side', 320], 0.2
        else:
            n, sides, val = args.num_images or 24, ['--min-side', 128,
                                                    '--max-side', 256], 0.25
        desc = f'synthetic, {n} images, seed {args.seed}'
        print(f'generating {desc} -> {data}')
        run([py, 'data_converters/make_synthetic.py', '--out', data,
             '--num-train', n, '--num-test', 0, '--seed', args.seed,
             *sides, '--overwrite'], work / 'logs' / 'make_synthetic.log')
    if not (data / 'annotations' / 'train.json').is_file() or \
            not args.data_root:
        run([py, 'data_converters/hw3_to_coco.py', '--data-root', data,
             '--out-dir', data / 'annotations', '--val-ratio',
             0.2 if args.data_root else val, '--seed', args.seed],
            work / 'logs' / 'convert.log')
    with open(data / 'annotations' / 'train.json') as f:
        n_train = len(json.load(f)['images'])
    with open(data / 'annotations' / 'val.json') as f:
        val_json = json.load(f)
    n_val, n_val_inst = len(val_json['images']), len(val_json['annotations'])

    # ------------------------------------------------------------ train
    epochs = args.epochs or (6 if mode_name == 'quick' else None)
    opts = [f'randomness.seed={args.seed}']
    if epochs:
        opts += schedule_options(epochs)
    pairs = PAIRS['real' if args.full_configs else 'demo']
    rows = []
    for label, config in pairs:
        wd = work / label
        print(f'training {label} ({config}) -> {wd}')
        secs = run([py, 'tools/train.py', config, '--data-root', data,
                    '--work-dir', wd, '--cfg-options', *opts],
                   work / 'logs' / f'train_{label}.log')
        last, best, n_eval = read_metric(wd)
        rows.append((label, config, last, best, n_eval, secs))
        print(f'  {METRIC}: last {last:.4f}, best {best:.4f} '
              f'({n_eval} evaluations, {secs / 60:.1f} min)')

    print()
    print(f'data: {desc} ({n_train} train / {n_val} val images, '
          f'{n_val_inst} val instances); epochs: {epochs or "schedule"}')
    print()
    print('| model | config | segm AP50 (last) | segm AP50 (best) | '
          'train min |')
    print('|---|---|---|---|---|')
    for label, config, last, best, _, secs in rows:
        print(f'| {label} | {config} | {last:.4f} | {best:.4f} | '
              f'{secs / 60:.1f} |')
    diff = rows[1][2] - rows[0][2]
    print(f'\nCBAM - baseline (last): {diff:+.4f}; machine: '
          f'{machine_info()}')
    if not args.no_record:
        name = (f'{BENCHMARK} ({mode_name}, {desc}, {n_train}/{n_val} '
                f'train/val, {epochs or "schedule"} epochs, load '
                f'{load_avg()})')
        out = []
        for label, config, last, best, _, secs in rows:
            out.append((f'{label} segm AP50 last ({Path(config).name})',
                        f'{last:.4f}', '-'))
            out.append((f'{label} segm AP50 best', f'{best:.4f}', '-'))
            out.append((f'{label} train minutes', f'{secs / 60:.1f}', '-'))
        out.append(('CBAM - baseline segm AP50 (last)', f'{diff:+.4f}',
                    '-'))
        append_result(name, out, path=args.results, section=BENCHMARK)
        print(f'recorded in {args.results}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

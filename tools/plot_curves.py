"""Plot training loss and validation AP50 per epoch from a Runner work dir.

``python tools/plot_curves.py WORK_DIR [--out-dir DIR]`` reads the newest
``<WORK_DIR>/<timestamp>/vis_data/scalars.json`` written by mmengine's
``LocalVisBackend`` (or all of them with ``--all-runs``, e.g. after a
``--resume``) and writes ``loss.png`` and ``val_ap50.png``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def find_scalar_logs(work_dir: str, all_runs: bool = False) -> list:
    """``vis_data/scalars.json`` files of a work dir, oldest first."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    if not logs:
        raise FileNotFoundError(
            f'{work_dir}: no */vis_data/scalars.json (is it a tools/train.py '
            f'--work-dir?)')
    return logs if all_runs else logs[-1:]


def read_curves(logs: list) -> dict:
    """Per-epoch mean training losses and validation metrics."""
    train = defaultdict(lambda: defaultdict(list))  # key -> epoch -> values
    val = defaultdict(dict)  # key -> epoch -> value
    for path in logs:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}:{lineno}: bad JSON ({e})')
                if 'loss' in rec and 'epoch' in rec:
                    for k, v in rec.items():
                        if k.startswith('loss'):
                            train[k][rec['epoch']].append(float(v))
                elif any(k.startswith('coco/') for k in rec):
                    epoch = rec.get('epoch', rec.get('step'))
                    for k, v in rec.items():
                        if k.startswith('coco/'):
                            val[k][epoch] = float(v)
    loss = {
        k: sorted((e, sum(v) / len(v)) for e, v in per_epoch.items())
        for k, per_epoch in train.items()
    }
    metrics = {k: sorted(per_epoch.items()) for k, per_epoch in val.items()}
    return dict(loss=loss, val=metrics)


def plot(curves: dict, out_dir: str) -> list:
    """Write loss.png and val_ap50.png; returns the written paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    if curves['loss']:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k in sorted(curves['loss'], key=lambda k: (k != 'loss', k)):
            xs, ys = zip(*curves['loss'][k])
            ax.plot(xs, ys, marker='o', lw=2.5 if k == 'loss' else 1,
                    label=k)
        ax.set_xlabel('epoch')
        ax.set_ylabel('mean training loss')
        ax.set_title('Training loss')
        ax.grid(alpha=.3)
        ax.legend(fontsize=8)
        path = osp.join(out_dir, 'loss.png')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    labels = {
        'coco/segm_leaderboard_AP50': 'mask AP50, leaderboard (maxDets 100)',
        'coco/segm_mAP_50': 'mask AP50 (maxDets 1000)',
        'coco/bbox_mAP_50': 'box AP50 (maxDets 1000)',
        'coco/segm_mAP': 'mask AP50:95 (maxDets 1000)',
    }
    keys = [k for k in labels if k in curves['val']]
    if keys:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k in keys:
            xs, ys = zip(*curves['val'][k])
            lead = k == 'coco/segm_leaderboard_AP50'
            # drawn last-but-on-top and thick: it often overlaps AP50@1000
            ax.plot(xs, ys, marker='o', label=labels[k],
                    linewidth=3 if lead else 1.5, zorder=3 if lead else 2,
                    linestyle='-' if lead else '--')
        ax.set_xlabel('epoch')
        ax.set_ylabel('AP')
        ax.set_ylim(0, 1)
        ax.set_title('Validation AP (the leaderboard number is mask AP50 @100)')
        ax.grid(alpha=.3)
        ax.legend()
        path = osp.join(out_dir, 'val_ap50.png')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out-dir', help='default: WORK_DIR/curves')
    parser.add_argument('--all-runs', action='store_true',
                        help='concatenate every run in the work dir')
    args = parser.parse_args(argv)
    try:
        curves = read_curves(find_scalar_logs(args.work_dir, args.all_runs))
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if not curves['loss'] and not curves['val']:
        print(f'error: {args.work_dir}: the logs hold no loss or val '
              f'metric yet', file=sys.stderr)
        return 1
    for path in plot(curves, args.out_dir or osp.join(args.work_dir,
                                                      'curves')):
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Whole-slide prediction: memory and time against slide size, and ranks.

Synthetic pyramidal slides (``data_converters/make_synthetic_slide.py``,
seed 0, about 45 % tissue) of ``--sizes`` px a side (default 10k, 20k,
40k) go through ``tools/predict.py --slides`` (GeoJSON output, no TTA) with
the demo-size model (``configs/demo/cbam_mask_rcnn_demo.py``; a
``--checkpoint``, or random init saved once: its detection counts are then
the config's caps, the worst case for memory). Each run is a fresh process
with ``--threads`` threads; reported per size: tissue tiles, cells, tiles/s,
cells/s, seconds per tissue tile and the peak RSS. Then the smallest slide
through ``tools/dist_predict.sh`` with ``--ranks`` CPU processes of one
thread each against one such process (``--ranks 0`` skips this).

Targets: peak RSS flat in the slide size (largest / smallest <= 1.10) and
under 2.5 GB; time linear in the tissue area (seconds per tissue tile,
largest / smallest <= 1.10); ``--ranks`` 2 on 2 cores >= 1.6x one rank.

Usage (from the repository root)::

    python benchmarks/slide_predict.py [--sizes 10000 20000 40000]
        [--checkpoint CKPT] [--ranks 2] [--threads 1] [--work-dir DIR]
        [--no-record]
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (REPO, add_record_args, append_result,  # noqa: E402
                    load_avg, run_logged, run_peak)

BENCHMARK = 'slide_predict'
CONFIG = 'configs/demo/cbam_mask_rcnn_demo.py'
TARGET_FLAT = 1.10
TARGET_PEAK_MIB = 2560
TARGET_RANKS = 1.6
_DONE = re.compile(r': (\d+) tiles, (\d+) cells in ([\d.]+) s')


def random_checkpoint(config: str, path: Path) -> str:
    """A randomly initialised checkpoint of ``config`` (saved once)."""
    if not path.exists():
        import torch
        from mmdet.apis import init_detector
        from mmengine.config import Config

        from mmseg_cells.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(config)
        cfg.model.backbone.init_cfg = None
        torch.manual_seed(0)
        model = init_detector(cfg, None, device='cpu')
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'dataset_meta': model.dataset_meta}}, path)
    return str(path)


def predict_cmd(ckpt: str, slide: Path, out: Path) -> list:
    return ['tools/predict.py', CONFIG, ckpt, '--slides', str(slide),
            '--out-dir', str(out), '--format', 'geojson', '--no-tta']


def parse_done(out: str) -> dict:
    tiles, cells, secs = _DONE.findall(out)[-1]
    return dict(tiles=int(tiles), cells=int(cells), seconds=float(secs))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10000, 20000, 40000])
    parser.add_argument('--checkpoint', help='default: random init')
    parser.add_argument('--ranks', type=int, default=2,
                        help='processes for the ranks comparison; 0 skips it')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--work-dir', type=Path,
                        default=Path('/tmp/mmseg_cells_slides'))
    add_record_args(parser)
    args = parser.parse_args(argv)
    work = args.work_dir
    ckpt = args.checkpoint or random_checkpoint(CONFIG,
                                                work / 'random_demo.pth')
    rows = []
    print('| slide | tissue tiles | cells | tiles/s | cells/s | s per tile '
          '| peak RSS MiB |')
    print('|---|---|---|---|---|---|---|')
    for size in sorted(args.sizes):
        slide = work / f'slide_{size}.tif'
        if not slide.exists():
            run_logged([sys.executable,
                        'data_converters/make_synthetic_slide.py', '--out',
                        slide, '--height', size, '--width', size],
                       work / f'make_{size}.log', args.threads)
        peak, out = run_peak([sys.executable] + predict_cmd(
            ckpt, slide, work / f'out_{size}'), work / f'predict_{size}.log',
            args.threads)
        d = parse_done(out)
        d.update(size=size, peak=peak)
        rows.append(d)
        print(f'| {size}x{size} | {d["tiles"]} | {d["cells"]} | '
              f'{d["tiles"] / d["seconds"]:.3f} | '
              f'{d["cells"] / d["seconds"]:.1f} | '
              f'{d["seconds"] / d["tiles"]:.2f} | {peak:.0f} |', flush=True)
    lo, hi = rows[0], rows[-1]
    flat = hi['peak'] / lo['peak']
    linear = (hi['seconds'] / hi['tiles']) / (lo['seconds'] / lo['tiles'])
    worst = max(r['peak'] for r in rows)

    print()
    print(f'peak RSS largest / smallest slide: {flat:.3f} (target <= '
          f'{TARGET_FLAT}); worst {worst:.0f} MiB (target <= '
          f'{TARGET_PEAK_MIB})')
    print(f'seconds per tissue tile largest / smallest: {linear:.3f} '
          f'(target <= {TARGET_FLAT})')
    ok = (flat <= TARGET_FLAT and worst <= TARGET_PEAK_MIB
          and linear <= TARGET_FLAT)
    res = [(f'{r["size"]} px: tissue tiles / cells / tiles/s / peak MiB',
            f'{r["tiles"]} / {r["cells"]} / '
            f'{r["tiles"] / r["seconds"]:.3f} / {r["peak"]:.0f}', '-')
           for r in rows]
    res += [('peak RSS largest / smallest', f'{flat:.3f}',
             f'<= {TARGET_FLAT}'),
            ('worst peak RSS MiB', f'{worst:.0f}', f'<= {TARGET_PEAK_MIB}'),
            ('s per tissue tile largest / smallest', f'{linear:.3f}',
             f'<= {TARGET_FLAT}')]
    if args.ranks:
        speedup, same = compare_ranks(args, ckpt,
                                      work / f'slide_{lo["size"]}.tif')
        ok = ok and speedup >= TARGET_RANKS and same
        res.append((f'{args.ranks} ranks / 1 rank throughput',
                    f'{speedup:.2f}x', f'>= {TARGET_RANKS}x'))
    if not args.no_record:
        name = (f'{BENCHMARK} ({"/".join(str(r["size"]) for r in rows)} px, '
                f'{"trained" if args.checkpoint else "random"} demo model, '
                f'{args.threads} thread(s), load {load_avg()}'
                + (f', {args.label}' if args.label else '') + ')')
        append_result(name, res, path=args.results, section=BENCHMARK)
        print(f'recorded in {args.results}')
    return 0 if ok else 1


def compare_ranks(args, ckpt: str, slide: Path) -> tuple:
    """``args.ranks`` one-thread processes against one on ``slide``."""
    work = args.work_dir
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable, PORT=str(29600 + os.getpid() % 300))
    t0 = time.perf_counter()
    one = subprocess.run([sys.executable] + predict_cmd(
        ckpt, slide, work / 'out_rank1'), cwd=REPO, env=env,
        capture_output=True, text=True)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = subprocess.run(['bash', 'tools/dist_predict.sh', CONFIG, ckpt,
                           str(args.ranks)] + predict_cmd(
        ckpt, slide, work / 'out_ranks')[3:], cwd=REPO, env=env,
        capture_output=True, text=True)
    t_many = time.perf_counter() - t0
    for p in (one, many):
        if p.returncode:
            raise SystemExit(p.stdout[-2000:] + p.stderr[-2000:])
    s_one = parse_done(one.stdout)['seconds']
    s_many = parse_done(many.stdout)['seconds']
    same = (work / 'out_rank1' / f'{slide.stem}.geojson').read_bytes() == \
        (work / 'out_ranks' / f'{slide.stem}.geojson').read_bytes()
    speedup = s_one / s_many
    print(f'{args.ranks} ranks vs 1 on {slide.name}: {speedup:.2f}x '
          f'prediction ({s_one:.1f} -> {s_many:.1f} s; whole runs with '
          f'start-up {t_one:.1f} -> {t_many:.1f} s; target >= '
          f'{TARGET_RANKS}x); outputs identical: {same}')
    return speedup, same


if __name__ == '__main__':
    sys.exit(main())

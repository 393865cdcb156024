"""Speed, memory and agreement of COCOeval implementations for mask AP50.

``python benchmarks/coco_eval_speed.py [--gt PATH] [--reps 5]
[--stock-reps 1] [--no-stock] [--no-rss] [--keep DIR] [--seed 0]
[--no-record] [--label TEXT]``

Builds two results files from a COCO ground truth (default
``../shared/data/hw3_sample/val_coco.json``: 50 images, 6,860 cells, RLE
masks; the benchmark is skipped with a message when it is absent), with a
fixed seed:

* ``perturbed``: one detection per ground-truth cell, 10 % dropped, the mask
  shifted by up to 3 px and dilated / eroded by 0-2 px, 5 % with a wrong
  class, scores from Beta(5, 2) rounded to 3 decimals (ties included), plus
  15 % false positives (cell masks moved to random places, Beta(2, 5)
  scores);
* ``crowded``: the same, then filled up to 1000 detections per image with
  jittered copies of its cells (random class, Beta(1, 4) scores), what a
  model run with ``score_thr=0`` and ``max_per_img=1000`` produces.

For each file and each detection cap (``maxDets`` 100: pycocotools'
defaults, the leaderboard number; 1000: ``maxDets = [1, 10, 1000]``) it
times ``loadRes`` + ``evaluate`` + ``accumulate`` + ``summarize`` on the
same pycocotools ``COCO`` ground truth, for

* ``stock``: pycocotools' ``COCOeval`` (the reference; minutes, so
  ``--stock-reps`` runs, not interleaved);
* ``faster-coco-eval``: ``faster_coco_eval.COCOeval_faster`` (C++ matching
  and accumulation), what :func:`mmseg_cells.evaluation.ap50.evaluate_ap50`
  runs;
* ``numpy port``: :class:`NumpyPortCOCOeval` below, pycocotools'
  ``COCOeval`` with a vectorised numpy ``evaluateImg``, the hand-written
  alternative to the library;

the last two as interleaved repetitions (medians of per-repetition
ratios). It checks that AP50 (``stats[1]``), per-class AP50 and the
``precision`` / ``recall`` / ``scores`` arrays agree with stock's, and
measures peak RSS (``ru_maxrss``) of one evaluation in a fresh child
process per implementation, above the baseline after loading the inputs.
Figures are appended to ``benchmarks/RESULTS.md`` (``## coco_eval_speed``).
"""
import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(REPO), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from pycocotools.cocoeval import COCOeval  # noqa: E402

__all__ = ['NumpyPortCOCOeval', 'make_results', 'run_eval', 'main']

BENCHMARK = 'coco_eval_speed'
DEFAULT_GT = REPO.parent / 'shared' / 'data' / 'hw3_sample' / 'val_coco.json'
VARIANTS = ('perturbed', 'crowded')
MAX_DETS = (100, 1000)
IMPLS = ('stock', 'faster-coco-eval', 'numpy port')


class NumpyPortCOCOeval(COCOeval):
    """``COCOeval`` with a vectorised, output-identical ``evaluateImg``.

    The stock matching loops over IoU thresholds x detections x ground
    truths in Python. For each detection this port handles all thresholds
    at once and only the ground truths it overlaps enough, applying the same
    rule: among the still unmatched (or crowd) ground truths with
    ``IoU >= min(t, 1 - 1e-10)``, prefer not-ignored ones and take the last
    of those with the largest IoU (the stock loop replaces its best match
    on ties); all stored arrays and their dtypes are those of the original.
    Only a benchmark contender: the package uses faster-coco-eval.
    """

    def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802,N803
        p = self.params
        if p.useCats:
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
        else:
            gt = [_ for cId in p.catIds for _ in self._gts[imgId, cId]]
            dt = [_ for cId in p.catIds for _ in self._dts[imgId, cId]]
        if len(gt) == 0 and len(dt) == 0:
            return None
        for g in gt:
            g['_ignore'] = int(bool(g['ignore'] or g['area'] < aRng[0]
                                    or g['area'] > aRng[1]))
        # sort dt highest score first, sort gt ignore last
        gtind = np.argsort([g['_ignore'] for g in gt], kind='mergesort')
        gt = [gt[i] for i in gtind]
        dtind = np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in dtind[0:maxDet]]
        iscrowd = np.array([int(o['iscrowd']) for o in gt], dtype=bool)
        ious = self.ious[imgId, catId][:, gtind] \
            if len(self.ious[imgId, catId]) > 0 else self.ious[imgId, catId]
        T, G, D = len(p.iouThrs), len(gt), len(dt)  # noqa: N806
        gtm = np.zeros((T, G))
        dtm = np.zeros((T, D))
        gtIg = np.array([g['_ignore'] for g in gt])  # noqa: N806
        dtIg = np.zeros((T, D))  # noqa: N806
        if not len(ious) == 0:
            thrs = np.array([min([t, 1 - 1e-10]) for t in p.iouThrs])
            thr_min = thrs.min()
            gt_ids = np.array([g['id'] for g in gt])
            not_crowd = ~iscrowd
            regular = gtIg == 0
            # detections that may match anything at any threshold
            for dind in np.flatnonzero((ious >= thr_min).any(axis=1)):
                row = ious[dind]
                cols = np.flatnonzero(row >= thr_min)
                vals = row[cols]
                # eligible: not already matched unless crowd, IoU >= thr
                ok = (vals[None, :] >= thrs[:, None]) & ~(
                    (gtm[:, cols] > 0) & not_crowd[cols][None, :])
                ok_reg = ok & regular[cols][None, :]
                cand = np.where(ok_reg.any(axis=1)[:, None], ok_reg,
                                ok & ~regular[cols][None, :])
                hit = np.flatnonzero(cand.any(axis=1))
                if hit.size == 0:
                    continue
                scored = np.where(cand[hit], vals[None, :], -np.inf)
                # last column with the maximum IoU
                m = cols[cols.size - 1 - np.argmax(scored[:, ::-1], axis=1)]
                dtIg[hit, dind] = gtIg[m]
                dtm[hit, dind] = gt_ids[m]
                gtm[hit, m] = dt[dind]['id']
        # set unmatched detections outside of area range to ignore
        a = np.array([d['area'] < aRng[0] or d['area'] > aRng[1]
                      for d in dt]).reshape((1, len(dt)))
        dtIg = np.logical_or(  # noqa: N806
            dtIg, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
        return {
            'image_id': imgId, 'category_id': catId, 'aRng': aRng,
            'maxDet': maxDet, 'dtIds': [d['id'] for d in dt],
            'gtIds': [g['id'] for g in gt], 'dtMatches': dtm,
            'gtMatches': gtm, 'dtScores': [d['score'] for d in dt],
            'gtIgnore': gtIg, 'dtIgnore': dtIg,
        }


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def make_results(gt: dict, seed: int = 0, crowded: bool = False,
                 cap: int = 1000) -> List[dict]:
    """A deterministic, imperfect COCO results list for ``gt`` (see the
    module docstring for the recipe)."""
    import cv2
    from mmseg_cells.mask_codec import encode_crop_rle, rle_to_crop
    rng = np.random.default_rng(seed)
    cats = sorted(c['id'] for c in gt['categories'])
    by_img: Dict[int, List[dict]] = {}
    for a in gt['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    kernel = np.ones((3, 3), np.uint8)
    out: List[dict] = []
    for img in sorted(gt['images'], key=lambda i: i['id']):
        height, width = img['height'], img['width']
        cells = []
        for a in by_img.get(img['id'], []):
            crop, x0, y0 = rle_to_crop(a['segmentation'])
            cells.append((a['category_id'], crop.astype(np.uint8), x0, y0))
        dets: List[dict] = []

        def add(crop: np.ndarray, x: int, y: int, cat: int,
                score: float) -> None:
            dets.append({
                'image_id': img['id'], 'category_id': int(cat),
                'segmentation': encode_crop_rle(crop, x, y, height, width),
                'score': round(float(score), 3)})

        def jitter(crop: np.ndarray, shift: int
                   ) -> Tuple[np.ndarray, int, int]:
            """Dilated / eroded by 0-2 px, offset by up to ``shift`` px."""
            radius, op = (int(v) for v in rng.integers(0, 3, 2))
            pad = np.pad(crop, 3)
            if radius and op == 1:
                pad = cv2.dilate(pad, kernel, iterations=radius)
            elif radius and op == 2:
                pad = cv2.erode(pad, kernel, iterations=radius)
            dx, dy = (int(v) for v in rng.integers(-shift, shift + 1, 2))
            return pad, dx - 3, dy - 3

        for cat, crop, x0, y0 in cells:
            if rng.random() < 0.10:  # missed cell
                continue
            mask, dx, dy = jitter(crop, 3)
            if rng.random() < 0.05:  # wrong class
                cat = rng.choice(cats)
            add(mask, x0 + dx, y0 + dy, cat, rng.beta(5, 2))
        for _ in range(int(round(0.15 * len(cells)))):  # false positives
            _, crop, _, _ = cells[rng.integers(len(cells))]
            x = rng.integers(0, max(1, width - crop.shape[1]))
            y = rng.integers(0, max(1, height - crop.shape[0]))
            add(crop, x, y, rng.choice(cats), rng.beta(2, 5))
        while crowded and cells and len(dets) < cap:
            _, crop, x0, y0 = cells[rng.integers(len(cells))]
            mask, dx, dy = jitter(crop, 8)
            add(mask, x0 + dx, y0 + dy, rng.choice(cats), rng.beta(1, 4))
        out += dets
    return out


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def _evaluator(impl: str) -> Callable:
    if impl == 'stock':
        return COCOeval
    if impl == 'numpy port':
        return NumpyPortCOCOeval
    from faster_coco_eval import COCOeval_faster

    def make(coco_gt, coco_dt, iou_type):
        return COCOeval_faster(coco_gt, coco_dt, iou_type,
                               print_function=lambda *a, **k: None)
    return make


def run_eval(impl: str, coco_gt, dets: List[dict], max_det: int):
    """``loadRes`` + evaluate + accumulate + summarize, as
    :func:`~mmseg_cells.evaluation.ap50.evaluate_ap50` runs them: default
    parameters for 100, ``maxDets = [1, 10, max_det]`` otherwise."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([dict(r) for r in dets])
        E = _evaluator(impl)(coco_gt, coco_dt, 'segm')  # noqa: N806
        if max_det != 100:
            E.params.maxDets = [1, 10, max_det]
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def ap50(E, max_det: int, k: Optional[int] = None) -> float:  # noqa: N803
    """AP50 (area 'all') at ``max_det``, overall or for category index
    ``k``: ``COCOeval.summarize``'s formula."""
    p = E.params
    s = E.eval['precision'][np.where(p.iouThrs == 0.5)[0]]
    s = s[:, :, :, 0, list(p.maxDets).index(max_det)]
    if k is not None:
        s = s[:, :, k]
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def _agreement(ref, other, max_det: int) -> Dict[str, float]:
    """Largest absolute differences to the reference evaluation."""
    n_cats = ref.eval['precision'].shape[2]
    return {
        'ap50': abs(ap50(ref, max_det) - ap50(other, max_det)),
        'stats1': abs(float(ref.stats[1]) - float(other.stats[1])),
        'per_class': max(abs(ap50(ref, max_det, k) - ap50(other, max_det, k))
                         for k in range(n_cats)),
        'precision': float(np.abs(ref.eval['precision']
                                  - other.eval['precision']).max()),
        'recall': float(np.abs(ref.eval['recall']
                               - other.eval['recall']).max()),
        'scores': float(np.abs(ref.eval['scores']
                               - other.eval['scores']).max()),
    }


def _rss_child(impl: str, gt_path: str, res_path: str, max_det: int) -> None:
    """Child process: peak RSS of one evaluation above the loaded inputs.

    The high-water mark is reset after loading (Linux ``clear_refs`` 5), so
    that the JSON parsing peak does not hide the evaluation's; where that
    is not possible, ``ru_maxrss`` of the whole process is reported."""
    import gc
    import resource

    import faster_coco_eval  # noqa: F401  same imports for every impl
    from mmseg_cells.evaluation.ap50 import load_coco_gt

    def status_mib(key: str) -> Optional[float]:
        try:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith(key + ':'):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    coco_gt = load_coco_gt(gt_path)
    with open(res_path) as f:
        dets = json.load(f)
    gc.collect()
    base = status_mib('VmRSS')
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    E = run_eval(impl, coco_gt, dets, max_det)  # noqa: N806
    seconds = time.perf_counter() - t0
    peak = status_mib('VmHWM') if reset else None
    if peak is None or base is None:
        base = 0.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'base_mib': base, 'peak_mib': peak,
                      'seconds': seconds, 'ap50': float(E.stats[1])}))


def _rss(impl: str, gt_path: Path, res_path: Path, max_det: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, '--rss-child', impl, str(gt_path),
         str(res_path), str(max_det)],
        cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{impl} child failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_diff(v: float) -> str:
    return '0' if v == 0 else f'{v:.1e}'


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark; 0 unless an implementation disagrees with stock
    by more than 1e-12."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gt', type=Path, default=DEFAULT_GT,
                        help='COCO ground truth with RLE masks')
    parser.add_argument('--reps', type=int, default=5,
                        help='interleaved repetitions of the fast pair')
    parser.add_argument('--stock-reps', type=int, default=1,
                        help='timed runs of stock pycocotools')
    parser.add_argument('--no-stock', action='store_true',
                        help='skip stock pycocotools (no agreement check)')
    parser.add_argument('--no-rss', action='store_true',
                        help='skip the peak-RSS child processes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--keep', type=Path,
                        help='write the results files into this folder')
    from common import add_record_args, append_result, interleaved
    add_record_args(parser)
    args = parser.parse_args(argv)
    if not args.gt.is_file():
        print(f'skipped: ground truth not found: {args.gt}')
        return 0

    from mmseg_cells.evaluation.ap50 import load_coco_gt
    with open(args.gt) as f:
        gt = json.load(f)
    coco_gt = load_coco_gt(gt)
    tmp = tempfile.TemporaryDirectory(prefix='coco_eval_speed_')
    out_dir = args.keep or Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs: Dict[str, Tuple[List[dict], Path]] = {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        dets = make_results(gt, args.seed, crowded=variant == 'crowded')
        path = out_dir / f'results_{variant}.json'
        with open(path, 'w') as f:
            json.dump(dets, f)
        inputs[variant] = (dets, path)
        print(f'{variant}: {len(dets)} detections on {len(gt["images"])} '
              f'images ({len(gt["annotations"])} cells), built in '
              f'{time.perf_counter() - t0:.1f} s')

    rows: List[Tuple[str, str, str]] = []
    table: List[str] = []
    worst = 0.0
    for variant in VARIANTS:
        dets, path = inputs[variant]
        for m in MAX_DETS:
            case = f'{variant}, maxDets {m}'
            evals: Dict[str, Any] = {}

            def timed(impl: str) -> Callable[[], None]:
                def fn() -> None:
                    evals[impl] = run_eval(impl, coco_gt, dets, m)
                return fn

            times = interleaved({i: timed(i) for i in IMPLS[1:]}, args.reps)
            stock_s: List[float] = []
            for _ in range(0 if args.no_stock else args.stock_reps):
                t0 = time.perf_counter()
                evals['stock'] = run_eval('stock', coco_gt, dets, m)
                stock_s.append(time.perf_counter() - t0)
            fast, port = times['faster-coco-eval'], times['numpy port']
            ratio = float(np.median(np.asarray(fast) / np.asarray(port)))
            med = {k: float(np.median(v)) for k, v in times.items()}
            line = (f'{case:26} faster-coco-eval '
                    f'{med["faster-coco-eval"]:6.2f} s  numpy port '
                    f'{med["numpy port"]:6.2f} s  ratio {ratio:.3f}x')
            rows.append((f'faster-coco-eval / numpy port time, {case} '
                         f'(median ratio, {args.reps} reps)',
                         f'{ratio:.3f}x', '<= 1.00x keeps the library'))
            rows.append((f'seconds faster-coco-eval / numpy port, {case}',
                         f'{med["faster-coco-eval"]:.2f} / '
                         f'{med["numpy port"]:.2f}', '-'))
            if stock_s:
                s = float(np.median(stock_s))
                line += f'  stock {s:6.1f} s'
                rows.append((f'seconds stock pycocotools, {case} '
                             f'({len(stock_s)} run)', f'{s:.1f}', '-'))
                for impl in IMPLS[1:]:
                    d = _agreement(evals['stock'], evals[impl], m)
                    worst = max(worst, d['ap50'], d['stats1'],
                                d['per_class'], d['precision'], d['recall'],
                                d['scores'])
                    line += (f'\n    {impl:16} vs stock: |dAP50| '
                             f'{_fmt_diff(max(d["ap50"], d["stats1"]))}, '
                             f'per-class {_fmt_diff(d["per_class"])}, '
                             f'precision {_fmt_diff(d["precision"])}, '
                             f'recall {_fmt_diff(d["recall"])}, '
                             f'scores {_fmt_diff(d["scores"])}')
                    rows.append((
                        f'max abs diff to stock, {impl}, {case} (AP50 / '
                        f'per-class AP50 / precision array)',
                        f'{_fmt_diff(max(d["ap50"], d["stats1"]))} / '
                        f'{_fmt_diff(d["per_class"])} / '
                        f'{_fmt_diff(d["precision"])}', '<= 1e-12'))
                line += f'\n    AP50 {float(evals["stock"].stats[1]):.6f}'
            print(line, flush=True)
            table.append(line)
            if not args.no_rss:
                rss = {i: _rss(i, args.gt, path, m) for i in IMPLS[1:]}
                print('    peak RSS above inputs: ' + ', '.join(
                    f'{i} {r["peak_mib"] - r["base_mib"]:.0f} MiB '
                    f'(peak {r["peak_mib"]:.0f})' for i, r in rss.items()),
                    flush=True)
                rows.append((
                    f'peak RSS above inputs (MiB) faster-coco-eval / numpy '
                    f'port, {case}', ' / '.join(
                        f'{r["peak_mib"] - r["base_mib"]:.0f}'
                        for r in rss.values()), '-'))
    tmp.cleanup()
    ok = worst <= 1e-12
    print(f'largest difference to stock: {_fmt_diff(worst)} '
          f'({"ok" if ok else "above 1e-12"})')
    if not args.no_record:
        name = (f'{BENCHMARK} ({args.gt.name}, seed {args.seed}, '
                f'{args.reps} reps'
                + (f', {args.label}' if args.label else '') + ')')
        append_result(name, rows, path=args.results, section=BENCHMARK)
    return 0 if ok else 1


if __name__ == '__main__':
    if len(sys.argv) == 6 and sys.argv[1] == '--rss-child':
        _rss_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    sys.exit(main())

#!/usr/bin/env bash
# The main job end to end (called by `make demo`):
#   generate (or link real data) -> convert -> train -> evaluate -> predict -> curves
# DATA=/path/to/hw3-data-release runs the same flow on real data (read-only:
# it is linked, never written), with the proposal and detection caps derived
# from its training split (tools/analysis/cell_stats.py); without
# test_release/ it predicts the validation images and scores them.
# OUT (default demo_out) receives everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$(mkdir -p "${OUT:-demo_out}" && cd "${OUT:-demo_out}" && pwd)"
DATA="${DATA:-}"
CONFIG="${CONFIG:-$ROOT/configs/demo/cbam_mask_rcnn_demo.py}"
# demo dataset size (synthetic): images of 128-320 px, H&E-like
NUM_TRAIN="${NUM_TRAIN:-48}"
NUM_TEST="${NUM_TEST:-8}"
cd "$ROOT"
# One OpenMP thread by default: measured 1.1 s/iteration on a shared 2-core
# machine, against up to 20 s with 2 threads competing for the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
start=$(date +%s)
step() { printf '\n==== [%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

DATA_ROOT="$OUT/data"
if [[ -z "$DATA" ]]; then
  step "1/6 synthetic hw3 dataset -> $DATA_ROOT"
  rm -rf "$DATA_ROOT"
  "$PY" data_converters/make_synthetic.py --out "$DATA_ROOT" --num-train "$NUM_TRAIN" \
    --num-test "$NUM_TEST" --seed 0 --min-side 128 --max-side 320
else
  step "1/6 real data $DATA (linked into $DATA_ROOT, not modified)"
  [[ -d "$DATA/train" ]] || { echo "error: $DATA/train: not found (expected the hw3-data-release layout)" >&2; exit 1; }
  rm -rf "$DATA_ROOT"; mkdir -p "$DATA_ROOT"
  DATA_ABS="$(cd "$DATA" && pwd)"
  for entry in train test_release test_image_name_to_ids.json; do
    [[ -e "$DATA_ABS/$entry" ]] && ln -s "$DATA_ABS/$entry" "$DATA_ROOT/$entry"
  done
  if [[ ! -f "$DATA_ABS/test_image_name_to_ids.json" || ! -d "$DATA_ABS/test_release" ]]; then
    echo "note: $DATA has no test_release/ + test_image_name_to_ids.json: step 5 predicts the validation images instead"
  fi
fi
PREDICT_ROOT="$DATA_ROOT"
[[ -f "$DATA_ROOT/test_image_name_to_ids.json" && -d "$DATA_ROOT/test_release" ]] || PREDICT_ROOT="$OUT/val_as_test"

step "2/6 convert to COCO -> $DATA_ROOT/annotations"
"$PY" data_converters/hw3_to_coco.py --data-root "$DATA_ROOT" --out-dir "$DATA_ROOT/annotations" \
  --val-ratio 0.2 --seed 0

# Real data: proposal / detection caps fitted to its crowding (the demo
# config's are sized for the synthetic images of <= 60 cells)
CAPS=()
MAX_DETS=()
if [[ -n "$DATA" ]]; then
  caps_line="$("$PY" tools/analysis/cell_stats.py "$DATA_ROOT/annotations/train.json" --print-cfg-options)"
  read -r -a CAPS <<< "$caps_line"
  echo "caps from the training split: ${CAPS[*]}"
  for c in "${CAPS[@]}"; do
    [[ "$c" == model.test_cfg.rcnn.max_per_img=* ]] && MAX_DETS=(--max-per-img "${c#*=}")
  done
  CAPS=(--cfg-options "${CAPS[@]}")
fi

WORK="$OUT/work_dir"
step "3/6 train $(basename "$CONFIG") -> $WORK"
rm -rf "$WORK"
"$PY" tools/train.py "$CONFIG" --data-root "$DATA_ROOT" --work-dir "$WORK" "${CAPS[@]}"
CKPT="$(ls "$WORK"/best_coco_segm_leaderboard_AP50_epoch_*.pth | tail -n 1)"

step "4/6 evaluate $CKPT on val (segm AP50: coco/segm_leaderboard_AP50 at maxDets 100, coco/segm_mAP_50 at 1000)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --data-root "$DATA_ROOT" --work-dir "$WORK/test" "${CAPS[@]}" 2>&1 \
  | tee "$WORK/test.log" | grep -E "segm_mAP_copypaste|coco/segm_mAP_50|coco/segm_leaderboard_AP50|^\| class" || true

if [[ "$PREDICT_ROOT" == "$DATA_ROOT" ]]; then
  step "5/6 predict test images -> $OUT/predictions"
else
  step "5/6 predict the validation images (no test set) -> $OUT/predictions"
  "$PY" tools/misc/val_as_test.py "$DATA_ROOT/annotations/val.json" "$DATA_ROOT" "$PREDICT_ROOT"
fi
"$PY" tools/predict.py "$CONFIG" "$CKPT" --data-root "$PREDICT_ROOT" --out-dir "$OUT/predictions" \
  --save-label-maps --save-overlays "${MAX_DETS[@]}"
if [[ "$PREDICT_ROOT" != "$DATA_ROOT" ]]; then
  "$PY" tools/eval_ap50.py "$DATA_ROOT/annotations/val.json" "$OUT/predictions/test-results.json"
fi

step "6/6 training curves -> $WORK/curves"
"$PY" tools/plot_curves.py "$WORK"

ap50="$(grep -oE 'coco/segm_leaderboard_AP50: [0-9.]+' "$WORK/test.log" | tail -n 1 | awk '{print $2}')"
ap50_1000="$(grep -oE 'coco/segm_mAP_50: [0-9.]+' "$WORK/test.log" | tail -n 1 | awk '{print $2}')"
step "done: val segm AP50 ${ap50:-?} (leaderboard, maxDets 100; ${ap50_1000:-?} at maxDets 1000), $(( $(date +%s) - start )) s"
echo "demo outputs: $OUT"

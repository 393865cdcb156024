#!/usr/bin/env bash
# One-command environment for mmseg-cells (called by `make install`).
#
# Creates .venv/ in the repository root (VENV=... moves it) and installs, in
# this order:
#   1. build tools and torch==2.13.0 (pinned exactly so that pip never resolves
#      another build);
#   2. mmcv 2.1.0 WITH its C++ ops: MMCV_WHEEL=/path/or/URL/to/mmcv-2.1.0-*.whl
#      installs a wheel you already have (OpenMMLab's prebuilt wheel for your
#      torch/CUDA, or one built once and shared on a site); otherwise it is
#      built from its sdist (MMCV_WITH_OPS=1, --no-build-isolation so that it
#      compiles against the torch above; there is no mmcv wheel for this torch).
#      The built wheel is cached outside the repository, keyed by torch version,
#      CPU/CUDA, Python and architecture:
#        ${MMSEG_CELLS_CACHE:-~/.cache/mmseg_cells}/wheels/<key>/
#      so the next install (any clone on the same machine) takes seconds.
#      With a CUDA torch and nvcc present, mmcv is built with CUDA ops
#      (FORCE_CUDA=1). Set TORCH_CUDA_ARCH_LIST (e.g. "8.0;9.0") to the compute
#      capabilities of your GPUs to shorten the build; the default builds for
#      the GPU visible at build time.
#   3. mmengine 0.10.7, mmdet 3.3.0 (--no-deps: it would otherwise try to
#      rebuild mmcv), the remaining pinned dependencies and this project in
#      editable mode, with its [tests] and [slides] (OpenSlide) extras;
#   4. a check that mmcv.ops nms and RoIAlign actually run.
# Every pip call, pip's own build environments included, is bound by
# requirements/constraints.txt (exported as PIP_CONSTRAINT). Before the long
# mmcv build, a check of a few seconds fails the way the build would.
# Idempotent: re-running it only installs what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-}"
TORCH_VERSION="2.13.0"
MMCV_VERSION="2.1.0"
CACHE_ROOT="${MMSEG_CELLS_CACHE:-$HOME/.cache/mmseg_cells}"

T0=$SECONDS
STEP_T0=$SECONDS
log() { printf '[install] %s\n' "$*"; }
# step NAME: closes the previous step with its elapsed time and opens the next
STEP_NAME=""
step() {
  if [[ -n "$STEP_NAME" ]]; then
    log "  ... $STEP_NAME: $((SECONDS - STEP_T0)) s"
  fi
  STEP_NAME="$1"; STEP_T0=$SECONDS
  [[ -n "$1" ]] && log "$1"
  return 0
}
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -z "$PYTHON" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PYTHON="$cand"; break; fi
  done
fi
[[ -n "$PYTHON" ]] || die "no python3 found; install Python 3.11"
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$pyver" == "3.11" ]] || die "Python 3.11 is required (mmcv 2.1.0 / mmengine 0.10.7), found $pyver at $(command -v "$PYTHON"); set PYTHON=/path/to/python3.11"

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The tested versions bind every pip call below and pip's build environments
# (an unconstrained `pip install torch` would upgrade setuptools past 82, which
# has no pkg_resources, and the mmcv build would fail half an hour later).
export PIP_CONSTRAINT="$ROOT/requirements/constraints.txt"

step "build tools (setuptools<82: mmcv's setup.py and mmengine import pkg_resources)"
"${PIP[@]}" install -q pip setuptools wheel ninja numpy

step "torch==$TORCH_VERSION"
"${PIP[@]}" install -q "torch==$TORCH_VERSION"

# build_env_check: the seconds-long check that fails the way mmcv's build and
# mmengine would (tools/check_build_env.py), run before the long build.
build_env_check() {
  "$VPY" "$ROOT/tools/check_build_env.py" || die "the build environment in $VENV cannot build mmcv (see above). Fix: $VPY -m pip install 'setuptools<82' (requirements/constraints.txt pins the tested one), or delete $VENV and rerun make install."
}
step "build-environment check"
build_env_check

read -r TORCH_V TORCH_CUDA < <("$VPY" -c 'import torch; print(torch.__version__.split("+")[0], torch.version.cuda or "none")')
if [[ "$TORCH_CUDA" != "none" ]] && command -v nvcc >/dev/null 2>&1; then
  VARIANT="cu${TORCH_CUDA//./}"
  export FORCE_CUDA=1
  log "CUDA torch ($TORCH_CUDA) and nvcc found: building mmcv with CUDA ops (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-<detected>})"
else
  VARIANT="cpu"
  export FORCE_CUDA=0
  [[ "$TORCH_CUDA" != "none" ]] && log "WARNING: CUDA torch but no nvcc: mmcv gets CPU ops only (install the CUDA toolkit for GPU ops)"
fi
KEY="torch${TORCH_V}-${VARIANT}-py${pyver/./}-$(uname -m)"
WHEEL_DIR="$CACHE_ROOT/wheels/$KEY"
mkdir -p "$WHEEL_DIR"

mmcv_ok() {
  "$VPY" - <<'PY' >/dev/null 2>&1
import mmcv, torch
from mmcv.ops import nms, RoIAlign
assert mmcv.__version__ == '2.1.0'
PY
}

step "mmcv $MMCV_VERSION with ops"
if mmcv_ok && [[ -z "${MMCV_WHEEL:-}" ]]; then
  log "mmcv $MMCV_VERSION with ops already installed"
elif [[ -n "${MMCV_WHEEL:-}" ]]; then
  # A wheel the user already has: a local path or a URL. Its ops are verified
  # at the end like those of a built one.
  case "$(basename "$MMCV_WHEEL")" in
    mmcv-"$MMCV_VERSION"-*.whl|mmcv-"$MMCV_VERSION"+*.whl) ;;
    *) die "MMCV_WHEEL=$MMCV_WHEEL: not an mmcv $MMCV_VERSION wheel (expected a file named mmcv-$MMCV_VERSION-*.whl; mmdet 3.3.0 needs mmcv<2.2)";;
  esac
  if [[ "$MMCV_WHEEL" != *://* && ! -f "$MMCV_WHEEL" ]]; then
    die "MMCV_WHEEL=$MMCV_WHEEL: no such file"
  fi
  log "installing the given wheel $MMCV_WHEEL (no build)"
  "${PIP[@]}" install -q --no-deps --force-reinstall "$MMCV_WHEEL" \
    || die "MMCV_WHEEL=$MMCV_WHEEL: pip could not install it (wrong Python/platform tag?)"
else
  shopt -s nullglob
  wheels=("$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl)
  if (( ${#wheels[@]} == 0 )); then
    jobs="$(nproc 2>/dev/null || echo 2)"
    log "=================================================================="
    log "Building mmcv $MMCV_VERSION from source with its C++ ops ($VARIANT)."
    log "This takes 15-30 minutes on 2 cores (once: the wheel is cached in"
    log "$WHEEL_DIR). MMCV_WHEEL=<wheel> skips it."
    log "=================================================================="
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    MMCV_WITH_OPS=1 MAX_JOBS="$jobs" "${PIP[@]}" wheel --no-deps --no-build-isolation \
      --no-binary mmcv -w "$tmp" "mmcv==$MMCV_VERSION"
    built=("$tmp"/mmcv-*.whl)
    (( ${#built[@]} == 1 )) || die "mmcv build produced no wheel"
    # move into the cache atomically so that a concurrent install never sees half a wheel
    cp "${built[0]}" "$WHEEL_DIR/.partial.whl"
    mv "$WHEEL_DIR/.partial.whl" "$WHEEL_DIR/$(basename "${built[0]}")"
    wheels=("$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl)
  else
    log "using cached mmcv wheel ${wheels[0]}"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "${wheels[0]}"
fi

step "mmcv/mmengine/mmdet runtime dependencies"
"${PIP[@]}" install -q addict packaging Pillow pyyaml yapf rich termcolor \
  "opencv-python>=4.9,<6" "mmengine==0.10.7"
"${PIP[@]}" install -q --no-deps "mmdet==3.3.0"

step "mmseg_cells (editable), test dependencies and OpenSlide ([slides])"
"${PIP[@]}" install -q --no-build-isolation -e "$ROOT[tests,slides]"
# pip may have moved setuptools while resolving the above: check again.
build_env_check

step "checking that mmcv.ops run"
"$VPY" - <<'PY' || die "mmcv was installed without working ops (delete the cached wheel in $WHEEL_DIR and rerun)"
import torch
from mmcv.ops import nms, RoIAlign
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
scores = torch.tensor([0.9, 0.8, 0.7])
dets, keep = nms(boxes, scores, iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.arange(16.).view(1, 1, 4, 4)
out = RoIAlign((2, 2), 1.0, 0, aligned=True)(feat, torch.tensor([[0., 0., 0., 4., 4.]]))
assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all()
if torch.cuda.is_available():
    keep = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)[1]
    assert keep.tolist() == [0, 2]
    print('mmcv CUDA ops OK')
import mmdet, mmengine, mmcv, mmseg_cells
print('mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmdet', mmdet.__version__,
      'torch', torch.__version__, 'mmseg_cells', mmseg_cells.__version__, '- ops OK')
PY
step ""
touch "$VENV/.mmseg_cells-installed"
log "done: $VENV ($((SECONDS - T0)) s in all)"

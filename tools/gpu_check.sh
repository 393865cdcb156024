#!/usr/bin/env bash
# One-shot check of the CUDA path on a bare, OFFLINE GPU machine (issue 16).
#
#   bash tools/gpu_check.sh WHEEL_DIR LOG_DIR
#
# Target: one NVIDIA GPU, Python 3.12 with a CUDA build of torch preinstalled
# (default /opt/torch/.venv/bin/python3; PYTHON=... overrides), nvcc, g++,
# ninja; no network. In about 10 minutes it
#   0. reports the machine and derives TORCH_CUDA_ARCH_LIST from the visible
#      GPU (torch.cuda.get_device_capability(), e.g. "9.0" on an H100/H200);
#   1. installs the carried wheels (requirements/gpu_wheels.txt) with
#      `pip install --no-index --no-deps --find-links WHEEL_DIR`: torch, numpy
#      and opencv are never touched; setuptools is replaced by the carried
#      80.9.0 only if the machine's is >= 82 (no pkg_resources, which mmcv's
#      setup.py and mmengine import);
#   2. checks the Python-level stack (imports, LZW TIFF round trip, configs);
#   3. builds mmcv 2.1.0 from the carried sdist WITH CUDA ops for that GPU
#      only (MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=$(nproc), timed), after the
#      environment fixes listed at mmcv_env() below;
#   4. runs mmcv.ops nms and RoIAlign on CUDA tensors;
#   5. makes a small synthetic hw3 dataset and converts it to COCO;
#   6. trains configs/cbam_mask_rcnn.py 2 epochs (random init, --amp) through
#      tools/dist_train.sh CONFIG 1 (nccl), and
#   7. configs/mask_rcnn_r50_fpn_cells.py for the same iterations;
#   8. predicts the test images and the val images with the CBAM checkpoint
#      and scores the val predictions with tools/eval_ap50.py;
#   9. prints s/iter of both configs, their ratio, peak GPU memory and the
#      predict lines.
# Everything printed is also written to LOG_DIR/gpu_check.log (plus the build
# log, the training logs/scalars and summary.txt). Each step prints its
# elapsed time; the first failure stops the script with
# "GPU CHECK FAILED at step N/9 (...)" and exit status 1. Wrong arguments:
# usage message and exit status 2.
#
# Preparing WHEEL_DIR (on a machine with PyPI access; the header of
# requirements/gpu_wheels.txt has the exact commands): a folder that git
# ignores through .git/info/exclude (not .gitignore), e.g. gpu_wheels/, with
# the 14 wheels listed in requirements/gpu_wheels.txt and mmcv-2.1.0.tar.gz,
# about 33 MiB. An mmcv-2.1.0-*.whl built by an earlier run of this script
# (it copies the one it builds into LOG_DIR) may be put there too: it is then
# installed instead of building (it must match the torch/CUDA/Python there).
#
# Environment:
#   PYTHON=...              interpreter to install into and run with
#   GPU_CHECK_DRY_RUN=1     stop after steps 0-2 (install + Python-level
#                           checks), before the CUDA build: the CPU check,
#                           runs without GPU or nvcc
#   GPU_CHECK_WORK=DIR      scratch (data, checkpoints, mmcv build);
#                           default /tmp/gpu_check_work, never LOG_DIR
#   TORCH_CUDA_ARCH_LIST    overrides the derived arch list
#   GPU_CHECK_EPOCHS=2      epochs of each training run
#   GPU_CHECK_NUM_TRAIN=40, GPU_CHECK_NUM_TEST=3   synthetic dataset size
# A second run on the same (still warm) machine skips what is already
# installed, including an mmcv that already runs its ops on CUDA.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: bash tools/gpu_check.sh WHEEL_DIR LOG_DIR
  WHEEL_DIR  folder with the wheels of requirements/gpu_wheels.txt and
             mmcv-2.1.0.tar.gz (see the header of this script)
  LOG_DIR    folder for gpu_check.log, the build log, training logs and
             summary.txt (created if missing)
  GPU_CHECK_DRY_RUN=1 stops after the install, before the CUDA build.
EOF
  exit 2
}
if [[ $# -ne 2 ]]; then usage; fi
case "$1" in -h|--help) usage;; esac
if [[ ! -d "$1" ]]; then
  echo "error: WHEEL_DIR $1: not a directory" >&2
  usage
fi
WHEEL_DIR="$(cd "$1" && pwd)"
mkdir -p "$2" || { echo "error: LOG_DIR $2: cannot create it" >&2; exit 2; }
LOG_DIR="$(cd "$2" && pwd)"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /opt/torch/.venv/bin/python3 ]]; then PYTHON=/opt/torch/.venv/bin/python3
  else PYTHON="$(command -v python3)"; fi
fi
PY="$PYTHON"
export PYTHON                     # tools/dist_run.sh runs torchrun with it
# the interpreter's bin first: its ninja (torch uses ninja only if it is on
# PATH; without it the build is serial and takes far too long), pip, torchrun
PATH="$(dirname "$PY"):$PATH"
export PATH
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONUNBUFFERED=1
DRY_RUN="${GPU_CHECK_DRY_RUN:-0}"
WORK="${GPU_CHECK_WORK:-/tmp/gpu_check_work}"
EPOCHS="${GPU_CHECK_EPOCHS:-2}"
NUM_TRAIN="${GPU_CHECK_NUM_TRAIN:-40}"
NUM_TEST="${GPU_CHECK_NUM_TEST:-3}"
MMCV_VERSION=2.1.0
REQ="$ROOT/requirements/gpu_wheels.txt"
mkdir -p "$WORK"

exec > >(tee -a "$LOG_DIR/gpu_check.log") 2>&1
TEE_PID=$!
SUMMARY="$LOG_DIR/summary.txt"
: > "$SUMMARY"

T0=$SECONDS
STEP=""
STEP_T0=$SECONDS
REPORTED=""
LAST_ERR=""
end_step() {
  if [[ -n "$STEP" ]]; then
    printf -- '---- %s: %d s (total %d s)\n' "$STEP" $((SECONDS - STEP_T0)) $((SECONDS - T0)) \
      | tee -a "$SUMMARY"
  fi
  return 0
}
step() {
  end_step
  STEP="$1"; STEP_T0=$SECONDS
  printf '\n==== [%4d s] %s\n' $((SECONDS - T0)) "$STEP"
}
fail() {
  REPORTED=1
  printf '\nGPU CHECK FAILED at step %s after %d s: %s\n' "${STEP:-?}" $((SECONDS - T0)) "$*" \
    | tee -a "$SUMMARY"
  echo "full log: $LOG_DIR/gpu_check.log"
  exit 1
}
# set -e ends the script at an unhandled failure (in a function too); the ERR
# trap (main shell only) remembers the command, the EXIT trap names the step.
trap 'LAST_ERR="line $LINENO: $BASH_COMMAND"' ERR
on_exit() {
  local rc=$?
  if (( rc != 0 )) && [[ -z "$REPORTED" ]]; then
    printf '\nGPU CHECK FAILED at step %s after %d s: exit status %d%s\n' "${STEP:-?}" \
      $((SECONDS - T0)) "$rc" "${LAST_ERR:+ ($LAST_ERR)}" | tee -a "$SUMMARY"
    echo "full log: $LOG_DIR/gpu_check.log"
  fi
  exec 1>&- 2>&-            # let tee write the last lines before we return
  wait "$TEE_PID" 2>/dev/null || true
}
trap on_exit EXIT
note() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

pipi() {  # offline install of carried files only, never any dependency
  "$PY" -m pip install --no-index --no-deps --find-links "$WHEEL_DIR" "$@"
}

# --- TORCH_CUDA_ARCH_LIST from compute capabilities (tests run ARCH_PY) -----
# ARCH_PY-BEGIN
ARCH_PY='
def arch_list(caps):
    """TORCH_CUDA_ARCH_LIST for (major, minor) capabilities: [(9, 0)] -> "9.0".

    One entry per distinct capability, sorted, no +PTX: the build is for the
    GPUs of this machine only.
    """
    caps = sorted({(int(a), int(b)) for a, b in caps})
    if not caps:
        raise ValueError("no CUDA device")
    return ";".join("%d.%d" % c for c in caps)
'
# ARCH_PY-END

# wheel_specs: the name==version lines of requirements/gpu_wheels.txt
wheel_specs() { grep -E '^[A-Za-z0-9_.-]+==[^ ]+$' "$REQ"; }

# =============================================================================
step "0/9 machine"
[[ -x "$PY" ]] || command -v "$PY" >/dev/null || fail "no Python at $PY (set PYTHON=...)"
"$PY" - <<'PY' || fail "cannot import torch with $PY"
import platform, sys, sysconfig, os
import torch
print('python', sys.version.split()[0], sys.executable)
print('torch', torch.__version__, 'cuda', torch.version.cuda,
      'cudnn', torch.backends.cudnn.version() if torch.cuda.is_available() else '-')
print('cuda available', torch.cuda.is_available(),
      'devices', torch.cuda.device_count() if torch.cuda.is_available() else 0)
for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
    p = torch.cuda.get_device_properties(i)
    print(f'  cuda:{i} {p.name} capability {p.major}.{p.minor} '
          f'{p.total_memory / 2**30:.0f} GiB {p.multi_processor_count} SMs')
try:
    import setuptools
    print('setuptools', setuptools.__version__)
except ImportError:
    print('setuptools: not installed')
print('Python.h', os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))
PY
echo "nproc $(nproc), $(awk '/MemTotal/{printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo 2>/dev/null || true), disk free in $WORK: $(df -h "$WORK" 2>/dev/null | awk 'NR==2{print $4}' || true)"
HAVE_CUDA="$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')"
if [[ "$HAVE_CUDA" == 1 ]]; then
  if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
    TORCH_CUDA_ARCH_LIST="$("$PY" -c "$ARCH_PY
import torch
print(arch_list([torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]))")"
  fi
  export TORCH_CUDA_ARCH_LIST
  note "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
elif [[ "$DRY_RUN" == 1 ]]; then
  note "no CUDA GPU visible: dry run (GPU_CHECK_DRY_RUN=1) continues up to the CUDA build"
else
  fail "torch.cuda.is_available() is False with $PY (no GPU, or a CPU build of torch). GPU_CHECK_DRY_RUN=1 runs the CPU-only part."
fi
if [[ "$DRY_RUN" != 1 ]]; then
  command -v nvcc >/dev/null || fail "nvcc not found on PATH (the mmcv CUDA build needs the CUDA toolkit)"
  nvcc --version | tail -n 2
  command -v g++ >/dev/null || command -v c++ >/dev/null || fail "no C++ compiler (g++) for the mmcv build"
  "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || fail "Python.h missing for $PY (install the python3.12-dev headers): the mmcv build needs it"
fi
note "python: $PY"

# =============================================================================
step "1/9 install carried wheels from $WHEEL_DIR (no index, no dependencies)"
[[ -f "$REQ" ]] || fail "$REQ missing"
missing=()
while read -r spec; do
  name="${spec%%==*}"; ver="${spec#*==}"
  n1="$(echo "$name" | tr '-' '_')"
  ls "$WHEEL_DIR"/"$name"-"$ver"-*.whl "$WHEEL_DIR"/"$n1"-"$ver"-*.whl >/dev/null 2>&1 \
    || missing+=("$spec")
done < <(wheel_specs)
[[ -f "$WHEEL_DIR/mmcv-$MMCV_VERSION.tar.gz" ]] || ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 \
  || missing+=("mmcv-$MMCV_VERSION.tar.gz")
(( ${#missing[@]} == 0 )) || fail "WHEEL_DIR lacks: ${missing[*]} (see requirements/gpu_wheels.txt)"

if ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "no pip in $PY: bootstrapping it offline with ensurepip"
  "$PY" -m ensurepip || fail "$PY has neither pip nor ensurepip"
fi
"$PY" -m pip --version
# setuptools < 82: mmcv's setup.py and mmengine 0.10.7 import pkg_resources
if "$PY" - <<'PY'
import sys, warnings
warnings.simplefilter('ignore')
try:
    import setuptools, pkg_resources  # noqa: F401
except Exception:
    sys.exit(1)
sys.exit(int(setuptools.__version__.split('.')[0]) >= 82)
PY
then
  echo "setuptools $("$PY" -c 'import setuptools; print(setuptools.__version__)') has pkg_resources: kept"
else
  echo "setuptools >= 82 or no pkg_resources: installing the carried setuptools"
  pipi -q "$(wheel_specs | grep '^setuptools==')"
fi
specs=()
while read -r spec; do
  case "${spec%%==*}" in
    setuptools) ;;
    wheel) "$PY" -c 'import wheel' 2>/dev/null || specs+=("$spec");;
    tifffile) "$PY" -c 'import tifffile' 2>/dev/null || specs+=("$spec");;
    *) specs+=("$spec");;
  esac
done < <(wheel_specs)
pipi -q "${specs[@]}"
"$PY" -m pip list 2>/dev/null | grep -iE '^(torch|numpy|opencv[-a-z]*|setuptools|mmengine|mmdet|mmcv|pycocotools|imagecodecs|tifffile|shapely|yapf|addict|termcolor|terminaltables) ' || true
echo "pip check (informational: mmengine/mmcv name opencv-python, the machine has the headless build):"
"$PY" -m pip check 2>&1 | sed 's/^/  /' || true

# =============================================================================
step "2/9 Python-level checks (imports, pkg_resources, LZW TIFF, pycocotools, configs)"
"$PY" - <<'PY' || fail "the Python-level stack is broken (see the traceback above)"
import os, sys, tempfile, warnings
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
import numpy as np
import setuptools, pkg_resources  # noqa: F401  (mmcv setup.py, mmengine)
# Python 3.12 has no distutils: mmengine 0.10.7's collect_env() (run by every
# Runner) does `from distutils import errors`, served by setuptools' shim
from distutils import errors  # noqa: F401
assert int(setuptools.__version__.split('.')[0]) < 82, setuptools.__version__
import cv2, tifffile, imagecodecs, shapely, pycocotools.mask as mask_util
import addict, yapf, termcolor, terminaltables  # noqa: F401
import mmengine
from mmengine.config import Config
# LZW + predictor TIFF as data_converters/make_synthetic.py writes them
with tempfile.TemporaryDirectory() as d:
    img = (np.arange(64 * 48 * 4) % 251).astype(np.uint8).reshape(64, 48, 4)
    p = os.path.join(d, 'x.tif')
    tifffile.imwrite(p, img, photometric='rgb', extrasamples=('unassalpha',),
                     planarconfig='contig', compression='lzw', predictor=True,
                     rowsperstrip=4, metadata=None, software=False, maxworkers=1)
    assert (tifffile.imread(p) == img).all()
m = np.zeros((20, 30), np.uint8, order='F'); m[2:9, 3:12] = 1
rle = mask_util.encode(m)
assert mask_util.area(rle) == 63 and (mask_util.decode(rle) == m).all()
for c in ('configs/cbam_mask_rcnn.py', 'configs/mask_rcnn_r50_fpn_cells.py'):
    cfg = Config.fromfile(c, import_custom_modules=False)  # mmdet:: bases
    assert cfg.model.roi_head.bbox_head.num_classes == 4
print('numpy', np.__version__, 'cv2', cv2.__version__, 'tifffile', tifffile.__version__,
      'imagecodecs', imagecodecs.__version__, 'shapely', shapely.__version__,
      'mmengine', mmengine.__version__, 'setuptools', setuptools.__version__)
print('Python-level stack OK')
PY

if [[ "$DRY_RUN" == 1 ]]; then
  end_step
  note "DRY RUN (GPU_CHECK_DRY_RUN=1): stopping before the CUDA build of mmcv; $((SECONDS - T0)) s"
  exit 0
fi

# =============================================================================
# mmcv_env: environment fixes for building mmcv 2.1.0 against torch 2.11 +
# a pip-assembled CUDA 13 toolkit (checked by compiling mmcv's roi_align and
# nms .cu files with nvcc 13.0 against torch 2.11.0+cu130's headers):
#  * CUDA_HOME: torch derives it from `which nvcc`; a /usr/local/bin/nvcc
#    wrapper script gives CUDA_HOME=/usr/local (no CUDA headers or
#    lib64/libcudart there). Use the toolkit folder that holds bin/nvcc and
#    include/cuda_runtime.h.
#  * torch's ATen/cuda/CUDAContextLight.h includes cusparse.h, cublas_v2.h,
#    cublasLt.h and cusolverDn.h; a toolkit made of the nvcc/cudart/cccl pip
#    packages lacks them, torch's own nvidia-* wheels have them in
#    site-packages/nvidia/cu13/include: passed as CUDA_INC_PATH (torch's
#    cpp_extension adds it to every compile) and CPATH.
#  * libcudart.so for the link: $CUDA_HOME/lib64, else torch's nvidia wheel
#    (libcudart.so.13, linked as libcudart.so in $WORK/cudalib).
#  * __NV_NO_VECTOR_DEPRECATION_DIAG (via mmcv's MMCV_CUDA_ARGS): CUDA 13
#    deprecates double4/longlong4, used by mmcv's filtered_lrelu.cu; only
#    warnings, silenced.
# No source patch: 9 of mmcv's 59 .cu files compiled without error with nvcc
# 13.0 against torch 2.11.0+cu130's headers and the flags torch generates
# (roi_align, nms, ms_deform_attn -- it includes THC/THCAtomics.cuh, a shim
# torch 2.11 still ships --, carafe, sync_bn, spconv_ops, deform_conv,
# focal_loss, and filtered_lrelu, the slowest file: 281 s against 37-105 s
# for the others on a loaded 2-core machine), and setup.py, run on Python
# 3.12 + setuptools 80.9 with FORCE_CUDA=1, wrote a build.ninja of 136
# objects for sm_90 only with -std=c++17 (mmcv >= 2.0 already passes c++17
# for torch > 1.12). The other 50 .cu files are checked only by this build.
mmcv_env() {
  local cand
  if [[ -z "${CUDA_HOME:-}" ]]; then
    for cand in /usr/local/cuda "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"; do
      if [[ -x "$cand/bin/nvcc" && -f "$cand/include/cuda_runtime.h" ]]; then CUDA_HOME="$cand"; break; fi
    done
    if [[ -z "${CUDA_HOME:-}" ]]; then  # a wrapper script: ask nvcc where it is
      cand="$( { nvcc --dryrun -E -x cu /dev/null 2>&1 || true; } | sed -nE 's/^#\$ TOP=(.*)$/\1/p' | head -n 1)"
      [[ -n "$cand" ]] && cand="$(readlink -f "$cand")"
      [[ -n "$cand" && -f "$cand/include/cuda_runtime.h" ]] && CUDA_HOME="$cand"
    fi
  fi
  [[ -n "${CUDA_HOME:-}" ]] || fail "cannot find the CUDA toolkit folder (bin/nvcc + include/cuda_runtime.h); set CUDA_HOME"
  export CUDA_HOME
  note "CUDA_HOME=$CUDA_HOME"
  if [[ ! -f "$CUDA_HOME/include/cusparse.h" ]]; then
    local inc
    inc="$("$PY" - <<'PY'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
hits = []
for r in roots:
    hits += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(r, 'nvidia', '*', 'include', 'cusparse.h')))
    hits += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(r, 'nvidia', '*', 'include', 'cublas_v2.h')))
seen = []
for h in hits:
    if h not in seen:
        seen.append(h)
print(':'.join(seen))
PY
)"
    [[ -n "$inc" ]] || fail "cusparse.h is neither in $CUDA_HOME/include nor in the nvidia-* wheels of $PY: torch's CUDA headers cannot compile"
    export CUDA_INC_PATH="${inc%%:*}"
    export CPATH="$inc${CPATH:+:$CPATH}"
    note "CUDA libraries' headers from torch's nvidia wheels: CUDA_INC_PATH=$CUDA_INC_PATH"
  fi
  if [[ ! -e "$CUDA_HOME/lib64/libcudart.so" && ! -e "$CUDA_HOME/lib/libcudart.so" ]]; then
    # torch links the extension with -lcudart from $CUDA_HOME/lib64; else
    # use the runtime of torch's nvidia wheels (it has no unversioned link)
    local rt
    rt="$("$PY" -c 'import glob, site; print(next(iter(sorted(p for r in site.getsitepackages() for p in glob.glob(r + "/nvidia/*/lib/libcudart.so.*"))), ""))')"
    [[ -n "$rt" ]] || fail "no libcudart.so in $CUDA_HOME/lib64 nor in torch's nvidia wheels"
    mkdir -p "$WORK/cudalib"
    ln -sf "$rt" "$WORK/cudalib/libcudart.so"
    export LIBRARY_PATH="$WORK/cudalib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    note "linking against $rt (LIBRARY_PATH=$WORK/cudalib)"
  fi
  export MMCV_CUDA_ARGS="-D__NV_NO_VECTOR_DEPRECATION_DIAG"
  "$PY" -c 'from torch.utils.cpp_extension import is_ninja_available as f; import sys; sys.exit(not f())' \
    || fail "ninja not found on PATH: the build would be serial (pip install ninja)"
}

# build_progress: ninja's [k/n] lines, shortened, every 10th and the last, with
# the seconds since the build started; lines with error/FAILED in full
build_progress() {
  local t0=$SECONDS line k n f
  while IFS= read -r line; do
    if [[ "$line" =~ ^\[([0-9]+)/([0-9]+)\] ]]; then
      k="${BASH_REMATCH[1]}"; n="${BASH_REMATCH[2]}"
      if (( k % 10 == 0 || k == n )); then
        f="${line##* -c }"; f="${f%% *}"; f="${f##*/}"
        printf '  [%4d s] [%s/%s] %s\n' $((SECONDS - t0)) "$k" "$n" "$f"
      fi
    elif [[ "$line" == *error* || "$line" == *Error* || "$line" == *FAILED* ]]; then
      printf '  %s\n' "$line"
    fi
  done
  return 0
}

mmcv_cuda_ok() {
  "$PY" - <<'PY' >/dev/null 2>&1
import torch, mmcv
from mmcv.ops import nms
assert mmcv.__version__ == '2.1.0'
b = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
nms(b, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
PY
}

# =============================================================================
step "3/9 mmcv $MMCV_VERSION with CUDA ops (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=$(nproc))"
shopt -s nullglob
prebuilt=("$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl)
shopt -u nullglob
if mmcv_cuda_ok; then
  note "mmcv $MMCV_VERSION with CUDA ops already installed: no build"
elif (( ${#prebuilt[@]} > 0 )); then
  note "installing the prebuilt ${prebuilt[0]##*/} (no build)"
  pipi --force-reinstall "${prebuilt[0]}"
else
  mmcv_env
  BUILD="$WORK/mmcv_build"
  SRC="$BUILD/mmcv-$MMCV_VERSION"
  key="$(sha256sum "$WHEEL_DIR/mmcv-$MMCV_VERSION.tar.gz" | cut -c1-16) $TORCH_CUDA_ARCH_LIST $("$PY" -c 'import torch; print(torch.__version__)')"
  if [[ -f "$BUILD/.key" && "$(cat "$BUILD/.key")" == "$key" ]]; then
    # an earlier run on this machine was cut short: ninja rebuilds only what
    # is missing from the build/ folder of the same source tree
    echo "resuming the build in $SRC"
    rm -rf "$BUILD/dist"; mkdir -p "$BUILD/dist"
  else
    rm -rf "$BUILD"; mkdir -p "$BUILD/dist"
    tar xzf "$WHEEL_DIR/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    echo "$key" > "$BUILD/.key"
  fi
  n_cu=$(ls "$SRC"/mmcv/ops/csrc/pytorch/cuda/*.cu | wc -l)
  n_cpp=$(ls "$SRC"/mmcv/ops/csrc/pytorch/*.cpp "$SRC"/mmcv/ops/csrc/pytorch/cpu/*.cpp "$SRC"/mmcv/ops/csrc/pytorch/cuda/*.cpp | wc -l)
  echo "building all of mmcv's ops: $n_cu .cu + $n_cpp .cpp files (mmcv cannot build a subset); log: $LOG_DIR/mmcv_build.log"
  b0=$SECONDS
  # ninja's [k/n] lines, shortened, every 10th and the last; errors in full
  ( cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS="$(nproc)" \
      "$PY" -m pip wheel -v --no-index --no-deps --no-build-isolation -w "$BUILD/dist" . ) 2>&1 \
    | tee "$LOG_DIR/mmcv_build.log" | build_progress \
    || fail "mmcv build failed after $((SECONDS - b0)) s: see $LOG_DIR/mmcv_build.log (errors above)"
  BUILD_S=$((SECONDS - b0))
  built=("$BUILD"/dist/mmcv-*.whl)
  [[ -f "${built[0]}" ]] || fail "the mmcv build produced no wheel (see $LOG_DIR/mmcv_build.log)"
  note "mmcv build: ${BUILD_S} s ($(du -h "${built[0]}" | cut -f1) wheel ${built[0]##*/})"
  pipi --force-reinstall "${built[0]}"
  # bring the wheel back: the next GPU check can carry it in WHEEL_DIR and skip the build
  cp "${built[0]}" "$LOG_DIR/" && note "built wheel copied to $LOG_DIR/${built[0]##*/}"
fi

# =============================================================================
step "4/9 mmcv ops on CUDA tensors (nms, RoIAlign) and the stack's imports"
"$PY" - <<'PY' || fail "mmcv's CUDA ops do not run"
import warnings
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
import torch
from mmcv.ops import RoIAlign, batched_nms, nms
dev = 'cuda'
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]], device=dev)
scores = torch.tensor([0.9, 0.8, 0.7], device=dev)
dets, keep = nms(boxes, scores, iou_threshold=0.5)
assert keep.tolist() == [0, 2] and dets.is_cuda, keep
_, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0], device=dev), dict(type='nms', iou_threshold=0.5))
assert sorted(keep.tolist()) == [0, 1, 2], keep
feat = torch.arange(16., device=dev).view(1, 1, 4, 4)
rois = torch.tensor([[0., 0., 0., 4., 4.]], device=dev)
out = RoIAlign((2, 2), 1.0, 0, aligned=True)(feat, rois)
ref = RoIAlign((2, 2), 1.0, 0, aligned=True)(feat.cpu(), rois.cpu())
assert out.is_cuda and torch.allclose(out.cpu(), ref), (out, ref)
with torch.autocast('cuda', dtype=torch.float16):   # --amp path
    out16 = RoIAlign((2, 2), 1.0, 0, aligned=True)(feat.half(), rois.half())
assert torch.allclose(out16.float().cpu(), ref, rtol=1e-2, atol=1e-2), (out16, ref)
import mmcv, mmengine, mmdet, mmseg_cells
print('mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmdet', mmdet.__version__,
      'torch', torch.__version__, 'mmseg_cells', mmseg_cells.__version__, '- CUDA ops OK')
PY

# =============================================================================
DATA="$WORK/data"
step "5/9 synthetic hw3 dataset ($NUM_TRAIN train, $NUM_TEST test) -> COCO"
rm -rf "$DATA"
"$PY" data_converters/make_synthetic.py --out "$DATA" --num-train "$NUM_TRAIN" \
  --num-test "$NUM_TEST" --seed 0 --min-side 256 --max-side 640 \
  || fail "make_synthetic.py failed"
"$PY" data_converters/hw3_to_coco.py --data-root "$DATA" --out-dir "$DATA/annotations" \
  --val-ratio 0.2 --seed 0 || fail "hw3_to_coco.py failed"

# train CONFIG NAME [extra cfg-options]: EPOCHS epochs through dist_train.sh
train() {
  local config="$1" name="$2"; shift 2
  local wd="$WORK/$name"
  rm -rf "$wd"
  PORT="${PORT:-29517}" bash tools/dist_train.sh "$config" 1 --data-root "$DATA" --work-dir "$wd" --amp \
    --cfg-options model.backbone.init_cfg=None "train_cfg.max_epochs=$EPOCHS" \
      default_hooks.logger.interval=1 log_processor.window_size=1 \
      train_dataloader.num_workers=4 default_hooks.checkpoint.max_keep_ckpts=1 "$@" \
    2>&1 | tee "$LOG_DIR/train_$name.log" \
    || fail "training $config failed (see $LOG_DIR/train_$name.log)"
  mkdir -p "$LOG_DIR/$name"
  cp "$wd"/*/vis_data/scalars.json "$LOG_DIR/$name/" 2>/dev/null || true
  cp "$wd"/*/*.log "$LOG_DIR/$name/" 2>/dev/null || true
}

# =============================================================================
step "6/9 train configs/cbam_mask_rcnn.py, $EPOCHS epochs, random init, --amp, dist_train.sh 1 GPU (nccl)"
train configs/cbam_mask_rcnn.py cbam "train_cfg.val_interval=$EPOCHS"

# =============================================================================
step "7/9 train configs/mask_rcnn_r50_fpn_cells.py, same iterations (no validation)"
train configs/mask_rcnn_r50_fpn_cells.py baseline "train_cfg.val_interval=$((EPOCHS + 1))"

# =============================================================================
step "8/9 predict with the CBAM checkpoint; mask AP50 of the val predictions"
shopt -s nullglob
ckpts=("$WORK"/cbam/best_*.pth "$WORK"/cbam/epoch_"$EPOCHS".pth)
shopt -u nullglob
(( ${#ckpts[@]} > 0 )) || fail "no checkpoint in $WORK/cbam"
CKPT="${ckpts[0]}"
echo "checkpoint: $CKPT"
"$PY" tools/predict.py configs/cbam_mask_rcnn.py "$CKPT" --data-root "$DATA" \
  --out-dir "$WORK/predict_test" --save-overlays 2>&1 | tee "$LOG_DIR/predict_test.log" \
  || fail "tools/predict.py on the test images failed"
note "predict (test images): $(grep -E '^[0-9]+/[0-9]+ images' "$LOG_DIR/predict_test.log" | tail -n 1 || true)"
# the val images as a "test set" (test_image_name_to_ids.json with val.json's
# ids), so that the predictions can be scored against val.json
VALROOT="$WORK/val_as_test"
"$PY" - "$DATA" "$VALROOT" <<'PY' || fail "cannot lay out the val images as a test set"
import json, os, shutil, sys
data, out = sys.argv[1:]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(os.path.join(out, 'test_release'))
val = json.load(open(os.path.join(data, 'annotations', 'val.json')))
entries = []
for im in val['images']:
    name = '%d.tif' % im['id']
    os.symlink(os.path.join(data, im['file_name']), os.path.join(out, 'test_release', name))
    entries.append(dict(file_name=name, id=im['id'], height=im['height'], width=im['width']))
json.dump(entries, open(os.path.join(out, 'test_image_name_to_ids.json'), 'w'))
print(len(entries), 'val images')
PY
"$PY" tools/predict.py configs/cbam_mask_rcnn.py "$CKPT" --data-root "$VALROOT" \
  --out-dir "$WORK/predict_val" 2>&1 | tee "$LOG_DIR/predict_val.log" \
  || fail "tools/predict.py on the val images failed"
note "predict (val images): $(grep -E '^[0-9]+/[0-9]+ images' "$LOG_DIR/predict_val.log" | tail -n 1 || true)"
"$PY" tools/eval_ap50.py "$DATA/annotations/val.json" "$WORK/predict_val/test-results.json" 2>&1 \
  | tee "$LOG_DIR/eval_ap50.log" || fail "tools/eval_ap50.py failed"
note "eval_ap50 (val, $EPOCHS epochs from random init: expect ~0): $(grep -E '^segm AP50' "$LOG_DIR/eval_ap50.log" | tr -s ' ' | paste -sd ';' - || true)"

# =============================================================================
step "9/9 summary"
"$PY" - "$WORK/cbam" "$WORK/baseline" "$LOG_DIR/train_cbam.log" "$LOG_DIR/train_baseline.log" <<'PY' | tee -a "$SUMMARY"
import glob, json, os, re, statistics, sys
def stats(work, text_log):
    files = sorted(glob.glob(os.path.join(work, '*', 'vis_data', 'scalars.json')))
    rows = []
    if files:
        rows = [json.loads(l) for l in open(files[-1]) if l.strip()]
    train = [r for r in rows if 'time' in r and 'loss' in r]
    times = [float(r['time']) for r in train]
    mem = [float(r['memory']) for r in train if 'memory' in r]
    if not mem:  # the text log: "memory: 1234"
        mem = [float(m) for m in re.findall(r'memory: (\d+)', open(text_log).read())]
    skip = min(5, len(times) // 3)  # warm-up: cudnn autotune, first batches
    steady = times[skip:]
    return dict(iters=len(times), skip=skip,
                median=statistics.median(steady) if steady else float('nan'),
                mean=statistics.fmean(steady) if steady else float('nan'),
                mem=max(mem) if mem else float('nan'))
c = stats(sys.argv[1], sys.argv[3])
b = stats(sys.argv[2], sys.argv[4])
for name, s in (('CBAM    ', c), ('baseline', b)):
    print(f"{name}: {s['median']:.4f} s/iter median ({s['mean']:.4f} mean) over "
          f"{s['iters'] - s['skip']} iterations (first {s['skip']} of {s['iters']} skipped), "
          f"peak GPU memory {s['mem']:.0f} MB")
print(f"s/iter ratio CBAM/baseline: {c['median'] / b['median']:.3f} (median), "
      f"{c['mean'] / b['mean']:.3f} (mean)")
PY
end_step
STEP="done"
note "GPU CHECK PASSED in $((SECONDS - T0)) s; logs in $LOG_DIR"

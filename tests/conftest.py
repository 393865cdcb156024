"""Shared fixtures: a tiny synthetic hw3 dataset converted to COCO."""
import os
import os.path as osp
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO.parent / 'shared' / 'data' / 'hw3_sample'
PYTHON = sys.executable
TINY_CONFIG = str(REPO / 'tests' / 'configs' / 'tiny_cbam_mask_rcnn.py')


def pytest_collection_modifyitems(config, items):
    """``MMSEG_CELLS_TEST_ORDER=reverse`` runs the test files in reverse
    order and each file's tests backwards; ``=<int>`` shuffles the files
    and the tests within each file with that seed. For checking that no
    test depends on what ran before it (tests of one file stay together so
    that module-scoped fixtures are built once)."""
    order = os.environ.get('MMSEG_CELLS_TEST_ORDER')
    if not order:
        return
    modules = {}
    for item in items:
        modules.setdefault(item.module.__name__, []).append(item)
    groups = list(modules.values())
    if order == 'reverse':
        groups.reverse()
        for g in groups:
            g.reverse()
    else:
        rng = random.Random(int(order))
        rng.shuffle(groups)
        for g in groups:
            rng.shuffle(g)
    items[:] = [item for g in groups for item in g]


@pytest.fixture(autouse=True)
def _seed_global_rngs():
    """Every test starts from the same global RNG states (torch, numpy,
    random), whatever ran before it: a test that draws its inputs without
    its own seed would otherwise see different data in another order."""
    import numpy as np
    import torch
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def shared_sample() -> Path:
    """The real hw3 sample of ../shared (skips when absent)."""
    if not SHARED_SAMPLE.is_dir():
        pytest.skip(f'{SHARED_SAMPLE} not present')
    return SHARED_SAMPLE


@pytest.fixture(scope='session')
def tiny_data_root(tmp_path_factory) -> str:
    """8 synthetic train images (64-128 px) + 2 test images, converted to
    COCO (6 train / 2 val) in <root>/annotations."""
    from mmseg_cells.data.hw3_coco import convert_hw3
    from mmseg_cells.data.synthetic import make_synthetic
    root = tmp_path_factory.mktemp('tiny_hw3')
    make_synthetic(str(root), num_train=8, num_test=2, seed=3, min_side=64,
                   max_side=128, max_cells=40)
    convert_hw3(root, root / 'annotations', val_ratio=0.25, seed=0,
                workers=1, progress=False)
    return str(root)


@pytest.fixture(scope='session')
def trained_tiny(tmp_path_factory, tiny_data_root):
    """Work dir of 8 epochs of the tiny config on the tiny dataset (shared;
    tests that continue training copy it first)."""
    work_dir = tmp_path_factory.mktemp('trained_tiny')
    proc = train_tiny(work_dir, tiny_data_root)
    return str(work_dir), proc


def run_tool(args, cwd=REPO, timeout=600, env=None):
    """Run a repo tool with this interpreter; returns CompletedProcess."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env.update(env or {})
    return subprocess.run([PYTHON, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def train_tiny(work_dir, data_root, *extra, timeout=600):
    """tools/train.py on the tiny config; asserts success."""
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir', str(work_dir),
        '--data-root', data_root, *extra
    ], timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def last_checkpoint(work_dir) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()

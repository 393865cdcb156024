"""Tests of the synthetic hw3 data generator and its CLI."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mmseg_cells.data.synthetic import (make_synthetic, sample_image_size,
                                        synthesize_sample)

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = REPO_ROOT / 'data_converters' / 'make_synthetic.py'
LZW = 5  # TIFF compression tag value
OUTPUTS = {'train', 'test_release', 'test_image_name_to_ids.json'}


def _files(root: Path) -> dict:
    """{relative path: bytes} of every file under ``root``."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def _read_train(root: Path) -> list:
    """[(uuid, rgba, {cls: instance map})] of every training image."""
    out = []
    for d in sorted((root / 'train').iterdir()):
        rgba = tifffile.imread(d / 'image.tif')
        masks = {
            int(p.name[5:-4]): tifffile.imread(p)
            for p in sorted(d.glob('class*.tif'))
        }
        out.append((d.name, rgba, masks))
    return out


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    """40 small training images (96-256 px) for the statistics tests."""
    root = tmp_path_factory.mktemp('synth40')
    summary = make_synthetic(root, num_train=40, num_test=0, seed=0,
                             min_side=96, max_side=256)
    return root, summary, _read_train(root)


def _check_uuid4(name: str) -> None:
    u = uuid.UUID(name)
    assert u.version == 4
    assert str(u) == name


def test_layout(tmp_path):
    summary = make_synthetic(tmp_path, num_train=6, num_test=3, seed=1,
                             min_side=64, max_side=160)
    assert set(os.listdir(tmp_path)) == OUTPUTS
    train_dirs = sorted((tmp_path / 'train').iterdir())
    assert len(train_dirs) == 6
    per_class = {f'class{c}': 0 for c in range(1, 5)}
    for d in train_dirs:
        _check_uuid4(d.name)
        names = set(os.listdir(d))
        assert 'image.tif' in names
        assert names - {'image.tif'} <= {f'class{c}.tif' for c in range(1, 5)}
        assert len(names) >= 2  # every training image has an instance
        with tifffile.TiffFile(d / 'image.tif') as tif:
            page = tif.pages[0]
            assert page.compression == LZW
            assert page.dtype == np.uint8
            assert page.photometric == tifffile.PHOTOMETRIC.RGB
            rgba = page.asarray()
        h, w = rgba.shape[:2]
        assert rgba.shape == (h, w, 4)
        assert (rgba[..., 3] == 255).all()
        assert rgba[..., :3].std() > 10  # not a blank image
        owner = np.zeros((h, w), np.int32)
        all_ids = []
        for name in sorted(names - {'image.tif'}):
            with tifffile.TiffFile(d / name) as tif:
                inst = tif.pages[0].asarray()
            assert inst.dtype == np.float64
            assert inst.shape == (h, w)
            assert (inst == np.round(inst)).all() and inst.min() == 0
            ids = np.unique(inst[inst > 0]).astype(int).tolist()
            assert ids  # files only for classes present
            per_class[name[:-4]] += len(ids)
            all_ids += ids
            owner += inst > 0
        # ids unique within the image: 1..K over all class files
        assert sorted(all_ids) == list(range(1, len(all_ids) + 1))
        assert owner.max() == 1  # a pixel belongs to one instance only
    assert summary['instances_per_class'] == per_class
    assert summary['num_train'] == 6 and summary['num_test'] == 3


def test_test_json_matches_files(tmp_path):
    make_synthetic(tmp_path, num_train=1, num_test=4, seed=2, min_side=40,
                   max_side=120)
    text = (tmp_path / 'test_image_name_to_ids.json').read_text()
    assert text.startswith('[\n    {\n        "file_name": ')  # indent=4
    entries = json.loads(text)
    assert [e['id'] for e in entries] == [1, 2, 3, 4]
    assert sorted(os.listdir(tmp_path / 'test_release')) == sorted(
        e['file_name'] for e in entries)
    for e in entries:
        assert set(e) == {'file_name', 'id', 'height', 'width'}
        assert e['file_name'].endswith('.tif')
        _check_uuid4(e['file_name'][:-4])
        with tifffile.TiffFile(tmp_path / 'test_release' /
                               e['file_name']) as tif:
            page = tif.pages[0]
            assert page.compression == LZW
            assert page.shape == (e['height'], e['width'], 4)
            assert page.dtype == np.uint8


def test_deterministic(tmp_path):
    args = dict(num_train=3, num_test=2, min_side=64, max_side=128)
    make_synthetic(tmp_path / 'a', seed=5, **args)
    make_synthetic(tmp_path / 'b', seed=5, **args)
    make_synthetic(tmp_path / 'c', seed=6, **args)
    a, b, c = (_files(tmp_path / x) for x in 'abc')
    assert len(a) >= 3 + 3 + 2 + 1
    assert a == b  # byte-identical
    names_a = {p.split('/')[1] for p in a if '/' in p}
    names_c = {p.split('/')[1] for p in c if '/' in p}
    assert not names_a & names_c  # other uuids
    img_a = sorted(v for k, v in a.items() if k.endswith('image.tif'))
    img_c = sorted(v for k, v in c.items() if k.endswith('image.tif'))
    assert not set(img_a) & set(img_c)  # other pixels


def test_prefix_independent_of_count(tmp_path):
    """Image i does not depend on how many images are requested."""
    make_synthetic(tmp_path / 'a', num_train=2, num_test=1, seed=3,
                   min_side=64, max_side=96)
    make_synthetic(tmp_path / 'b', num_train=3, num_test=2, seed=3,
                   min_side=64, max_side=96)
    a, b = _files(tmp_path / 'a'), _files(tmp_path / 'b')
    for k, v in a.items():
        if k != 'test_image_name_to_ids.json':
            assert b[k] == v
    ja = json.loads(a['test_image_name_to_ids.json'])
    jb = json.loads(b['test_image_name_to_ids.json'])
    assert jb[:1] == ja


def test_refuses_to_mix_datasets(tmp_path):
    make_synthetic(tmp_path, num_train=1, num_test=1, seed=0, min_side=48,
                   max_side=64)
    before = _files(tmp_path)
    with pytest.raises(FileExistsError):
        make_synthetic(tmp_path, num_train=1, num_test=1, seed=1)
    assert _files(tmp_path) == before


@pytest.mark.parametrize('kwargs', [
    dict(num_train=-1),
    dict(min_side=200, max_side=100),
    dict(max_cells=0),
    dict(min_side=2),
])
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic(tmp_path / 'x', **kwargs)
    assert not (tmp_path / 'x').exists()


def test_class_frequencies_and_sizes(small_set):
    _, summary, images = small_set
    counts = summary['instances_per_class']
    assert counts['class2'] > counts['class1'] > max(counts['class3'],
                                                     counts['class4']) > 0
    areas = {c: [] for c in range(1, 5)}
    for _, _, masks in images:
        for c, inst in masks.items():
            _, n = np.unique(inst[inst > 0], return_counts=True)
            areas[c] += n.tolist()
    assert {c: len(a) for c, a in areas.items()} == {
        c: counts[f'class{c}'] for c in range(1, 5)}
    med = {c: float(np.median(a)) for c, a in areas.items()}
    # real medians: 780 / 278 / 566 / 2356 px
    assert med[4] > med[1] > med[3] > med[2]
    assert 180 < med[2] < 400
    assert 500 < med[1] < 1100
    assert med[4] > 1200


def test_heavy_tailed_counts(small_set):
    _, summary, images = small_set
    n = np.array(summary['instances_per_image'])
    assert sorted(n.tolist()) == sorted(
        max(int(m.max()) for m in masks.values()) for _, _, masks in images)
    assert n.min() >= 1
    assert n.max() >= 4 * np.median(n)
    assert n.mean() > 1.2 * np.median(n)  # right-skewed
    assert (n <= 3).mean() >= 0.25  # many sparse images
    assert (n >= 20).sum() >= 2  # and some crowded ones


def test_side_limits(small_set, tmp_path):
    _, summary, images = small_set
    for _, rgba, _ in images:
        assert 96 <= min(rgba.shape[:2]) and max(rgba.shape[:2]) <= 256
    summary = make_synthetic(tmp_path, num_train=2, num_test=2, seed=0,
                             min_side=50, max_side=50)
    assert summary['image_sizes'] == [(50, 50)] * 4
    # default: the real range, log-normal around ~450 px
    rng = np.random.default_rng(0)
    sides = np.array([sample_image_size(rng) for _ in range(300)])
    assert sides.min() >= 93 and sides.max() <= 2162
    assert 300 < np.median(sides) < 700
    assert sides.max() > 1000
    # only a lower bound: at least min_side, beyond the default maximum
    sides = np.array(
        [sample_image_size(rng, min_side=2500) for _ in range(20)])
    assert (sides == 2500).all()


def test_max_cells_and_touching():
    rng = np.random.default_rng(0)
    _, masks = synthesize_sample(rng, 256, 256, max_cells=5, crowded=True)
    assert 1 <= max(int(m.max()) for m in masks.values()) <= 5
    # crowded scene: dense, and a share of the cells touch a neighbour
    rng = np.random.default_rng(1)
    rgb, masks = synthesize_sample(rng, 400, 400, crowded=True)
    assert rgb.shape == (400, 400, 3) and rgb.dtype == np.uint8
    label = np.zeros((400, 400), np.int64)
    for inst in masks.values():
        label[inst > 0] = inst[inst > 0]
    total = int(label.max())
    assert total >= 40
    touching = set()
    for a, b in ((label[1:], label[:-1]), (label[:, 1:], label[:, :-1])):
        edge = (a > 0) & (b > 0) & (a != b)
        touching |= set(a[edge].tolist()) | set(b[edge].tolist())
    assert 0.05 < len(touching) / total < 0.8


def _run_cli(*args):
    return subprocess.run([sys.executable, str(CLI), *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli(tmp_path):
    out = tmp_path / 'out'
    proc = _run_cli('--out', out, '--num-train', 2, '--num-test', 1,
                    '--seed', 4, '--min-side', 48, '--max-side', 80)
    assert proc.returncode == 0, proc.stderr
    assert 'wrote 2 train + 1 test images' in proc.stdout
    assert set(os.listdir(out)) == OUTPUTS
    first = _files(out)

    # non-empty output folder: refused, nothing touched
    proc = _run_cli('--out', out, '--num-train', 1, '--num-test', 1)
    assert proc.returncode == 1
    assert 'not empty' in proc.stderr and '--overwrite' in proc.stderr
    assert _files(out) == first
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'keep.txt').write_text('mine')
    proc = _run_cli('--out', other)
    assert proc.returncode == 1
    assert os.listdir(other) == ['keep.txt']

    # --overwrite replaces the data set and keeps unrelated files
    (out / 'notes.txt').write_text('keep')
    proc = _run_cli('--out', out, '--num-train', 1, '--num-test', 1,
                    '--seed', 4, '--min-side', 48, '--max-side', 80,
                    '--overwrite')
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(out)) == OUTPUTS | {'notes.txt'}
    assert len(os.listdir(out / 'train')) == 1
    new = _files(out)
    assert all(first[k] == v for k, v in new.items()
               if k.startswith('train/'))  # same seed: same first image

    # invalid arguments: exit 1 with a message, nothing written
    proc = _run_cli('--out', tmp_path / 'bad', '--min-side', 300,
                    '--max-side', 200)
    assert proc.returncode == 1 and 'min_side' in proc.stderr
    assert not (tmp_path / 'bad').exists()

"""Tests of the hw3 -> COCO converter (mmseg_cells.data: hw3_coco and the
modules it uses, and the data_converters/hw3_to_coco.py command line)."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import tifffile

from mmseg_cells.data import (DataFormatError, HW3DataWarning, convert_hw3,
                              format_summary, instances_from_class_maps,
                              read_test_listing, split_train_val,
                              write_image_tif, write_instance_map)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / 'shared' / 'data' / 'hw3_sample'
CLI = REPO / 'data_converters' / 'hw3_to_coco.py'
OUTPUTS = ('train.json', 'val.json', 'test.json', 'stats.json')


# ------------------------------------------------------------------ helpers
def disc(shape, cy, cx, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - cy)**2 + (xx - cx)**2 <= r * r


def make_image(root, name, shape=(24, 32), classes=None, seed=0):
    """Write ``root/train/<name>/`` with an image and class maps.

    ``classes``: {category: H x W id map}.
    """
    d = Path(root) / 'train' / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    write_image_tif(d / 'image.tif',
                    rng.integers(0, 256, shape + (3, ), dtype=np.uint8))
    for cat, ids in (classes or {}).items():
        write_instance_map(d / f'class{cat}.tif', ids)
    return d


def blobs(shape=(24, 32), ids=(1, ), r=3):
    """Id map with one disc per id, placed left to right."""
    out = np.zeros(shape, np.float64)
    for k, i in enumerate(ids):
        out[disc(shape, shape[0] // 2, 4 + 8 * k, r)] = i
    return out


def load(out_dir, name):
    with open(Path(out_dir) / name) as f:
        return json.load(f)


def decode(ann):
    seg = ann['segmentation']
    return mask_util.decode({
        'size': seg['size'],
        'counts': seg['counts'].encode()
    }).astype(bool)


def bbox_of(mask):
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()),
            int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def convert(root, out, **kw):
    kw.setdefault('workers', 0)
    kw.setdefault('progress', False)
    return convert_hw3(root, out, **kw)


# ------------------------------------------------------------- real sample
def test_real_sample_roundtrip(tmp_path):
    if not (SAMPLE / 'train' / 'sample').is_dir():
        pytest.skip(f'sample data not found at {SAMPLE}')
    root = tmp_path / 'data'
    shutil.copytree(SAMPLE / 'train' / 'sample', root / 'train' / 'sample')
    stats = convert(root, tmp_path / 'out', val_ratio=0.1)

    assert stats['num_instances'] == 161
    assert stats['instances_per_class'] == {
        'class1': 2, 'class2': 159, 'class3': 0, 'class4': 0}
    train = load(tmp_path / 'out', 'train.json')
    val = load(tmp_path / 'out', 'val.json')
    assert val['images'] == [] and val['annotations'] == []  # 1 image only
    assert train['images'] == [{
        'id': 1, 'file_name': 'train/sample/image.tif',
        'height': 397, 'width': 482}]
    assert [c['name'] for c in train['categories']] == [
        'class1', 'class2', 'class3', 'class4']
    anns = train['annotations']
    assert len(anns) == 161
    assert len({a['id'] for a in anns}) == 161

    expected = []
    for cat in (1, 2):
        ids = tifffile.imread(root / 'train' / 'sample' / f'class{cat}.tif')
        for v in np.unique(ids[ids > 0]):
            expected.append((cat, ids == v))
    assert len(expected) == 161
    # annotations are ordered by (category, id value)
    for ann, (cat, mask) in zip(anns, expected):
        assert ann['category_id'] == cat and ann['image_id'] == 1
        assert ann['iscrowd'] == 0
        assert isinstance(ann['segmentation']['counts'], str)
        assert ann['segmentation']['size'] == [397, 482]
        got = decode(ann)
        np.testing.assert_array_equal(got, mask)
        assert ann['area'] == int(mask.sum())
        assert isinstance(ann['area'], int)
        assert ann['bbox'] == bbox_of(mask)
        assert all(isinstance(v, int) for v in ann['bbox'])
    stats_json = load(tmp_path / 'out', 'stats.json')
    assert stats_json['num_instances'] == 161
    assert 'instances: 161' in format_summary(stats)


# --------------------------------------------------------------- RLE / core
def test_instances_from_class_maps():
    a = np.zeros((10, 10), np.int64)
    a[1:3, 2:5] = 7
    a[6, 6] = 2
    b = np.zeros((10, 10), np.int64)
    b[5:9, 0:2] = 7  # same id, other class
    inst = instances_from_class_maps({2: b, 1: a})
    assert [(i.category_id, i.instance_id)
            for i in inst] == [(1, 2), (1, 7), (2, 7)]
    assert inst[1].bbox == [2, 1, 3, 2] and inst[1].area == 6
    np.testing.assert_array_equal(inst[2].full_mask(), b == 7)
    # very large ids are handled (compacted internally)
    c = np.zeros((4, 4), np.int64)
    c[0, 0] = 2**40
    c[3, 3] = 5
    inst = instances_from_class_maps({3: c})
    assert [i.instance_id for i in inst] == [5, 2**40]
    assert inst[1].bbox == [0, 0, 1, 1] and inst[0].bbox == [3, 3, 1, 1]


def test_id_collision_two_instances(tmp_path):
    shape = (24, 32)
    c1 = blobs(shape, ids=(1, ))
    c2 = np.zeros(shape)
    c2[disc(shape, 12, 24, 3)] = 1  # id 1 again, in class2
    c2[disc(shape, 4, 24, 2)] = 2
    make_image(tmp_path / 'data', 'a', shape, {1: c1, 2: c2})
    stats = convert(tmp_path / 'data', tmp_path / 'out')
    anns = load(tmp_path / 'out', 'train.json')['annotations']
    assert sorted(a['category_id'] for a in anns) == [1, 2, 2]
    assert stats['num_id_collisions'] == 1
    assert stats['id_collisions'] == [{
        'file_name': 'train/a/image.tif',
        'instance_id': 1,
        'category_ids': [1, 2]
    }]
    m1 = [decode(a) for a in anns if a['category_id'] == 1][0]
    np.testing.assert_array_equal(m1, c1 == 1)


def test_disconnected_instance_reported(tmp_path):
    shape = (20, 20)
    c = np.zeros(shape)
    c[2:5, 2:5] = 3
    c[12:15, 12:15] = 3  # same id, second blob -> disconnected
    c[8, 8] = 4
    c[9, 9] = 4  # diagonal neighbours: connected with 8-connectivity
    make_image(tmp_path / 'data', 'a', shape, {2: c})
    stats = convert(tmp_path / 'data', tmp_path / 'out')
    assert stats['num_disconnected_instances'] == 1
    d = stats['disconnected_instances'][0]
    assert (d['instance_id'], d['category_id'], d['components']) == (3, 2, 2)
    anns = load(tmp_path / 'out', 'train.json')['annotations']
    big = [a for a in anns if a['area'] == 18][0]
    assert big['bbox'] == [2, 2, 13, 13]


# --------------------------------------------------------------- bad inputs
def _good_root(root, n=2):
    for i in range(n):
        make_image(root, f'img{i}', (24, 32), {2: blobs(ids=(1, 2))}, seed=i)


def _corrupt_truncate(d):
    p = d / 'image.tif'
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    return p, 'truncated|cannot read|corrupt'


def _corrupt_garbage(d):
    p = d / 'image.tif'
    p.write_bytes(b'definitely not a tiff file' * 10)
    return p, 'cannot read'


def _bad_mask(values_fn, pattern):

    def corrupt(d):
        ids = blobs(ids=(1, 2))
        ids = values_fn(ids)
        p = d / 'class1.tif'
        tifffile.imwrite(p, ids)
        return p, pattern

    return corrupt


def _set(v):

    def f(ids):
        ids[3, 3] = v
        return ids

    return f


def _no_image(d):
    (d / 'image.tif').unlink()
    return d / 'image.tif', 'missing image.tif'


BAD_CASES = {
    'truncated_tiff': _corrupt_truncate,
    'garbage_tiff': _corrupt_garbage,
    'shape_mismatch': _bad_mask(lambda ids: ids[:, :-1],
                                r'mask shape \(24, 31\) != image shape '
                                r'\(24, 32\)'),
    'nan': _bad_mask(_set(np.nan), 'NaN'),
    'inf': _bad_mask(_set(np.inf), 'inf'),
    'negative': _bad_mask(_set(-1.0), 'negative'),
    'non_integral': _bad_mask(_set(2.5), 'non-integral'),
    'no_image_tif': _no_image,
}


@pytest.mark.parametrize(
    'case,workers', [(c, 0) for c in sorted(BAD_CASES)] +
    [('truncated_tiff', 2), ('nan', 2)])  # + the process-pool path
def test_bad_input_raises_and_writes_nothing(tmp_path, case, workers):
    root = tmp_path / 'data'
    _good_root(root, 3)
    bad_file, pattern = BAD_CASES[case](root / 'train' / 'img1')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'train.json').write_text('{"earlier": "run"}')
    with pytest.raises(DataFormatError, match=pattern) as e:
        convert(root, out, workers=workers)
    assert str(e.value).startswith(f'{bad_file}: ')
    # the earlier result survives unchanged, nothing else was written
    assert (out / 'train.json').read_text() == '{"earlier": "run"}'
    assert sorted(p.name for p in out.iterdir()) == ['train.json']


def test_no_training_images(tmp_path):
    root = tmp_path / 'data'
    root.mkdir()
    with pytest.raises(DataFormatError, match='does not exist') as e:
        convert(root, tmp_path / 'out')
    assert str(e.value).startswith(str(root / 'train'))
    (root / 'train').mkdir()
    (root / 'train' / 'notes.txt').write_text('not an image folder')
    with pytest.raises(DataFormatError, match='no training images'):
        convert(root, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_bad_val_ratio(tmp_path):
    _good_root(tmp_path / 'data', 2)
    for r in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match='val_ratio'):
            convert(tmp_path / 'data', tmp_path / 'out', val_ratio=r)


def _run_cli(*args):
    return subprocess.run([sys.executable, str(CLI), *map(str, args)],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          timeout=300)


def test_cli_truncated_tiff(tmp_path):
    root = tmp_path / 'data'
    _good_root(root, 2)
    bad, _ = _corrupt_truncate(root / 'train' / 'img0')
    out = tmp_path / 'out'
    res = _run_cli('--data-root', root, '--out-dir', out, '--workers', '1')
    assert res.returncode == 1, res.stderr
    assert res.stderr.startswith(f'error: {bad}: '), res.stderr
    assert 'Traceback' not in res.stderr
    assert not (out / 'train.json').exists()
    assert not (out / 'val.json').exists()


def test_cli_success(tmp_path):
    root = tmp_path / 'data'
    _good_root(root, 3)
    out = tmp_path / 'out'
    res = _run_cli('--data-root', root, '--out-dir', out, '--val-ratio',
                   '0.4', '--seed', '3', '--workers', '2')
    assert res.returncode == 0, res.stderr
    assert 'instances: 6' in res.stdout
    train, val = load(out, 'train.json'), load(out, 'val.json')
    assert len(train['images']) + len(val['images']) == 3
    assert len(val['images']) == 1
    bad = _run_cli('--data-root', root, '--out-dir', out, '--val-ratio', '1')
    assert bad.returncode == 2 and 'val-ratio' in bad.stderr


# ----------------------------------------------------------------- warnings
def test_warnings_zero_class_and_empty_image(tmp_path):
    root = tmp_path / 'data'
    shape = (24, 32)
    make_image(root, 'a', shape, {1: np.zeros(shape), 2: blobs(ids=(5, ))})
    make_image(root, 'b', shape, {})  # no class files at all
    with pytest.warns(HW3DataWarning) as rec:
        stats = convert(root, tmp_path / 'out', val_ratio=0)
    msgs = [str(w.message) for w in rec]
    zero_file = root / 'train' / 'a' / 'class1.tif'
    assert any(m.startswith(str(zero_file)) and 'all zero' in m
               for m in msgs)
    assert any(
        m.startswith(str(root / 'train' / 'b' / 'image.tif'))
        and 'no instances' in m for m in msgs)
    assert stats['all_zero_class_files'] == [str(zero_file)]
    assert stats['images_without_instances'] == ['train/b/image.tif']
    train = load(tmp_path / 'out', 'train.json')
    assert {i['file_name'] for i in train['images']} == {
        'train/a/image.tif', 'train/b/image.tif'}
    assert len(train['annotations']) == 1


def test_no_warnings_for_clean_data(tmp_path):
    _good_root(tmp_path / 'data', 2)
    with warnings.catch_warnings():
        warnings.simplefilter('error', HW3DataWarning)
        convert(tmp_path / 'data', tmp_path / 'out')


# -------------------------------------------------------------------- split
def _split_root(root, names, class4=()):
    shape = (16, 16)
    for n in names:
        classes = {2: blobs(shape, ids=(1, ), r=2)}
        if n in class4:
            c4 = np.zeros(shape)
            c4[1:4, 10:14] = 9
            classes[4] = c4
        make_image(root, n, shape, classes)


def _split(out):
    return ([i['file_name'] for i in load(out, 'train.json')['images']],
            [i['file_name'] for i in load(out, 'val.json')['images']])


def test_split_deterministic_independent_of_creation_order(tmp_path):
    names = [f'{k:02d}-{h}' for k, h in enumerate('qwertyuiopasdf')]
    _split_root(tmp_path / 'r1', names)
    _split_root(tmp_path / 'r2', list(reversed(names)))
    convert(tmp_path / 'r1', tmp_path / 'o1', val_ratio=0.3, seed=5)
    convert(tmp_path / 'r2', tmp_path / 'o2', val_ratio=0.3, seed=5)
    s1, s2 = _split(tmp_path / 'o1'), _split(tmp_path / 'o2')
    assert s1 == s2
    assert len(s1[1]) == 4 and set(s1[0]).isdisjoint(s1[1])
    # image ids follow sorted names, regardless of the split
    imgs = sorted(
        load(tmp_path / 'o1', 'train.json')['images'] +
        load(tmp_path / 'o1', 'val.json')['images'],
        key=lambda i: i['id'])
    assert [i['file_name'] for i in imgs] == [
        f'train/{n}/image.tif' for n in sorted(names)]
    assert [i['id'] for i in imgs] == list(range(1, len(names) + 1))
    # different seeds give (at least sometimes) different splits
    classes = {n: {2} for n in names}
    splits = {tuple(split_train_val(classes, 0.3, seed)[1])
              for seed in range(8)}
    assert len(splits) > 1
    assert [s.split('/')[1] for s in s1[1]] == split_train_val(
        classes, 0.3, 5)[1]


def test_split_stratified_rare_class(tmp_path):
    names = [f'img{k:02d}' for k in range(20)]
    class4 = set(names[::2])
    _split_root(tmp_path / 'data', names, class4)
    for seed in range(3):
        stats = convert(
            tmp_path / 'data', tmp_path / 'out', val_ratio=0.2, seed=seed)
        train, val = _split(tmp_path / 'out')
        val_names = [f.split('/')[1] for f in val]
        assert len(val_names) == 4
        assert len(class4.intersection(val_names)) == 2
        assert stats['val_images_per_class']['class4'] == 2
        assert stats['train_images_per_class']['class4'] == 8
    # annotation ids unique across train and val
    ids = [a['id'] for a in load(tmp_path / 'out', 'train.json')
           ['annotations'] + load(tmp_path / 'out', 'val.json')
           ['annotations']]
    assert len(ids) == len(set(ids)) == 30


def test_split_val_ratio_zero(tmp_path):
    names = [f'n{k}' for k in range(5)]
    _split_root(tmp_path / 'data', names, class4={'n1'})
    stats = convert(tmp_path / 'data', tmp_path / 'out', val_ratio=0)
    train, val = _split(tmp_path / 'out')
    assert len(train) == 5 and val == []
    val_json = load(tmp_path / 'out', 'val.json')
    assert val_json['annotations'] == [] and len(val_json['categories']) == 4
    assert stats['num_val_images'] == 0


def test_split_small_ratio_still_gives_one_val_image():
    classes = {'a': {2}, 'b': {2}, 'c': {1}}
    train, val = split_train_val(classes, 0.05, seed=0)
    assert len(val) == 1 and len(train) == 2
    train, val = split_train_val({'a': {4}, 'b': {3}}, 0.9, seed=0)
    assert len(val) == 1 and len(train) == 1


# --------------------------------------------------------------------- test
def _test_release(root, entries, sizes):
    (root / 'test_release').mkdir(parents=True)
    for e, (h, w) in zip(entries, sizes):
        write_image_tif(root / 'test_release' / e['file_name'],
                        np.zeros((h, w, 3), np.uint8))
    (root / 'test_image_name_to_ids.json').write_text(json.dumps(entries))


def test_test_json_ids_preserved(tmp_path):
    root = tmp_path / 'data'
    _good_root(root, 2)
    entries = [{'file_name': 'zz.tif', 'id': 17, 'height': 10, 'width': 12},
               {'file_name': 'aa.tif', 'id': 3, 'height': 8, 'width': 5}]
    _test_release(root, entries, [(10, 12), (8, 5)])
    stats = convert(root, tmp_path / 'out')
    test = load(tmp_path / 'out', 'test.json')
    assert test['images'] == [
        {'id': 17, 'file_name': 'test_release/zz.tif', 'height': 10,
         'width': 12},
        {'id': 3, 'file_name': 'test_release/aa.tif', 'height': 8,
         'width': 5}]
    assert test['annotations'] == [] and len(test['categories']) == 4
    assert stats['num_test_images'] == 2


def test_test_json_size_mismatch_and_missing(tmp_path):
    root = tmp_path / 'data'
    _good_root(root, 2)
    entries = [{'file_name': 'x.tif', 'id': 1, 'height': 10, 'width': 12}]
    _test_release(root, entries, [(10, 13)])
    out = tmp_path / 'out'
    with pytest.raises(DataFormatError, match='image size') as e:
        convert(root, out)
    assert str(e.value).startswith(str(root / 'test_release' / 'x.tif'))
    assert not out.exists()
    (root / 'test_release' / 'x.tif').unlink()
    with pytest.raises(DataFormatError, match='does not exist'):
        convert(root, out)


def test_incomplete_test_part_warns_and_skips_test_json(tmp_path):
    """The real shared sample has the listing but no test_release/."""
    root = tmp_path / 'data'
    _good_root(root, 2)
    (root / 'test_image_name_to_ids.json').write_text(json.dumps(
        [{'file_name': 'x.tif', 'id': 1, 'height': 10, 'width': 12}]))
    with pytest.warns(HW3DataWarning, match='test part is incomplete'):
        stats = convert(root, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'test.json').exists()
    assert (tmp_path / 'out' / 'train.json').exists()
    assert not stats['num_test_images']


def test_read_test_listing(tmp_path):
    entries = [{'file_name': 'b.tif', 'id': 4, 'height': 6, 'width': 7,
                'extra': 'dropped'},
               {'file_name': 'a.tif', 'id': 2, 'height': 5, 'width': 3}]
    _test_release(tmp_path, entries, [(6, 7), (5, 3)])
    expected = [{'file_name': 'b.tif', 'id': 4, 'height': 6, 'width': 7},
                {'file_name': 'a.tif', 'id': 2, 'height': 5, 'width': 3}]
    assert read_test_listing(tmp_path) == expected
    (tmp_path / 'test_release' / 'a.tif').unlink()
    with pytest.raises(DataFormatError, match='does not exist') as e:
        read_test_listing(tmp_path)
    assert str(e.value).startswith(str(tmp_path / 'test_release' / 'a.tif'))
    assert read_test_listing(tmp_path, check_images=False) == expected


@pytest.mark.parametrize('content,pattern', [
    (None, 'file does not exist'),
    ('{not json', 'cannot read JSON'),
    ('{}', 'expected a JSON list'),
    ('[{"file_name": "a.tif", "id": 1}]', 'entry 0 must have'),
    ('[{"file_name": "", "id": 1, "height": 2, "width": 2}]',
     'bad file_name'),
    ('[{"file_name": "a.tif", "id": true, "height": 2, "width": 2}]',
     'bad id'),
    ('[{"file_name": "a.tif", "id": 1, "height": 0, "width": 2}]',
     'bad height'),
    ('[{"file_name": "a.tif", "id": 1, "height": 2, "width": 2},'
     ' {"file_name": "b.tif", "id": 1, "height": 2, "width": 2}]',
     'duplicate image id 1'),
])
def test_read_test_listing_invalid(tmp_path, content, pattern):
    listing = tmp_path / 'test_image_name_to_ids.json'
    if content is not None:
        listing.write_text(content)
    with pytest.raises(DataFormatError, match=pattern) as e:
        read_test_listing(tmp_path, check_images=False)
    assert str(e.value).startswith(f'{listing}: ')


def test_read_test_listing_empty(tmp_path):
    (tmp_path / 'test_image_name_to_ids.json').write_text('[]')
    assert read_test_listing(tmp_path) == []


# ------------------------------------------------------------ parallel path
def test_process_pool_matches_in_process(tmp_path):
    root = tmp_path / 'data'
    for k in range(5):
        make_image(root, f'p{k}', (24, 48), {
            1: blobs((24, 48), ids=(3, )),
            2: blobs((24, 48), ids=tuple(range(1, k + 2)), r=2)
        }, seed=k)
    s0 = convert(root, tmp_path / 'o0', val_ratio=0.2, workers=0)
    s2 = convert(root, tmp_path / 'o2', val_ratio=0.2, workers=2)
    for name in ('train.json', 'val.json'):
        assert load(tmp_path / 'o0', name) == load(tmp_path / 'o2', name)
    s0.pop('out_dir'), s2.pop('out_dir')
    assert s0 == s2
    assert s0['num_instances'] == 5 + 15

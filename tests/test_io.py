"""Tests of mmseg_cells.data.io (image / instance-map readers and writers)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from mmseg_cells.data.io import (CLASS_NAMES, DataFormatError,
                                 find_class_files, read_image,
                                 read_image_size, read_instance_map,
                                 write_image_tif, write_instance_map)

SAMPLE = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / \
    'hw3_sample'


def _rgb(h=7, w=9, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------- read_image
def test_read_image_rgb_tif(tmp_path):
    rgb = _rgb()
    p = tmp_path / 'a.tif'
    tifffile.imwrite(p, rgb, photometric='rgb')
    out = read_image(p)
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_read_image_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([_rgb(), np.full((7, 9, 1), 17, np.uint8)], 2)
    p = tmp_path / 'a.tif'
    tifffile.imwrite(
        p, rgba, photometric='rgb', extrasamples=['unassalpha'],
        compression='lzw')
    out = read_image(p)
    assert out.shape == (7, 9, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgba[..., :3])


@pytest.mark.parametrize('shape', [(6, 5), (6, 5, 1)])
def test_read_image_gray_replicated(tmp_path, shape):
    gray = np.arange(30, dtype=np.uint8).reshape(shape) * 7
    p = tmp_path / 'g.png'
    assert cv2.imwrite(str(p), gray)
    out = read_image(p)
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray.reshape(6, 5))


def test_read_image_gray_alpha(tmp_path):
    ga = np.stack([np.arange(20, dtype=np.uint8).reshape(4, 5) * 3,
                   np.full((4, 5), 200, np.uint8)], axis=-1)
    p = tmp_path / 'ga.tif'
    tifffile.imwrite(p, ga, photometric='minisblack', planarconfig='contig',
                     extrasamples=['unassalpha'])
    out = read_image(p)
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], ga[..., 0])


def test_read_image_png_is_rgb_not_bgr(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    p = tmp_path / 'red.png'
    assert cv2.imwrite(str(p), rgb[..., ::-1])  # cv2 writes BGR
    out = read_image(p)
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_read_image_uint16_full_range(tmp_path):
    img = np.array([[0, 128, 129, 257], [32767, 32896, 65534, 65535]],
                   dtype=np.uint16)
    p = tmp_path / 'g16.tif'
    tifffile.imwrite(p, img)
    out = read_image(p)[..., 0]
    np.testing.assert_array_equal(
        out, [[0, 0, 1, 1], [127, 128, 255, 255]])


def test_read_image_float(tmp_path):
    img = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    p = tmp_path / 'f.tif'
    tifffile.imwrite(p, img)
    np.testing.assert_array_equal(read_image(p)[..., 0], [[0, 128, 255]])
    tifffile.imwrite(p, img * 2)
    with pytest.raises(DataFormatError, match=r'\[0, 1\]'):
        read_image(p)


def test_read_image_rejects_other_dtypes_and_shapes(tmp_path):
    p = tmp_path / 'i16.tif'
    tifffile.imwrite(p, np.zeros((3, 3), np.int16))
    with pytest.raises(DataFormatError) as e:
        read_image(p)
    assert str(e.value).startswith(str(p) + ':') and 'int16' in str(e.value)
    p5 = tmp_path / 'five.tif'
    tifffile.imwrite(p5, np.zeros((3, 3, 5), np.uint8),
                     photometric='minisblack', planarconfig='contig')
    with pytest.raises(DataFormatError, match='unsupported image shape'):
        read_image(p5)


@pytest.mark.parametrize('content', [b'', b'this is not an image' * 20])
@pytest.mark.parametrize('suffix', ['.tif', '.png'])
def test_read_image_garbage(tmp_path, content, suffix):
    p = tmp_path / f'bad{suffix}'
    p.write_bytes(content)
    with pytest.raises(DataFormatError) as e:
        read_image(p)
    assert str(e.value).startswith(str(p) + ': ')


def test_read_image_missing(tmp_path):
    with pytest.raises(DataFormatError, match='does not exist'):
        read_image(tmp_path / 'nope.tif')


def test_read_image_truncated_tif(tmp_path):
    p = tmp_path / 'img.tif'
    write_image_tif(p, _rgb(64, 64))
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFormatError) as e:
        read_image(p)
    assert str(e.value).startswith(str(p) + ': ')


def test_read_image_size(tmp_path):
    p = tmp_path / 'a.tif'
    write_image_tif(p, _rgb(11, 13))
    assert read_image_size(p) == (11, 13)
    q = tmp_path / 'a.png'
    cv2.imwrite(str(q), _rgb(5, 8))
    assert read_image_size(q) == (5, 8)
    with pytest.raises(DataFormatError):
        read_image_size(tmp_path / 'missing.tif')


# ------------------------------------------------------------------ writers
def test_write_image_tif_hw3_format(tmp_path):
    rgb = _rgb(20, 30)
    p = tmp_path / 'sub' / 'image.tif'
    write_image_tif(p, rgb)
    with tifffile.TiffFile(p) as tif:
        page = tif.pages[0]
        assert page.shape == (20, 30, 4) and page.dtype == np.uint8
        assert page.compression == tifffile.COMPRESSION.LZW
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        assert len(page.extrasamples) == 1
        raw = page.asarray()
    assert (raw[..., 3] == 255).all()
    np.testing.assert_array_equal(raw[..., :3], rgb)
    np.testing.assert_array_equal(read_image(p), rgb)
    assert [x.name for x in p.parent.iterdir()] == ['image.tif']  # no temp


def test_write_instance_map_roundtrip(tmp_path):
    ids = np.zeros((9, 7), np.int32)
    ids[1:3, 1:4] = 5
    ids[6:, 5:] = 123456
    p = tmp_path / 'class2.tif'
    write_instance_map(p, ids)
    with tifffile.TiffFile(p) as tif:
        assert tif.pages[0].dtype == np.float64
        assert tif.pages[0].compression == tifffile.COMPRESSION.NONE
    out = read_instance_map(p, expected_shape=(9, 7))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, ids)


def test_writers_use_the_released_layout(tmp_path):
    """4-row LZW strips for images, 2-row strips for id maps, no tifffile
    description or software tag: the bytes depend on the pixels only."""
    rgb = _rgb(9, 11)
    a, b = tmp_path / 'a.tif', tmp_path / 'b.tif'
    write_image_tif(a, rgb)
    write_image_tif(b, rgb)
    assert a.read_bytes() == b.read_bytes()
    m = tmp_path / 'class1.tif'
    write_instance_map(m, np.arange(99).reshape(9, 11))
    for path, rows in ((a, 4), (m, 2)):
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            assert page.rowsperstrip == rows
            assert page.description == '' and page.software == ''


# -------------------------------------------------------- read_instance_map
@pytest.mark.parametrize(
    'dtype', [np.uint8, np.uint16, np.int32, np.uint32, np.int64, np.float32,
              np.float64])
def test_read_instance_map_dtypes(tmp_path, dtype):
    ids = np.array([[0, 1, 2], [200, 0, 7]]).astype(dtype)
    p = tmp_path / 'm.tif'
    tifffile.imwrite(p, ids)
    out = read_instance_map(p)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 1, 2], [200, 0, 7]])


def test_read_instance_map_bool_and_squeeze(tmp_path):
    p = tmp_path / 'b.tif'
    tifffile.imwrite(p, np.array([[True, False], [False, True]]))
    np.testing.assert_array_equal(read_instance_map(p), [[1, 0], [0, 1]])
    q = tmp_path / 'hw1.png'
    assert cv2.imwrite(str(q), np.array([[3, 0], [0, 4]], np.uint8))
    np.testing.assert_array_equal(read_instance_map(q), [[3, 0], [0, 4]])


@pytest.mark.parametrize('value,pattern', [
    (np.nan, 'NaN'),
    (np.inf, 'inf'),
    (-np.inf, 'inf'),
    (-2.0, 'negative'),
    (1.5, 'non-integral'),
])
def test_read_instance_map_bad_values(tmp_path, value, pattern):
    ids = np.zeros((4, 5), np.float64)
    ids[0, 0] = 3
    ids[2, 3] = value
    p = tmp_path / 'class1.tif'
    tifffile.imwrite(p, ids)
    with pytest.raises(DataFormatError, match=pattern) as e:
        read_instance_map(p)
    assert str(e.value).startswith(str(p) + ': ')


def test_read_instance_map_negative_int(tmp_path):
    p = tmp_path / 'm.tif'
    tifffile.imwrite(p, np.array([[0, -1]], np.int16))
    with pytest.raises(DataFormatError, match='negative'):
        read_instance_map(p)


def test_read_instance_map_shape_errors(tmp_path):
    p = tmp_path / 'class2.tif'
    tifffile.imwrite(p, np.zeros((10, 12)))
    with pytest.raises(DataFormatError) as e:
        read_instance_map(p, expected_shape=(10, 13))
    assert str(e.value) == (f'{p}: mask shape (10, 12) != image shape '
                            '(10, 13)')
    q = tmp_path / 'rgb.tif'
    tifffile.imwrite(q, np.zeros((4, 4, 3), np.uint8), photometric='rgb')
    with pytest.raises(DataFormatError, match='2-D'):
        read_instance_map(q)


def test_find_class_files(tmp_path):
    for name in ('class1.tif', 'class3.tif', 'class5.tif', 'image.tif'):
        (tmp_path / name).write_bytes(b'x')
    assert CLASS_NAMES == ('class1', 'class2', 'class3', 'class4')
    assert find_class_files(tmp_path) == {
        1: tmp_path / 'class1.tif',
        3: tmp_path / 'class3.tif'
    }


# -------------------------------------------------------------- real sample
def test_real_sample():
    if not SAMPLE.is_dir():
        pytest.skip(f'sample data not found at {SAMPLE}')
    d = SAMPLE / 'train' / 'sample'
    img = read_image(d / 'image.tif')
    assert img.shape == (397, 482, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img,
                                  tifffile.imread(d / 'image.tif')[..., :3])
    assert read_image_size(d / 'image.tif') == (397, 482)
    ids = read_instance_map(d / 'class2.tif', expected_shape=(397, 482))
    assert len(np.unique(ids[ids > 0])) == 159

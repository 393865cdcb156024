"""Whole-slide prediction: the tifffile slide reader, tissue detection, the
synthetic slide generator, tile-by-tile prediction (same cells as the
in-memory tiled path), the streamed COCO / QuPath GeoJSON / overlay outputs
and ``tools/predict.py --slides`` with its bad-input handling."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import tifffile
import torch
from mmengine.config import Config

from conftest import TINY_CONFIG, run_tool
from mmseg_cells.apis import (CocoResultsWriter, Detections, GeoJSONWriter,
                              coco_results, predict_slide, slide_windows)
from mmseg_cells.apis.slide import tissue_tiles
from mmseg_cells.data import SlideError, open_slide
from mmseg_cells.data.slide import read_thumbnail
from mmseg_cells.data.io import write_image_tif
from mmseg_cells.data.synthetic.slide import tissue_at, write_synthetic_slide
from mmseg_cells.data.tissue import tissue_mask, window_has_tissue

H, W = 1400, 1150  # level 0; 256 px TIFF tiles


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('slide') / 'slide.tif')
    info = write_synthetic_slide(path, H, W, seed=3, tile=256)
    return path, info


@pytest.fixture(scope='module')
def predictor():
    """The tiny config, random init, every box kept (no training)."""
    from mmseg_cells.apis import CellPredictor
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(0)
    p = CellPredictor(cfg, None, device='cpu', tile_size=512,
                      tile_overlap=96, tile_above=400)
    p.max_per_img = 10**6  # no cap on the merged image
    return p


def corrupt_tile(src: str, dst: str, index: int) -> None:
    """Copy a slide, overwriting level-0 tile ``index`` with garbage."""
    with tifffile.TiffFile(src) as t:
        page = t.pages.first
        off, n = int(page.dataoffsets[index]), int(page.databytecounts[index])
    data = bytearray(open(src, 'rb').read())
    data[off:off + n] = bytes(range(256)) * (n // 256) + b'\0' * (n % 256)
    with open(dst, 'wb') as f:
        f.write(bytes(data))


def tissue_tile_index(info) -> int:
    """A level-0 TIFF tile (256 px) mostly covered by tissue."""
    across = -(-W // 256)
    for i in range(across * -(-H // 256)):
        y, x = (i // across) * 256, (i % across) * 256
        if tissue_at(info['field'], info['threshold'], info['block'], y, x,
                     256, 256).mean() > 0.9:
            return i
    raise AssertionError('no tissue tile')


# ------------------------------------------------------------------ reader
def test_regions_equal_the_full_level(slide):
    path, _ = slide
    full = tifffile.imread(path)
    with open_slide(path) as r:
        assert r.dimensions == (W, H)
        assert r.level_dimensions == [(W, H), (W // 8, H // 8),
                                      (W // 32, H // 32)]
        assert r.level_downsamples[1] == pytest.approx(8, rel=0.01)
        for x, y, w, h in [(0, 0, 100, 90), (200, 230, 300, 400),
                           (W - 50, H - 70, 120, 100), (-20, -10, 60, 50)]:
            expected = np.full((h, w, 3), 255, np.uint8)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, W), min(y + h, H)
            expected[y0 - y:y1 - y, x0 - x:x1 - x] = full[y0:y1, x0:x1]
            np.testing.assert_array_equal(r.read_region(x, y, w, h),
                                          expected)
        low = tifffile.TiffFile(path).pages.first.pages[1].asarray()
        np.testing.assert_array_equal(r.read_level(2), low)


def test_a_region_decodes_only_the_tiles_it_overlaps(slide, monkeypatch):
    path, _ = slide
    with open_slide(path) as r:
        seen = []
        seg = r._segment
        monkeypatch.setattr(r, '_segment',
                            lambda lvl, i: seen.append(i) or seg(lvl, i))
        r.read_region(10, 10, 100, 100)  # inside tile 0
        assert seen == [0]
        seen.clear()
        r.read_region(200, 200, 100, 100)  # the corner of 4 tiles
        across = -(-W // 256)
        assert sorted(seen) == [0, 1, across, across + 1]


def test_a_flat_rgba_tiff_is_a_one_level_slide(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (70, 90, 3), np.uint8)
    write_image_tif(tmp_path / 'image.tif', rgb)  # RGBA, LZW, strips
    with open_slide(tmp_path / 'image.tif') as r:
        assert r.level_dimensions == [(90, 70)]
        np.testing.assert_array_equal(r.read_region(0, 0, 90, 70), rgb)
        np.testing.assert_array_equal(r.read_region(30, 20, 50, 40),
                                      rgb[20:60, 30:80])


def test_bad_slides_name_the_file_and_the_tile(slide, tmp_path):
    path, _ = slide
    with pytest.raises(SlideError, match='missing.tif: not found'):
        open_slide(tmp_path / 'missing.tif')
    (tmp_path / 'junk.tif').write_bytes(b'not a tiff at all' * 10)
    with pytest.raises(SlideError, match='junk.tif: not a readable TIFF'):
        open_slide(tmp_path / 'junk.tif')
    tifffile.imwrite(tmp_path / 'u16.tif', np.zeros((8, 8, 3), np.uint16),
                     photometric='rgb')
    with pytest.raises(SlideError, match='u16.tif: level 0: samples are '
                       'uint16'):
        open_slide(tmp_path / 'u16.tif')
    # truncated: the slide's last bytes are gone
    data = open(path, 'rb').read()
    with tifffile.TiffFile(path) as t:
        first = t.pages.first
        last_tile = int(np.argmax(first.dataoffsets))
        end = int(first.dataoffsets[last_tile] +
                  first.databytecounts[last_tile])
    (tmp_path / 'cut.tif').write_bytes(data[:end - 10])
    with pytest.raises(SlideError,
                       match=rf'cut.tif: level 0 tile {last_tile}: '
                       'truncated'):
        open_slide(tmp_path / 'cut.tif').read_region(0, 0, W, H)
    corrupt_tile(path, str(tmp_path / 'bad.tif'), 2)
    with open_slide(tmp_path / 'bad.tif') as r:
        r.read_region(0, 0, 256, 256)  # other tiles still read
        with pytest.raises(SlideError, match='bad.tif: level 0 tile 2: '
                           'cannot decode'):
            r.read_region(512, 0, 256, 256)
        # the thumbnail gives way to the next level (8x smaller)
        assert read_thumbnail(r, 2048)[1] == pytest.approx(8, rel=0.02)
        assert read_thumbnail(open_slide(path), 2048)[1] == 1


def test_openslide_formats_need_the_slides_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'openslide', None)  # not installed
    (tmp_path / 'a.ndpi').write_bytes(b'x')
    with pytest.raises(SlideError, match=r'a.ndpi: .*pip install -e '
                       r'\.\[slides\]'):
        open_slide(tmp_path / 'a.ndpi')


def test_thumbnail_of_a_slide_without_a_small_level_is_read_in_bands(
        tmp_path, monkeypatch):
    """A slide with no level of at most ``max_side`` px (here one level,
    900 x 700 for 200 px) is reduced band by band: bounded reads, and the
    same view as reducing the whole level at once."""
    import cv2
    from mmseg_cells.data import slide as slide_module
    rgb = np.random.default_rng(1).integers(0, 255, (700, 900, 3), np.uint8)
    write_image_tif(tmp_path / 'flat.tif', rgb)
    # 7 view rows (35 level rows) per band
    monkeypatch.setattr(slide_module, 'THUMBNAIL_BAND_BYTES', 900 * 3 * 35)
    heights = []
    with open_slide(tmp_path / 'flat.tif') as r:
        read = r.read_region

        def spy(x, y, w, h, level=0):
            heights.append(h)
            return read(x, y, w, h, level)
        r.read_region = spy
        view, downsample = read_thumbnail(r, 200)
    assert view.shape == (140, 180, 3) and downsample == 5
    assert heights == [35] * 20
    np.testing.assert_array_equal(
        view, cv2.resize(rgb, (180, 140), interpolation=cv2.INTER_AREA))


def test_openslide_reader_gives_the_tifffile_readers_cells(slide, predictor):
    """openslide-python (``[slides]`` extra) reads the synthetic slide as
    a generic tiled TIFF: the same pixels as the tifffile reader, the
    same tissue tiles, the same cells."""
    pytest.importorskip('openslide')
    from mmseg_cells.apis.slide import slide_tiles
    from mmseg_cells.data.slide import OpenSlideReader, TiffSlideReader
    path, _ = slide
    with OpenSlideReader(path) as o, TiffSlideReader(path) as t:
        assert o.dimensions == t.dimensions == (W, H)
        for x, y, w, h in [(0, 0, 100, 90), (200, 230, 300, 400),
                           (W - 50, H - 70, 120, 100), (-20, -10, 60, 50)]:
            np.testing.assert_array_equal(o.read_region(x, y, w, h),
                                          t.read_region(x, y, w, h))
        tiles = slide_tiles(o, 512, 96)
        assert tiles == slide_tiles(t, 512, 96) and len(tiles) > 1
        got = [d for _, d in predict_slide(predictor, o, tiles=tiles,
                                           tile_size=512, overlap=96)]
        ref = [d for _, d in predict_slide(predictor, t, tiles=tiles,
                                           tile_size=512, overlap=96)]
    for a, b in zip(got, ref):
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.bboxes, b.bboxes)
        np.testing.assert_array_equal(a.mask_probs, b.mask_probs)
    assert sum(map(len, got)) > 50


# ------------------------------------------------------------------ tissue
def test_tissue_mask_finds_the_generated_tissue(slide):
    path, info = slide
    with open_slide(path) as r:
        low = r.read_level(1)
    found = tissue_mask(low)
    lh, lw = found.shape
    truth = tissue_at(info['field'], info['threshold'], info['block'], 0, 0,
                      H, W)[4::8, 4::8][:lh, :lw]
    iou = (found & truth).sum() / (found | truth).sum()
    assert 0.2 < truth.mean() < 0.8 and iou > 0.9
    assert not tissue_mask(np.full((50, 60, 3), 242, np.uint8)).any()
    assert window_has_tissue(found, 8, (0, W, 0, H))
    empty = np.zeros_like(found)
    assert not window_has_tissue(empty, 8, (0, W, 0, H))


def test_tissue_tiles_skip_glass_only(slide):
    path, info = slide
    tiles = slide_windows(W, H, 512, 96)
    with open_slide(path) as r:
        kept = tissue_tiles(r, tiles)
    assert 0 < len(kept) < len(tiles)
    for t in tiles:
        here = tissue_at(info['field'], info['threshold'], info['block'],
                         t.y0, t.x0, t.y1 - t.y0, t.x1 - t.x0)
        if here.mean() > 0.01:
            assert t in kept  # no tissue tile lost


# -------------------------------------------------------------- prediction
def test_slide_tiles_give_the_in_memory_tiled_result(slide, predictor):
    """Predicting the slide tile by tile from disk finds the same cells,
    with the same boxes, scores and masks, as predicting the whole image
    in memory with the same tile grid."""
    path, _ = slide
    with open_slide(path) as r:
        parts = [d for _, d in predict_slide(predictor, r, 512, 96,
                                             tissue=False)]
    streamed = Detections.concat(parts, H, W)
    whole = predictor.predict(tifffile.imread(path))
    assert len(streamed) == len(whole) > 100
    a = np.lexsort(streamed.bboxes.T[::-1])
    b = np.lexsort(whole.bboxes.T[::-1])
    np.testing.assert_array_equal(streamed.bboxes[a], whole.bboxes[b])
    np.testing.assert_array_equal(streamed.scores[a], whole.scores[b])
    np.testing.assert_array_equal(streamed.mask_probs[a],
                                  whole.mask_probs[b])


def test_unreadable_tile_is_reported_and_others_predicted(slide, predictor,
                                                          tmp_path):
    path, _ = slide
    bad = str(tmp_path / 'bad.tif')
    corrupt_tile(path, bad, 0)
    with open_slide(bad) as r:
        out = list(predict_slide(predictor, r, 512, 96, tissue=False))
    errors = [(t, e) for t, e in out if isinstance(e, Exception)]
    assert len(errors) == 1 and errors[0][0].index == 0
    assert 'bad.tif: level 0 tile 0' in str(errors[0][1])
    assert len(out) == len(slide_windows(W, H, 512, 96))


# ----------------------------------------------------------------- writers
def test_geojson_is_valid_qupath_detections(predictor, tmp_path):
    from shapely.geometry import shape
    rgb = np.full((200, 240, 3), (230, 200, 220), np.uint8)
    dets = predictor.predict(rgb)
    assert len(dets) > 10
    out = str(tmp_path / 'cells.geojson')
    with GeoJSONWriter(out, ['a', 'b', 'c', 'd'],
                       [(1, 2, 3), (4, 5, 6), (7, 8, 9), (9, 9, 9)]) as gj:
        n = gj.add(dets, 0.5)
    doc = json.load(open(out))
    assert doc['type'] == 'FeatureCollection'
    assert len(doc['features']) == n == len(coco_results(dets, 1))
    for f in doc['features']:
        geom = shape(f['geometry'])
        assert geom.geom_type == 'Polygon' and geom.is_valid
        assert geom.area > 0
        x0, y0, x1, y1 = geom.bounds
        assert 0 <= x0 and 0 <= y0 and x1 <= 240 and y1 <= 200
        props = f['properties']
        assert props['objectType'] == 'detection'
        assert props['classification']['name'] in 'abcd'
        assert 0 <= props['measurements']['score'] <= 1


def test_writers_stream_and_leave_no_partial_file(predictor, tmp_path):
    rgb = np.full((150, 160, 3), (230, 200, 220), np.uint8)
    dets = predictor.predict(rgb)
    out = str(tmp_path / 'r.json')
    with CocoResultsWriter(out) as w:
        w.add(dets.select(slice(0, 5)), 7)
        w.add(dets.select(slice(5, None)), 7)
    assert json.load(open(out)) == json.loads(json.dumps(
        coco_results(dets, 7)))
    before = open(out).read()
    with pytest.raises(RuntimeError, match='boom'):
        with CocoResultsWriter(out) as w:
            w.add(dets, 8)
            raise RuntimeError('boom')
    assert open(out).read() == before  # the earlier result is kept
    assert os.listdir(tmp_path) == ['r.json']  # no temporary file left


def test_slide_overlay_draws_only_cells_above_its_score_threshold(slide):
    from mmseg_cells.apis import SlideOverlayWriter
    path, _ = slide
    ring = [[300.0, 300.0], [420.0, 300.0], [420.0, 420.0], [300.0, 420.0]]
    with open_slide(path) as r:
        w = SlideOverlayWriter(str(path) + '.png', r, [(255, 0, 0)],
                               score_thr=0.3)
        before = w.view.copy()
        w.draw_outline((0, 0.29999, [300.0, 300.0, 420.0, 420.0], ring))
        np.testing.assert_array_equal(w.view, before)  # below: not drawn
        w.draw_outline((0, 0.3, [300.0, 300.0, 420.0, 420.0], ring))
        assert (w.view != before).any()


# --------------------------------------------------------------------- CLI
def test_predict_slides_cli(slide, trained_tiny, tmp_path):
    from shapely.geometry import shape
    path, info = slide
    ckpt = osp.join(trained_tiny[0], 'epoch_8.pth')
    bad = str(tmp_path / 'bad.tif')
    broken = tissue_tile_index(info)
    corrupt_tile(path, bad, broken)
    out = tmp_path / 'out'
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, ckpt, '--slides', path, bad,
        str(tmp_path / 'missing.tif'), '--out-dir', str(out), '--format',
        'coco', 'geojson', 'overlays', '--tile-size', '512',
        '--tile-overlap', '96', '--score-thr', '0.0', '--no-tta'
    ])
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'missing.tif: not found' in proc.stderr
    assert f'bad.tif: level 0 tile {broken}:' in proc.stderr
    for stem in ('slide', 'bad'):  # the damaged slide's other tiles kept
        doc = json.load(open(out / f'{stem}.geojson'))
        coco = json.load(open(out / f'{stem}.coco.json'))
        assert len(doc['features']) == len(coco) > 0
        assert all(shape(f['geometry']).is_valid for f in doc['features'])
        assert (out / f'{stem}.overlay.png').stat().st_size > 1000
    assert not (out / 'missing.geojson').exists()
    wrong = run_tool([
        'tools/predict.py', TINY_CONFIG, ckpt, '--slides', path,
        '--out-dir', str(out), '--format', 'labelmaps'
    ])
    assert wrong.returncode == 2 and 'labelmaps are not written' in \
        wrong.stderr


def test_slide_without_tissue_warns_and_writes_empty_outputs(predictor,
                                                             tmp_path):
    from mmseg_cells.apis import predict_slide_to_files
    glass = np.full((700, 600, 3), 242, np.uint8)
    path = str(tmp_path / 'glass.tif')
    tifffile.imwrite(path, glass, tile=(256, 256), photometric='rgb')
    with pytest.warns(UserWarning, match='glass.tif: no tissue found'):
        out = predict_slide_to_files(predictor, path, str(tmp_path / 'o'),
                                     ('coco', 'geojson'), 512, 96)
    assert out == dict(tiles=0, cells=0, errors=[])
    assert json.load(open(tmp_path / 'o' / 'glass.coco.json')) == []
    assert json.load(open(tmp_path / 'o' / 'glass.geojson'))['features'] \
        == []

"""tools/demo.sh (``make demo``) on a data set of its own (``DATA=...``)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mmengine.config import Config

from conftest import REPO, TINY_CONFIG


def test_demo_on_data_without_test_set_fits_caps_and_predicts_val(
        tiny_data_root, tmp_path):
    """A data set with only train/ (like the shared real sets): the demo
    says up front that it will predict the validation images, trains with
    the caps derived from the training split (not the config's), predicts
    the validation images as a test set and scores them."""
    data = tmp_path / 'data'
    shutil.copytree(Path(tiny_data_root) / 'train', data / 'train')
    out = tmp_path / 'out'
    env = dict(os.environ, DATA=str(data), OUT=str(out), CONFIG=TINY_CONFIG,
               OMP_NUM_THREADS='2', PYTHON=sys.executable)
    proc = subprocess.run(['bash', 'tools/demo.sh'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout
    note = log.index('predicts the validation images instead')
    assert note < log.index('3/6 train')  # said before training starts
    # caps of the tiny set (<= 40 cells per image): 100 detections (the
    # smallest cap with full recall), 500 proposals from 1000 per level
    caps = ('model.train_cfg.rpn_proposal.nms_pre=1000 '
            'model.train_cfg.rpn_proposal.max_per_img=500 '
            'model.test_cfg.rpn.nms_pre=1000 model.test_cfg.rpn.max_per_img=500 '
            'model.test_cfg.rcnn.max_per_img=100')
    assert f'caps from the training split: {caps}' in log
    dumped = Config.fromfile(
        str(out / 'work_dir' / Path(TINY_CONFIG).name))
    assert dumped.model.train_cfg.rpn_proposal.max_per_img == 500
    assert dumped.model.test_cfg.rpn.nms_pre == 1000
    assert dumped.model.test_cfg.rcnn.max_per_img == 100
    val = json.loads(
        (out / 'data' / 'annotations' / 'val.json').read_text())
    listing = json.loads(
        (out / 'val_as_test' / 'test_image_name_to_ids.json').read_text())
    assert sorted(e['id'] for e in listing) == sorted(
        im['id'] for im in val['images'])
    results = json.loads(
        (out / 'predictions' / 'test-results.json').read_text())
    assert {r['image_id'] for r in results} <= {e['id'] for e in listing}
    assert 'segm AP50 (COCOeval defaults, maxDets=100):' in log
    assert (out / 'predictions' / 'overlays').is_dir()

"""Training, resuming, testing and distributed CPU runs through the tools."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from glob import glob

from conftest import TINY_CONFIG, last_checkpoint, run_tool, train_tiny


def scalars(work_dir):
    """Records of the newest run's vis_data/scalars.json."""
    path = sorted(glob(osp.join(work_dir, '*', 'vis_data',
                                'scalars.json')))[-1]
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_training_lowers_loss_and_reports_segm_ap50(trained_tiny):
    work_dir, proc = trained_tiny
    records = scalars(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 24  # 8 epochs x 3 iterations (6 images, batch 2)
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, losses
    val = [r for r in records if 'coco/segm_mAP_50' in r]
    assert len(val) == 1
    ap50 = val[0]['coco/segm_mAP_50']
    assert 0.0 <= ap50 <= 1.0
    assert 'coco/bbox_mAP_50' in val[0]
    # the leaderboard's number (maxDets 100) is logged next to it, and
    # keeps the best checkpoint
    assert 0.0 <= val[0]['coco/segm_leaderboard_AP50'] <= 1.0
    assert glob(osp.join(work_dir,
                         'best_coco_segm_leaderboard_AP50_epoch_*.pth'))
    assert osp.basename(last_checkpoint(work_dir)) == 'epoch_8.pth'


def test_resume_continues_from_last_checkpoint(trained_tiny, tiny_data_root,
                                               tmp_path):
    work_dir = str(tmp_path / 'resumed')
    shutil.copytree(trained_tiny[0], work_dir)
    # last_checkpoint holds an absolute path: point it at the copy
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'epoch_8.pth'))
    proc = train_tiny(work_dir, tiny_data_root, '--resume', '--cfg-options',
                      'train_cfg.max_epochs=9')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 8, iter: 24' in log
    assert osp.basename(last_checkpoint(work_dir)) == 'epoch_9.pth'
    iters = [r['iter'] for r in scalars(work_dir) if 'loss' in r]
    assert iters == [25, 26, 27]  # continued, not restarted


def test_tools_test_evaluates_checkpoint(trained_tiny, tiny_data_root,
                                         tmp_path):
    work_dir, _ = trained_tiny
    ckpt = osp.join(work_dir, 'epoch_8.pth')
    out = tmp_path / 'preds.pkl'
    proc = run_tool([
        'tools/test.py', TINY_CONFIG, ckpt, '--work-dir',
        str(tmp_path), '--data-root', tiny_data_root, '--out', str(out)
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert re.search(r'coco/segm_mAP_50: \d\.\d+', log)
    assert re.search(r'coco/segm_leaderboard_AP50: \d\.\d+', log)
    assert out.is_file() and out.stat().st_size > 0


def test_dist_train_two_cpu_ranks(tmp_path, tiny_data_root):
    env = dict(os.environ, PYTHON=sys.executable, PORT='29517',
               OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir',
         str(tmp_path), '--data-root', tiny_data_root, '--cfg-options',
         'train_cfg.max_epochs=1', 'train_cfg.val_interval=5'],
        cwd=osp.dirname(osp.dirname(osp.abspath(__file__))),
        capture_output=True, text=True, timeout=600, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    # 6 images over 2 ranks x batch 2: each rank steps twice per epoch
    assert 'Epoch(train) [1][2/2]' in log
    # one checkpoint, written once (by rank 0)
    assert [osp.basename(p) for p in glob(str(tmp_path / 'epoch_*.pth'))] \
        == ['epoch_1.pth']


def test_train_missing_annotations_is_a_clear_error(tmp_path):
    proc = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir',
        str(tmp_path / 'wd'), '--data-root',
        str(tmp_path / 'nowhere')
    ])
    assert proc.returncode != 0
    assert 'annotation file not found' in proc.stderr
    assert 'hw3_to_coco.py' in proc.stderr
    assert 'Traceback' not in proc.stderr

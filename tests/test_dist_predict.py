"""tools/dist_predict.sh: ranks share images or slide tiles and rank 0
writes the same files as one process (2 CPU ranks on one node, and 2
"nodes" of one process each on 127.0.0.1)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from conftest import REPO, TINY_CONFIG, run_tool
from mmseg_cells.apis.shards import PartWriter, Shard, merged_parts
from mmseg_cells.data.synthetic.slide import write_synthetic_slide


# the ranks run one thread each: so does the single process compared with
# them (float sums over a different thread count may differ in the last bit)
ONE = {'OMP_NUM_THREADS': '1'}


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def dist_env(**extra) -> dict:
    return dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                **extra)


def same_files(a, b, names):
    for n in names:
        assert open(osp.join(a, n), 'rb').read() == \
            open(osp.join(b, n), 'rb').read(), n


@pytest.fixture(scope='module')
def checkpoint(trained_tiny):
    return osp.join(trained_tiny[0], 'epoch_8.pth')


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('dslide') / 'slide.tif')
    write_synthetic_slide(path, 1300, 1100, seed=5, tile=256)
    return path


def test_shard_split_and_merge_in_key_order(tmp_path):
    items = list('abcdefg')
    shards = [Shard(r, 3) for r in range(3)]
    mine = [s.mine(items) for s in shards]
    assert mine[1] == [(1, 'b'), (4, 'e')]
    assert sorted(k for m in mine for k, _ in m) == list(range(7))
    for s, m in zip(shards, mine):
        w = PartWriter(str(tmp_path), 'x', s.rank)
        for k, item in m:
            w.put(k, {'v': item})
        w.close()
    merged = list(merged_parts(str(tmp_path), 'x', 3))
    assert merged == [(k, {'v': v}) for k, v in enumerate(items)]
    assert not (tmp_path / '.parts').exists()  # parts removed
    w = PartWriter(str(tmp_path), 'y', 0)
    w.put(3, 1)
    with pytest.raises(ValueError, match='keys must increase'):
        w.put(2, 1)


def test_two_cpu_ranks_write_what_one_process_writes(checkpoint, slide,
                                                     tiny_data_root,
                                                     tmp_path):
    common = ['--no-tta', '--score-thr', '0.0', '--tile-size', '512',
              '--tile-overlap', '96']
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    # images of a test listing
    single = run_tool(['tools/predict.py', TINY_CONFIG, checkpoint,
                       '--data-root', tiny_data_root, '--out-dir', one,
                       '--format', 'coco', 'geojson', *common], env=ONE)
    assert single.returncode == 0, single.stderr[-2000:]
    proc = subprocess.run(
        ['bash', 'tools/dist_predict.sh', TINY_CONFIG, checkpoint, '2',
         '--data-root', tiny_data_root, '--out-dir', two, '--format',
         'coco', 'geojson', *common],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dist_env(PORT=free_port()))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    geo = sorted(os.listdir(osp.join(one, 'geojson')))
    assert len(geo) > 1
    same_files(one, two, ['test-results.json'] +
               [osp.join('geojson', g) for g in geo])
    assert not osp.exists(osp.join(two, '.parts'))
    # tiles of a slide
    single = run_tool(['tools/predict.py', TINY_CONFIG, checkpoint,
                       '--slides', slide, '--out-dir', one, '--format',
                       'coco', 'geojson', 'overlays', *common], env=ONE)
    assert single.returncode == 0, single.stderr[-2000:]
    proc = subprocess.run(
        ['bash', 'tools/dist_predict.sh', TINY_CONFIG, checkpoint, '2',
         '--slides', slide, '--out-dir', two, '--format', 'coco',
         'geojson', 'overlays', *common],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dist_env(PORT=free_port()))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    same_files(one, two, ['slide.coco.json', 'slide.geojson',
                          'slide.overlay.png'])


def test_two_nodes_on_localhost_write_what_one_process_writes(
        checkpoint, slide, tmp_path):
    common = ['--no-tta', '--score-thr', '0.0', '--tile-size', '512',
              '--tile-overlap', '96', '--slides', slide, '--format',
              'geojson']
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    single = run_tool(['tools/predict.py', TINY_CONFIG, checkpoint,
                       '--out-dir', one, *common], env=ONE)
    assert single.returncode == 0, single.stderr[-2000:]
    port = free_port()
    nodes = [subprocess.Popen(
        ['bash', 'tools/dist_predict.sh', TINY_CONFIG, checkpoint, '1',
         '--out-dir', two, *common],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dist_env(NNODES='2', NODE_RANK=str(r),
                                MASTER_ADDR='127.0.0.1', PORT=port))
        for r in (0, 1)]
    logs = [n.communicate(timeout=600)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], logs[0][-3000:] + \
        logs[1][-3000:]
    same_files(one, two, ['slide.geojson'])

"""Stack fixes of mmseg_cells.compat, each checked against its failure."""
import pickle
import textwrap
import urllib.error

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmseg_cells.utils import register_all_modules
from mmseg_cells import compat
from conftest import run_tool

register_all_modules()  # registrations and compat fixes


def runner_like_checkpoint(path):
    """What mmengine's Runner.save_checkpoint stores besides weights."""
    hub = MessageHub.get_instance('compat_test')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.0 / (i + 1)))
    hub.update_info('iter', 3)
    ckpt = dict(
        meta=dict(epoch=1, iter=3, seed=np.int64(0),
                  dataset_meta=dict(classes=('class1', 'class2'))),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        optimizer={'state': {}, 'param_groups': [{'lr': 1e-3}]})
    torch.save(ckpt, path)


def test_runner_checkpoint_needs_and_gets_the_allow_list(tmp_path):
    path = tmp_path / 'ckpt.pth'
    runner_like_checkpoint(path)
    # without mmseg_cells the stock weights_only load fails (fresh process)
    code = textwrap.dedent(f"""
        import torch
        try:
            torch.load({str(path)!r}, map_location='cpu')
        except Exception as e:
            print('FAILED', type(e).__name__)
        else:
            print('LOADED')
        import mmseg_cells.models
        ck = torch.load({str(path)!r}, map_location='cpu')
        hist = ck['message_hub']['log_scalars']['train/loss']
        print('AFTER', round(float(hist.mean()), 4))
    """)
    proc = run_tool(['-c', code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'FAILED UnpicklingError' in proc.stdout
    assert 'AFTER 0.6111' in proc.stdout  # mean of 1, 1/2, 1/3


def test_weights_only_is_still_enforced(tmp_path):
    """The allow-list is narrow: arbitrary callables stay forbidden, and
    the getattr it allows only reaches HistoryBuffer statistics."""
    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)

    class SneakyAttr:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': SneakyAttr()}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path)
    assert compat._history_buffer_method(HistoryBuffer, 'mean') is \
        HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError):
        compat._history_buffer_method(HistoryBuffer, '__init__')


FAKE_URL_NAME = 'resnet50-0676ba61.pth'


def test_torchvision_scheme_without_torchvision(tmp_path, monkeypatch):
    with pytest.raises(ImportError):
        import torchvision  # noqa: F401  (the stack does not ship it)
    from mmengine.runner.checkpoint import CheckpointLoader
    hub_dir = tmp_path / 'hub'
    (hub_dir / 'checkpoints').mkdir(parents=True)
    torch.save({'conv1.weight': torch.zeros(1)},
               hub_dir / 'checkpoints' / FAKE_URL_NAME)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub_dir))
    ckpt = CheckpointLoader.load_checkpoint('torchvision://resnet50',
                                            map_location='cpu')
    assert list(ckpt) == ['conv1.weight']


def test_torchvision_scheme_offline_message(tmp_path, monkeypatch):
    import mmengine.runner.checkpoint as ckpt_mod
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(ckpt_mod, 'load_url', offline)
    with pytest.raises(compat.PretrainedWeightsUnavailable) as e:
        ckpt_mod.CheckpointLoader.load_checkpoint('torchvision://resnet50')
    msg = str(e.value)
    assert 'model.backbone.init_cfg.checkpoint=' in msg
    assert FAKE_URL_NAME in msg and str(tmp_path) in msg
    with pytest.raises(KeyError, match='unknown torchvision checkpoint'):
        ckpt_mod.CheckpointLoader.load_checkpoint('torchvision://nonet')


class _RunsShell:
    """Pickles as a call of os.system, like a malicious checkpoint."""

    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))


@pytest.fixture(scope='module')
def crafted_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('evil') / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': _RunsShell()},
               path)
    return path


def _assert_one_clean_line(proc, path):
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'pwned' not in proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines()
              if ln.startswith('error:')]
    assert len(errors) == 1, proc.stderr[-3000:]
    line = errors[0]
    assert str(path) in line and 'system' in line and 'run code' in line
    assert 'weights_only=False' not in proc.stderr


def test_refused_checkpoint_names_file_and_global(crafted_checkpoint):
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(compat.UnsafeCheckpointError) as e:
        CheckpointLoader.load_checkpoint(str(crafted_checkpoint))
    assert str(crafted_checkpoint) in str(e.value)
    assert 'posix.system' in str(e.value) or 'os.system' in str(e.value)


@pytest.mark.parametrize('tool', ['test', 'predict', 'resume'])
def test_tools_refuse_crafted_checkpoint_in_one_line(
        tool, crafted_checkpoint, tiny_data_root, tmp_path):
    from conftest import TINY_CONFIG
    if tool == 'test':
        args = ['tools/test.py', TINY_CONFIG, str(crafted_checkpoint),
                '--data-root', tiny_data_root, '--work-dir', str(tmp_path)]
    elif tool == 'predict':
        args = ['tools/predict.py', TINY_CONFIG, str(crafted_checkpoint),
                '--data-root', tiny_data_root, '--out-dir',
                str(tmp_path / 'out')]
    else:
        args = ['tools/train.py', TINY_CONFIG, '--data-root', tiny_data_root,
                '--work-dir', str(tmp_path), '--resume',
                str(crafted_checkpoint)]
    proc = run_tool(args)
    _assert_one_clean_line(proc, crafted_checkpoint)
    if tool == 'predict':  # nothing written
        assert not (tmp_path / 'out' / 'test-results.json').exists()


def test_train_offline_without_imagenet_weights_is_one_line(
        tiny_data_root, tmp_path):
    """The main config as written, offline with an empty hub cache: the
    message that says how to fix it, nothing else."""
    proc = run_tool([
        'tools/train.py', 'configs/cbam_mask_rcnn.py', '--data-root',
        tiny_data_root, '--work-dir', str(tmp_path / 'work')
    ], env=dict(TORCH_HOME=str(tmp_path / 'torch'),
                # a closed local port: every download fails at once
                https_proxy='http://127.0.0.1:9',
                http_proxy='http://127.0.0.1:9',
                HTTPS_PROXY='http://127.0.0.1:9',
                HTTP_PROXY='http://127.0.0.1:9'))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines()
              if ln.startswith('error:')]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert 'torchvision://resnet50' in errors[0]
    assert 'model.backbone.init_cfg.checkpoint=' in errors[0]


def test_only_the_pkg_resources_warning_is_silenced():
    code = textwrap.dedent("""
        import warnings
        import mmseg_cells.models
        from mmengine.config import Config
        Config.fromfile('configs/cbam_mask_rcnn.py')  # mmdet:: bases
        warnings.warn('another user warning', UserWarning)
        warnings.warn('pkg_resources is deprecated as an API', UserWarning)
        warnings.warn('pkg_resources is deprecated as an API', FutureWarning)
    """)
    proc = run_tool(['-W', 'default', '-c', code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'another user warning' in proc.stderr
    assert 'UserWarning: pkg_resources is deprecated' not in proc.stderr
    assert 'FutureWarning: pkg_resources is deprecated' in proc.stderr

"""Fixes for verified breakages of the pinned stack.

Imported by ``mmseg_cells/__init__.py``, so active in every process that
loads a project config (``custom_imports=['mmseg_cells']``) or imports the
package. Each fix is idempotent and has a test in ``tests/test_compat.py``
that fails without it.

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
   mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without
   the argument. Checkpoints written by mmengine's own Runner hold, besides
   tensors, the message hub's ``HistoryBuffer`` objects and numpy arrays and
   scalars, so resume, ``load_from`` and ``tools/test.py`` fail with
   ``UnpicklingError: Weights only load failed``.

   We register the exact classes a Runner checkpoint needs with
   ``torch.serialization.add_safe_globals`` rather than passing
   ``weights_only=False``: the allow-list keeps the restricted unpickler,
   so loading a downloaded or shared checkpoint still cannot execute
   arbitrary code, while ``weights_only=False`` would turn every checkpoint
   file into a pickle that runs whatever it contains. Anything outside the
   list still fails loudly, naming the class, and can be added here after
   review.

2. ``torchvision://resnet50`` (the ImageNet weights of every mmdet R50
   config) is resolved by mmengine through ``import torchvision``, which
   this stack does not install (PyPI's torchvision does not even import next
   to the pinned CPU torch). We re-register the ``torchvision://`` scheme
   with a loader that takes the URL from mmengine's own bundled table
   (``mmengine/hub/torchvision_0.12.json``) and downloads it into the torch
   hub cache like before. When the weights cannot be fetched (no network)
   it raises :class:`PretrainedWeightsUnavailable`, which says which file
   to download and how to point the config at a local copy.

3. A checkpoint that the restricted unpickler refuses (it asks for a class
   or function outside the allow-list, e.g. ``os.system``) makes torch raise
   an ``UnpicklingError`` whose advice is to retry with
   ``weights_only=False``: the wrong advice for a file that may run code.
   mmengine's loaders for local files and URLs are wrapped so that this
   becomes :class:`UnsafeCheckpointError`, naming the file and what it asked
   for. The tools print such :class:`CheckpointLoadError` messages as one
   ``error:`` line and exit 1 (:func:`mmseg_cells.utils.cli.run_cli`).

4. mmengine 0.10.7 ``import``s and ``importlib.reload``s ``pkg_resources``
   at every ``is_installed`` call (config parsing does several), and
   setuptools warns "pkg_resources is deprecated as an API" each time: the
   same UserWarning three times per tool run. That one warning is filtered
   (:func:`silence_pkg_resources_deprecation`); nothing else is.
"""
import pickle
import re
import warnings

import numpy as np
import torch

_APPLIED = False


def _history_buffer_method(owner, name: str):
    """``getattr`` for the weights-only unpickler, limited to the statistics
    methods a ``HistoryBuffer`` pickles (``min``, ``max``, ``mean``, ...)."""
    import inspect

    from mmengine.logging import HistoryBuffer
    if not (isinstance(owner, type) and issubclass(owner, HistoryBuffer)):
        raise pickle.UnpicklingError(
            f'weights-only load: getattr({owner!r}, {name!r}) is not allowed '
            f'(only HistoryBuffer statistics methods are)')
    attr = inspect.getattr_static(owner, name, None)
    if not inspect.isfunction(attr) or name.startswith('_'):
        raise pickle.UnpicklingError(
            f'weights-only load: HistoryBuffer.{name} is not a statistics '
            f'method')
    return attr


def runner_checkpoint_safe_globals() -> list:
    """Classes and functions needed to unpickle mmengine Runner checkpoints.

    - ``HistoryBuffer``: the message hub's logged scalars (``message_hub`` in
      the checkpoint).
    - ``getattr``, restricted: ``HistoryBuffer.__getstate__`` pickles its
      statistics methods as ``getattr(HistoryBuffer, 'mean')``; a plain
      ``builtins.getattr`` would let a crafted file reach any attribute of an
      allowed object, so the name is mapped to
      :func:`_history_buffer_method`, which resolves only methods of
      ``HistoryBuffer``.
    - numpy: ``HistoryBuffer`` stores ``np.ndarray`` (pickled through
      ``_reconstruct`` with a ``dtype`` instance of a per-dtype class such as
      ``np.dtypes.Float64DType``), and runtime info holds numpy scalars
      (pickled through ``numpy._core.multiarray.scalar``).
    """
    from mmengine.logging import HistoryBuffer

    multiarray = getattr(np, '_core', None)
    multiarray = getattr(multiarray, 'multiarray', None) or np.core.multiarray
    safe = [
        HistoryBuffer,
        (_history_buffer_method, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
    ]
    # every concrete dtype class (np.dtypes.Float64DType, Int64DType, ...)
    safe += [
        cls for cls in vars(np.dtypes).values()
        if isinstance(cls, type) and issubclass(cls, np.dtype)
    ]
    return safe


def allow_runner_checkpoints_with_weights_only() -> None:
    """Let ``torch.load(weights_only=True)`` read Runner checkpoints."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4: weights_only is not the default anyway
        return
    add(runner_checkpoint_safe_globals())


class CheckpointLoadError(RuntimeError):
    """A checkpoint that cannot be loaded, for a reason the user can fix;
    the message says which file and what to do."""


class PretrainedWeightsUnavailable(CheckpointLoadError):
    """Raised when ``torchvision://`` weights can be neither found in the
    torch hub cache nor downloaded."""


class UnsafeCheckpointError(CheckpointLoadError):
    """Raised when the weights-only unpickler refuses a checkpoint because
    it asks for a class or function that could run code."""


_WEIGHTS_ONLY_MARKERS = ('Weights only load failed', 'weights-only load:')


def _refused_global(message: str) -> str:
    """What a refused checkpoint asked for, from torch's message."""
    for pattern in (r'Unsupported global: GLOBAL ([\w.]+)',
                    r'unsupported GLOBAL ([\w.]+)',
                    r'weights-only load: ([^\n]+)',
                    r'WeightsUnpickler error: ([^\n]+)'):
        found = re.search(pattern, message)
        if found:
            return found.group(1).rstrip('. ')
    return 'an object outside the allow-list'


def _refuse_unsafe(filename: str, exc: pickle.UnpicklingError):
    """``UnsafeCheckpointError`` for a weights-only refusal, else None."""
    text = str(exc)
    if not any(marker in text for marker in _WEIGHTS_ONLY_MARKERS):
        return None
    return UnsafeCheckpointError(
        f'{filename}: checkpoint not loaded: it asks for '
        f'{_refused_global(text)}, which could run code when loaded. Only '
        f'tensors and the objects of mmengine Runner checkpoints are '
        f'allowed (mmseg_cells/compat.py). Use checkpoints from a source '
        f'you trust.')


def _guard_loader(loader):
    """Wrap an mmengine checkpoint loader ``(filename, map_location)`` so a
    weights-only refusal raises :class:`UnsafeCheckpointError`."""
    if getattr(loader, '_mmseg_cells_guarded', False):
        return loader

    def guarded(filename, map_location=None, *args, **kwargs):
        try:
            return loader(filename, map_location, *args, **kwargs)
        except pickle.UnpicklingError as e:
            err = _refuse_unsafe(filename, e)
            if err is None:
                raise
            raise err from None

    guarded._mmseg_cells_guarded = True
    guarded.__name__ = getattr(loader, '__name__', 'guarded')
    guarded.__doc__ = loader.__doc__
    return guarded


def guard_checkpoint_loaders() -> None:
    """Wrap mmengine's local-file and http(s) loaders (see module doc)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes in ('', ('http://', 'https://')):
        probe = 'x' if prefixes == '' else prefixes[0] + 'x'
        loader = CheckpointLoader._get_checkpoint_loader(probe)
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=_guard_loader(loader), force=True)


def _torchvision_url(name: str) -> str:
    import os.path as osp

    import mmengine
    table = mmengine.load(
        osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))
    if name not in table:
        raise KeyError(f'unknown torchvision checkpoint "{name}"; known: '
                       f'{", ".join(sorted(table))}')
    return table[name]


def load_from_torchvision_url(filename: str, map_location=None):
    """``torchvision://NAME`` loader that does not import torchvision."""
    import os.path as osp

    from mmengine.runner.checkpoint import load_from_http
    name = filename.split('://', 1)[1]
    url = _torchvision_url(name)
    cached = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(url))
    try:
        return load_from_http(url, map_location=map_location)
    except pickle.UnpicklingError as e:
        err = _refuse_unsafe(cached, e)
        if err is None:
            raise
        raise err from None
    except Exception as e:  # network down, proxy, truncated download, ...
        raise PretrainedWeightsUnavailable(
            f'cannot load ImageNet weights {filename} ({type(e).__name__}: '
            f'{e}). They are downloaded from {url} into the torch hub '
            f'cache ({cached}). Without internet access, copy that file '
            f'there, or point the config at a local file: --cfg-options '
            f'model.backbone.init_cfg.checkpoint=/path/to/{osp.basename(url)}'
            f' (or train from scratch with model.backbone.init_cfg=None).'
        ) from e


def register_torchvision_scheme() -> None:
    """Serve ``torchvision://`` without torchvision (see module doc)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='torchvision://', loader=load_from_torchvision_url,
        force=True)


PKG_RESOURCES_WARNING = r'pkg_resources is deprecated as an API'


def silence_pkg_resources_deprecation() -> None:
    """Ignore setuptools' "pkg_resources is deprecated" UserWarning (only
    that message), which mmengine 0.10.7 triggers on every config parse."""
    warnings.filterwarnings(
        'ignore', message=PKG_RESOURCES_WARNING, category=UserWarning)


def apply() -> None:
    """Apply all fixes once per process."""
    global _APPLIED
    if _APPLIED:
        return
    silence_pkg_resources_deprecation()
    allow_runner_checkpoints_with_weights_only()
    guard_checkpoint_loaders()
    register_torchvision_scheme()
    _APPLIED = True


apply()

__all__ = [
    'apply', 'register_torchvision_scheme', 'load_from_torchvision_url',
    'CheckpointLoadError', 'PretrainedWeightsUnavailable',
    'UnsafeCheckpointError', 'guard_checkpoint_loaders',
    'silence_pkg_resources_deprecation',
    'allow_runner_checkpoints_with_weights_only',
    'runner_checkpoint_safe_globals'
]

"""Config helpers shared by the tools."""
import os.path as osp
from typing import Optional
from mmengine.config import Config

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATORS = ('val_evaluator', 'test_evaluator')


def _innermost_dataset(loader_cfg):
    ds = loader_cfg.get('dataset')
    while ds is not None and 'dataset' in ds:  # wrappers (RepeatDataset...)
        ds = ds['dataset']
    return ds


def load_config(config: str,
                launcher: str = 'none',
                cfg_options: Optional[dict] = None,
                data_root: Optional[str] = None,
                work_dir: Optional[str] = None) -> Config:
    """A config with the tools' common command-line options applied.

    ``--cfg-options`` are merged first, then ``--data-root``
    (:func:`set_data_root`); the work dir defaults to
    ``./work_dirs/<config name>`` as in MMDetection's tools.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point every dataloader and COCO evaluator of ``cfg`` at ``data_root``.

    mmengine resolves ``data_root = ...`` at parse time, so
    ``--cfg-options data_root=X`` alone does not reach the datasets. This
    sets each dataset's ``data_root`` and points ``val_evaluator`` /
    ``test_evaluator`` at the annotation file of the matching dataset.
    """
    data_root = osp.join(data_root, '')
    cfg.data_root = data_root
    for key in _LOADERS:
        ds = _innermost_dataset(cfg[key]) if cfg.get(key) else None
        if ds is not None:
            ds['data_root'] = data_root
    for key, loader in zip(_EVALUATORS, _LOADERS[1:]):
        ev = cfg.get(key)
        ds = _innermost_dataset(cfg[loader]) if cfg.get(loader) else None
        if ev is None or ds is None or not ds.get('ann_file'):
            continue
        for metric in ev if isinstance(ev, list) else [ev]:
            if 'ann_file' in metric:
                metric['ann_file'] = osp.join(data_root, ds['ann_file'])


def check_annotation_files(cfg: Config, loaders=_LOADERS) -> None:
    """Fail early, with the fix, when a COCO annotation file is missing."""
    for key in loaders:
        if cfg.get(key) is None:
            continue
        ds = _innermost_dataset(cfg[key])
        if ds is None or not ds.get('ann_file'):
            continue
        ann = ds['ann_file']
        path = osp.join(ds.get('data_root', ''), ann)  # ann may be absolute
        if not osp.isfile(path):
            root = ds.get('data_root', '<data_root>')
            raise FileNotFoundError(
                f'{path}: annotation file not found ({key}). Convert the '
                f'hw3 data first: python data_converters/hw3_to_coco.py '
                f'--data-root {root} --out-dir {osp.join(root, "annotations")}'
                f' , or pass --data-root')


__all__ = ['load_config', 'set_data_root', 'check_annotation_files']

"""Train a detector: ``python tools/train.py CONFIG [options]``.

MMDetection's ``tools/train.py`` interface, plus what cells need:
``--data-root`` (points every dataset/evaluator at a converted hw3 root),
``--tensorboard``, and CPU-only distributed runs (gloo) for
``tools/dist_train.sh``.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmseg_cells.engine import setup_cpu_distributed  # noqa: E402
from mmseg_cells.utils.cli import run_cli  # noqa: E402
from mmseg_cells.utils.config import (check_annotation_files,  # noqa: E402
                                      load_config)
from mmseg_cells.utils import register_all_modules  # noqa: E402

register_all_modules()  # compat fixes, registrations


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--data-root',
        help='hw3-data-release root holding annotations/{train,val}.json '
        '(overrides the data_root of every dataset and evaluator)')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training (CUDA only)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr linearly from auto_scale_lr.base_batch_size to '
        'the actual total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work directory')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log scalars to TensorBoard (<work_dir>/<time>/vis_data)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    """Load the config and apply the command line to it."""
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.data_root, args.work_dir)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('error: --amp needs a CUDA GPU (none found)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise SystemExit('error: the config has no '
                             'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: {args.resume}: checkpoint not found')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise SystemExit('error: --tensorboard needs the tensorboard '
                             'package: .venv/bin/pip install tensorboard')
        backends = list(cfg.visualizer.get('vis_backends', []))
        backends.append(dict(type='TensorboardVisBackend'))
        cfg.visualizer.vis_backends = backends
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    try:
        check_annotation_files(cfg, loaders)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    setup_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    sys.exit(run_cli(main))

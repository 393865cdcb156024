"""Test (and evaluate) a detector: ``python tools/test.py CONFIG CHECKPOINT``.

MMDetection's ``tools/test.py`` interface (``--work-dir``, ``--out``,
``--show-dir``, ``--cfg-options``, ``--launcher``), plus ``--data-root`` and
CPU-only distributed runs (gloo) for ``tools/dist_test.sh``.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction
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
    parser = argparse.ArgumentParser(
        description='MMDet test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--data-root',
        help='hw3-data-release root holding annotations/*.json (overrides '
        'the data_root of every dataset and evaluator)')
    parser.add_argument(
        '--out', type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (relative to '
        'work_dir/timestamp)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: {args.checkpoint}: checkpoint not found')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'error: --out {args.out}: must be a .pkl file')
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.data_root, args.work_dir)
    cfg.load_from = args.checkpoint
    # the test set is evaluated from its annotation file; no training data
    cfg.train_dataloader = None
    cfg.train_cfg = None
    cfg.optim_wrapper = None
    cfg.param_scheduler = None
    try:
        check_annotation_files(cfg, ['test_dataloader'])
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    if args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        args.show = False
        args.wait_time = 0
        cfg = trigger_visualization_hook(cfg, args)
    setup_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    if args.out is not None:
        from mmseg_cells.evaluation.metrics import CellDumpDetResults
        runner.test_evaluator.metrics.append(
            CellDumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    sys.exit(run_cli(main))

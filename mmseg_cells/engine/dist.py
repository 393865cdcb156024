"""Distributed runs on CPU-only machines (gloo)."""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare ``cfg`` and the process group for a CPU (gloo) run.

    mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device``
    (which fails without a GPU) and its Runner wraps the model in DDP with
    ``device_ids=[LOCAL_RANK]`` (which DDP rejects for CPU modules). When the
    launcher is not ``none`` and CUDA is unavailable, this initialises the
    process group with the ``gloo`` backend from torchrun's environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) *before* the
    Runner is built, so the Runner's own ``init_dist`` is skipped, and asks
    for DDP without ``device_ids``. With CUDA present nothing changes and the
    Runner uses ``env_cfg.dist_cfg`` (nccl) as usual.

    Returns:
        bool: True if the CPU path was set up.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'CPU-only distributed runs support --launcher pytorch '
            f'(tools/dist_train.sh, torchrun), not "{launcher}"')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs torchrun\'s environment variables '
            f'(missing {", ".join(missing)}); start with tools/dist_train.sh')
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist_cfg['backend'] = 'gloo'
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg.dist_cfg = dist_cfg
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=dist_cfg.get('timeout', 1800))
        dist.init_process_group(backend='gloo', timeout=timeout)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True


__all__ = ['setup_cpu_distributed']

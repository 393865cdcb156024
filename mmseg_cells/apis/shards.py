"""Prediction shared by the ranks of a torchrun job, merged by rank 0.

``tools/dist_predict.sh`` starts ``tools/predict.py`` on N processes per
node (``--launcher pytorch``). :meth:`Shard.from_env` joins them in a gloo
process group (CPU tensors only: it is used for barriers, so GPU ranks need
no NCCL set-up); each rank takes every N-th unit of work (:meth:`Shard.
mine`: images of a folder, tiles of a slide) and streams what it produced
into its own part file (:class:`PartWriter`, JSON lines in increasing key
order). After a barrier rank 0 reads the parts back in key order
(:func:`merged_parts`, a k-way merge that holds one line per rank) and
writes the final outputs exactly as a single process would, then removes
the parts.
"""
import datetime
import heapq
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Any, Iterator, List, Sequence, Tuple

__all__ = ['PartWriter', 'Shard', 'merged_parts']

PARTS_DIR = '.parts'


@dataclass(frozen=True)
class Shard:
    """This process's share of a prediction job.

    Attributes:
        rank (int): global rank (0 merges). Defaults to 0.
        world (int): number of processes. Defaults to 1.
    """
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, launcher: str = 'none',
                 timeout_s: int = 7200) -> 'Shard':
        """The shard of this process: one process unless ``launcher`` is
        ``'pytorch'`` (torchrun's ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
        ``MASTER_PORT`` then define it and a gloo group is joined)."""
        if launcher == 'none':
            return cls()
        if launcher != 'pytorch':
            raise RuntimeError(f'prediction supports --launcher pytorch '
                               f'(tools/dist_predict.sh), not "{launcher}"')
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                               'MASTER_PORT') if k not in os.environ]
        if missing:
            raise RuntimeError(
                '--launcher pytorch needs torchrun\'s environment variables '
                f'(missing {", ".join(missing)}); start with '
                'tools/dist_predict.sh')
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(
                backend='gloo',
                timeout=datetime.timedelta(seconds=timeout_s))
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, items: Sequence) -> List[Tuple[int, Any]]:
        """``(position, item)`` of every ``world``-th item, from ``rank``:
        the share of this process, in order."""
        return [(i, items[i]) for i in range(self.rank, len(items),
                                             self.world)]

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in one process)."""
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def local_device(self, device):
        """``device`` as asked; by default this rank's GPU
        (``cuda:LOCAL_RANK``) when CUDA is there, else the CPU."""
        if device is not None:
            return device
        import torch
        if torch.cuda.is_available():
            return f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
        return 'cpu'


def _part_path(out_dir: str, name: str, rank: int) -> str:
    return osp.join(out_dir, PARTS_DIR, f'{name}.{rank}.jsonl')


class PartWriter:
    """One rank's part of output ``name``: ``(key, payload)`` JSON lines,
    keys increasing."""

    def __init__(self, out_dir: str, name: str, rank: int) -> None:
        self.path = _part_path(out_dir, name, rank)
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        self._f = open(self.path, 'w', encoding='utf-8')
        self._last = None

    def put(self, key: int, payload: Any) -> None:
        if self._last is not None and key <= self._last:
            raise ValueError(f'{self.path}: keys must increase ({key} after '
                             f'{self._last})')
        self._last = key
        self._f.write(json.dumps([key, payload], separators=(',', ':')) +
                      '\n')

    def close(self) -> None:
        self._f.close()


def _lines(path: str) -> Iterator[Tuple[int, Any]]:
    with open(path, encoding='utf-8') as f:
        for line in f:
            key, payload = json.loads(line)
            yield key, payload


def merged_parts(out_dir: str, name: str, world: int,
                 remove: bool = True) -> Iterator[Tuple[int, Any]]:
    """Every rank's ``(key, payload)`` of output ``name`` in key order
    (rank 0, after a barrier); the part files are removed at the end."""
    paths = [_part_path(out_dir, name, r) for r in range(world)]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise RuntimeError(f'missing prediction parts: {missing}')
    yield from heapq.merge(*(_lines(p) for p in paths),
                           key=lambda kv: kv[0])
    if remove:
        for p in paths:
            os.remove(p)
        folder = osp.join(out_dir, PARTS_DIR)
        if osp.isdir(folder) and not os.listdir(folder):
            shutil.rmtree(folder)

"""IoU between many anchors and many cells, in bounded memory."""
import torch
from mmdet.models.task_modules.assigners import BboxOverlaps2D
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import get_box_tensor

__all__ = ['ChunkedBboxOverlaps2D']


@TASK_UTILS.register_module()
class ChunkedBboxOverlaps2D(BboxOverlaps2D):
    """mmdet's :class:`BboxOverlaps2D`, computed a block of rows at a time.

    ``bbox_overlaps`` of ``m`` x ``n`` boxes holds several ``m x n x 2``
    float intermediates (corners, widths/heights). The RPN assigner pairs
    every cell of a crowded image with every anchor: 400 cells x 262k
    anchors of a 1024x1024 crop are 0.8 GB per intermediate and 3-4 GB in
    all, about 7 GB at 800 cells: most of a training step's peak memory on
    CPU. Blocks of at most ``max_pairs`` pairs keep the intermediates at
    ``max_pairs * 8`` bytes each; the result (``m x n``, which the assigner
    needs) and its values are exactly those of the stock calculator.

    Args:
        max_pairs (int): Pairs per block. Defaults to ``2**24`` (128 MiB
            per intermediate).
        **kwargs: ``scale`` and ``dtype`` of BboxOverlaps2D.
    """

    def __init__(self, max_pairs: int = 2**24, **kwargs) -> None:
        super().__init__(**kwargs)
        if int(max_pairs) < 1:
            raise ValueError(f'max_pairs must be >= 1, got {max_pairs}')
        self.max_pairs = int(max_pairs)

    def __call__(self, bboxes1, bboxes2, mode='iou', is_aligned=False):
        b1, b2 = get_box_tensor(bboxes1), get_box_tensor(bboxes2)
        m, n = b1.size(-2), b2.size(-2)
        if is_aligned or b1.dim() != 2 or m * n <= self.max_pairs:
            return super().__call__(b1, b2, mode, is_aligned)
        rows = max(1, self.max_pairs // max(n, 1))
        overlaps = super().__call__
        return torch.cat([
            overlaps(b1[i:i + rows], b2, mode, is_aligned)
            for i in range(0, m, rows)
        ], 0)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_pairs={self.max_pairs}, '
                f'scale={self.scale}, dtype={self.dtype})')

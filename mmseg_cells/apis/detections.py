"""The per-image result container of :class:`~mmseg_cells.apis.CellPredictor`.

Numpy only: no torch, no mmdet (tensors are converted by
:meth:`Detections.from_network`, which only calls their methods).
"""
from dataclasses import dataclass
from typing import Iterator, Sequence, Tuple

import numpy as np

from mmseg_cells.mask_codec import paste_mask_crop

__all__ = ['Detections']


@dataclass
class Detections:
    """Detections of one image in original pixel coordinates.

    Masks are kept as the mask head's ``M x M`` probability maps, one per
    box; they are pasted into the image one at a time, from box-sized crops
    (:meth:`iter_masks`), so N full-size masks never exist at once.

    Attributes:
        bboxes (np.ndarray): (N, 4) float32 ``x1, y1, x2, y2``.
        scores (np.ndarray): (N,) float32.
        labels (np.ndarray): (N,) int64, 0-based class index.
        mask_probs (np.ndarray): (N, M, M) float32 in [0, 1].
        height (int): image height.
        width (int): image width.
    """
    bboxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    mask_probs: np.ndarray
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, height: int, width: int,
              mask_size: int = 28) -> 'Detections':
        """No detections on a ``height x width`` image."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
            np.zeros(0, np.int64), np.zeros((0, mask_size, mask_size),
                                            np.float32), height, width)

    @classmethod
    def from_network(cls, bboxes, scores, labels, mask_probs,
                     scale: np.ndarray, height: int,
                     width: int) -> 'Detections':
        """Detections from the model's tensors (any device).

        ``bboxes`` are in network-input coordinates; dividing by ``scale``
        (the pipeline's resize factors ``w, h, w, h``) maps them back to
        the ``height x width`` image.
        """
        return cls(bboxes.cpu().numpy() / scale,
                   scores.cpu().numpy(),
                   labels.cpu().numpy().astype(np.int64),
                   mask_probs.cpu().numpy().astype(np.float32), height,
                   width)

    def select(self, keep: np.ndarray) -> 'Detections':
        """Subset by index or boolean array."""
        return Detections(self.bboxes[keep], self.scores[keep],
                          self.labels[keep], self.mask_probs[keep],
                          self.height, self.width)

    @staticmethod
    def concat(dets: Sequence['Detections'], height: int,
               width: int) -> 'Detections':
        """Concatenate detections of the same image."""
        dets = [d for d in dets if len(d)]
        if not dets:
            return Detections.empty(height, width)
        return Detections(
            np.concatenate([d.bboxes for d in dets]),
            np.concatenate([d.scores for d in dets]),
            np.concatenate([d.labels for d in dets]),
            np.concatenate([d.mask_probs for d in dets]), height, width)

    def iter_masks(
            self,
            threshold: float = 0.5
    ) -> Iterator[Tuple[int, np.ndarray, int, int]]:
        """Yield ``(index, crop_bool, x0, y0)`` per detection.

        The crop is the binary mask restricted to the box's pixel range, as
        mmdet's ``FCNMaskHead`` would paste it into the full image.
        """
        for i in range(len(self)):
            crop, x0, y0 = paste_mask_crop(self.mask_probs[i], self.bboxes[i],
                                           self.height, self.width,
                                           threshold)
            yield i, crop, x0, y0

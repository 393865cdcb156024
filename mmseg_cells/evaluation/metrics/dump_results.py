"""DumpDetResults (``tools/test.py --out``), also for crop masks."""
from typing import Sequence

from mmdet.evaluation import DumpDetResults
from mmdet.registry import METRICS

from .crop_mask_samples import split_crop_masks

__all__ = ['CellDumpDetResults']


@METRICS.register_module()
class CellDumpDetResults(DumpDetResults):
    """:class:`~mmdet.evaluation.DumpDetResults` that also accepts
    :class:`CropBitmapMasks` predictions: they are RLE-encoded from their
    crops (``counts`` as ``bytes``, as ``encode_mask_results`` writes them),
    so the pickle is the one the stock mask head gives."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """DumpDetResults' ``process``, with crop masks encoded here."""
        samples, rles = split_crop_masks(data_samples)
        super().process(data_batch, samples)
        # the stock process appended (CPU copies of) the samples in order
        for res, r in zip(self.results[-len(samples):], rles):
            if r is not None:
                for rle in r:
                    rle['counts'] = rle['counts'].encode()
                res['pred_instances']['masks'] = r

"""DumpDetResults (``tools/test.py --out``), also for crop masks."""
from typing import List, Optional, Sequence

from mmdet.evaluation import DumpDetResults
from mmdet.registry import METRICS

from mmseg_cells.structures.crop_masks import CropBitmapMasks

__all__ = ['CellDumpDetResults']


@METRICS.register_module()
class CellDumpDetResults(DumpDetResults):
    """:class:`~mmdet.evaluation.DumpDetResults` that also accepts
    :class:`CropBitmapMasks` predictions: they are RLE-encoded from their
    crops (``counts`` as ``bytes``, as ``encode_mask_results`` writes them),
    so the pickle is the one the stock mask head gives."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """DumpDetResults' ``process``; crop masks are encoded here. The
        samples are shared with the evaluator's other metrics: they are
        copied, not modified."""
        samples, encoded = [], []
        for sample in data_samples:
            pred = sample.get('pred_instances')
            rles = None
            if pred is not None and isinstance(pred.get('masks'),
                                               CropBitmapMasks):
                rles = pred['masks'].to_rle_list()
                for r in rles:
                    r['counts'] = r['counts'].encode()
                pred = {k: v for k, v in pred.items() if k != 'masks'}
                sample = dict(sample, pred_instances=pred)
            samples.append(sample)
            encoded.append(rles)
        super().process(data_batch, samples)
        # the stock process appended (CPU copies of) the samples in order
        for res, rles in zip(self.results[-len(samples):], encoded):
            if rles is not None:
                res['pred_instances']['masks'] = rles

"""CocoMetric that also reports the leaderboard's mask AP50."""
import json
from typing import Dict, List, Optional, Sequence

from mmengine.logging import MMLogger

from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS

from ..ap50 import leaderboard_ap50
from .crop_mask_samples import split_crop_masks


@METRICS.register_module()
class CellCocoMetric(CocoMetric):
    """mmdet's :class:`~mmdet.evaluation.metrics.CocoMetric` plus the mask
    AP50 that submissions are judged on.

    CocoMetric runs COCOeval with ``maxDets = proposal_nums`` and reads its
    AP50 (``segm_mAP_50``) at ``proposal_nums[-1]`` (1000 in the cell
    configs, so crowded images are not cut at 100 cells). The leaderboard
    scores with pycocotools' defaults instead: at most 100 detections per
    image *and category*. This metric adds that number under
    ``segm_leaderboard_AP50`` (``coco/segm_leaderboard_AP50`` in the logs,
    the key the configs' ``save_best`` uses), computed on the same result
    file and the same images as the other keys, which all stay.

    Args:
        *args, **kwargs: those of CocoMetric.
    """

    LEADERBOARD_KEY = 'segm_leaderboard_AP50'

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._segm_results: Optional[List[dict]] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """CocoMetric's ``process``, with crop masks encoded to RLE first
        (CocoMetric passes masks that are not tensors on as RLEs)."""
        samples, rles = split_crop_masks(data_samples)
        samples = [
            s if r is None else dict(
                s, pred_instances=dict(s['pred_instances'], masks=r))
            for s, r in zip(samples, rles)
        ]
        super().process(data_batch, samples)

    def results2json(self, results: Sequence[dict],
                     outfile_prefix: str) -> Dict[str, str]:
        """Write the result files as CocoMetric does and keep the mask
        results for the leaderboard evaluation."""
        files = super().results2json(results, outfile_prefix)
        if 'segm' in files:
            with open(files['segm']) as f:
                self._segm_results = json.load(f)
        return files

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's metrics plus ``segm_leaderboard_AP50``."""
        self._segm_results = None
        metrics = super().compute_metrics(results)
        if self.format_only or 'segm' not in self.metrics:
            return metrics
        value = leaderboard_ap50(
            self._coco_api, self._segm_results or [], img_ids=self.img_ids)
        self._segm_results = None
        metrics[self.LEADERBOARD_KEY] = round(value, 4)
        MMLogger.get_current_instance().info(
            f'segm AP50 as the leaderboard computes it (COCOeval defaults, '
            f'maxDets=100 per image and category): {value:.4f}')
        return metrics


__all__ = ['CellCocoMetric']

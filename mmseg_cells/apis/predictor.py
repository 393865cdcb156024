"""Memory-frugal, tiled Mask R-CNN prediction for cell images."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from mmseg_cells.models.plugins import gate_bottleneck_plugins_in_place

from .detections import Detections
from .fast_roi import mask_probs, predict_bbox
from .fast_rpn import predict_proposals
from .inference_model import rewrite_for_inference
from .results import coco_results, instance_label_maps
from .tiling import Core, centres_in_core, predict_tiled, should_tile
from .tta import check_merge_rule, predict_flip_tta
from .work_bounds import WorkBounds

__all__ = ['CellPredictor']

# class colours when the checkpoint has none (the hw3 config's palette)
DEFAULT_PALETTE = ((220, 20, 60), (0, 130, 255), (255, 160, 0),
                   (20, 200, 80))


class CellPredictor:
    """Run a trained Mask R-CNN on whole images, tiling large ones.

    Compared with ``mmdet.apis.inference_detector`` this

    - never pastes N full-image masks: it returns each detection's ``M x M``
      mask probabilities (:class:`~mmseg_cells.apis.Detections`) and
      pastes/encodes them from box-sized crops;
    - predicts images whose longer side exceeds ``tile_above`` and whose
      area exceeds one ``tile_size`` square by overlapping tiles of at most
      ``tile_size`` px (``tile_overlap`` px overlap, balanced sizes), merged
      without duplicates by the tile-core rule of
      :func:`~mmseg_cells.apis.tile_grid`;
    - runs the RoI heads by the fast paths of
      :mod:`mmseg_cells.apis.fast_roi`;
    - optionally merges horizontal/vertical flip test-time augmentation,
      masks included (:func:`~mmseg_cells.apis.predict_flip_tta`);
    - caps each image's proposals and detections by what it can hold and
      skips the masks of detections too weak to change the AP50
      (:class:`~mmseg_cells.apis.WorkBounds`; ``bounds=None`` runs the
      exact path).

    Args:
        config (str | Config): model config.
        checkpoint (str, optional): weights; None keeps the random init.
        device (str, optional): default ``cuda`` when available, else CPU.
        score_thr (float, optional): overrides ``test_cfg.rcnn.score_thr``.
        max_per_img (int, optional): overrides
            ``test_cfg.rcnn.max_per_img`` (also applied after tile merging).
        tile_size (int): tile side for large images. Defaults to 1024.
        tile_overlap (int): overlap between tiles; must exceed the largest
            cell diameter. Defaults to 192 (real cells: box side <= ~110 px).
        tile_above (int): tile images whose longer side exceeds this and
            whose area exceeds ``tile_size ** 2`` (a 2000 x 475 image is
            smaller than one tile: tiling it would only add overlap work).
            Defaults to 1600; 0 disables tiling.
        tta (bool): flip test-time augmentation. Defaults to False.
        tta_merge (str): how TTA merges the views' boxes: ``'nms'`` or
            ``'cluster'`` (:func:`~mmseg_cells.apis.tta.fuse_views`).
            Defaults to ``'nms'``.
        optimize (bool): apply the inference-only rewrites of
            :meth:`optimize` (BN folded into convs; channels-last convs on
            CPU), each checked on a probe input. Defaults to True.
        bounds (WorkBounds, optional): per-image work caps that keep the
            AP50 (:class:`~mmseg_cells.apis.WorkBounds`); None runs the
            exact path (the config's fixed caps only). Defaults to
            ``WorkBounds()``.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 score_thr: Optional[float] = None,
                 max_per_img: Optional[int] = None,
                 tile_size: int = 1024,
                 tile_overlap: int = 192,
                 tile_above: int = 1600,
                 tta: bool = False,
                 optimize: bool = True,
                 tta_merge: str = 'nms',
                 bounds: Optional[WorkBounds] = WorkBounds()) -> None:
        from mmdet.apis import init_detector

        from mmseg_cells.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(config) if isinstance(config, str) else \
            config.copy()
        cfg.model.backbone.init_cfg = None  # weights come from checkpoint
        rcnn = cfg.model.test_cfg.rcnn
        if score_thr is not None:
            rcnn.score_thr = float(score_thr)
        if max_per_img is not None:
            rcnn.max_per_img = int(max_per_img)
        if tile_overlap >= tile_size:
            raise ValueError('tile_overlap must be smaller than tile_size')
        self.device = device or ('cuda'
                                 if torch.cuda.is_available() else 'cpu')
        self.model = init_detector(cfg, checkpoint, device=self.device)
        # init_detector may put warnings.simplefilter('once') in front of
        # every filter; keep the pkg_resources deprecation silenced
        from mmseg_cells.compat import silence_pkg_resources_deprecation
        silence_pkg_resources_deprecation()
        self.model.eval()
        # CBAM inside mmdet ResNet bottlenecks of any config gates in place
        gate_bottleneck_plugins_in_place(self.model)
        self.cfg = cfg
        self.max_per_img = int(rcnn.max_per_img)
        self.mask_thr = float(rcnn.get('mask_thr_binary', 0.5))
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.tile_above = tile_above
        self.tta = tta
        self.tta_merge = check_merge_rule(tta_merge)
        self.bounds = bounds
        self.classes = tuple(self.model.dataset_meta.get('classes', ()))
        # names and colours for the outputs, with fallbacks for checkpoints
        # that carry no dataset meta
        n = self.model.roi_head.bbox_head.num_classes
        self.class_names = self.classes or tuple(
            f'class{i + 1}' for i in range(n))
        self.palette = tuple(
            tuple(c) for c in self.model.dataset_meta.get('palette')
            or DEFAULT_PALETTE)
        self.pipeline = Compose(self._pipeline_cfg(cfg))
        self.channels_last = False
        if optimize:
            self.optimize()

    def optimize(self) -> bool:
        """Rewrite ``self.model`` for fast inference, keeping its outputs:
        BN folded into convs, and on CPU channels-last convs
        (:func:`~mmseg_cells.apis.rewrite_for_inference`, checked on a
        probe input; a rewrite that changes the outputs or fails is
        dropped with a warning). Returns whether the rewrite was kept.

        The rewritten model is meant for this predictor (mmdet's own
        ``inference_detector`` would hand its channels-last maps to mmcv's
        RoIAlign); build with ``optimize=False`` to use the model
        elsewhere.
        """
        channels_last = torch.device(self.device).type == 'cpu'
        self.model, kept = rewrite_for_inference(self.model, channels_last)
        self.channels_last = channels_last and kept
        return kept

    @staticmethod
    def _pipeline_cfg(cfg: Config) -> list:
        """The test pipeline without file loading and annotations."""
        ds = cfg.test_dataloader.dataset
        while 'dataset' in ds:
            ds = ds.dataset
        steps = []
        for t in ds.pipeline:
            kind = t['type'].split('.')[-1]
            if kind.startswith('Load'):
                continue
            if kind == 'PackDetInputs':
                t = dict(t, meta_keys=('img_id', 'ori_shape', 'img_shape',
                                       'scale_factor'))
            steps.append(t)
        return steps

    # ------------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, bgr: np.ndarray) -> Tuple[tuple, np.ndarray, object]:
        """Features, resize factors ``w, h, w, h`` (float32) and box
        detections (network-input coordinates) for one BGR array; with
        :attr:`bounds`, capped for its size and without the detections
        that get no mask."""
        data = self.pipeline(
            dict(img=bgr, img_id=0, img_shape=bgr.shape[:2],
                 ori_shape=bgr.shape[:2]))
        data = self.model.data_preprocessor(
            dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
            False)
        samples = data['data_samples']
        feats = self.model.extract_feat(data['inputs'])
        metas = [s.metainfo for s in samples]
        h, w = bgr.shape[:2]
        rpn_cfg = self.model.rpn_head.test_cfg
        rcnn_cfg = self.model.roi_head.test_cfg
        if self.bounds is not None:
            rpn_cfg = self.bounds.rpn_cfg(rpn_cfg, h, w)
            rcnn_cfg = self.bounds.rcnn_cfg(rcnn_cfg, h, w)
        rpn = self._predict_rpn(feats, metas, rpn_cfg)
        dets = self._predict_bbox(feats, metas, rpn, rcnn_cfg)
        if self.bounds is not None:
            dets = dets[self.bounds.needs_mask(dets.scores)]
        scale = np.array(metas[0]['scale_factor'] * 2, np.float32)
        return feats, scale, dets

    def _predict_rpn(self, feats, metas: List[dict], cfg=None) -> list:
        """RPN proposals of one image (network-input coordinates) under
        ``cfg`` (default: the RPN's test config); with :attr:`bounds` by
        :func:`~mmseg_cells.apis.fast_rpn.predict_proposals` (``topk``
        instead of a full sort per level), else by mmdet's code."""
        head = self.model.rpn_head
        if self.bounds is not None:
            return predict_proposals(head, feats, metas, cfg)
        return head.predict_by_feat(*head(feats), batch_img_metas=metas,
                                    cfg=cfg, rescale=False)

    def _predict_bbox(self, feats, metas: List[dict], rpn: list, cfg=None):
        """The RoI box head's detections of one image under ``cfg``
        (default: the head's test config;
        :func:`~mmseg_cells.apis.fast_roi.predict_bbox`)."""
        return predict_bbox(self.model.roi_head, feats, metas, rpn, cfg)

    def _mask_probs(self, feats, boxes: torch.Tensor,
                    labels: torch.Tensor) -> torch.Tensor:
        """(N, M, M) mask probabilities for boxes in network-input coords
        (:func:`~mmseg_cells.apis.fast_roi.mask_probs`)."""
        return mask_probs(self.model.roi_head, feats, boxes, labels)

    def _predict_array(self,
                       bgr: np.ndarray,
                       core: Optional[Core] = None) -> Detections:
        """Detections of one (tile) image, optionally with flip TTA.

        With ``core`` (a tile's core, see
        :func:`~mmseg_cells.apis.predict_tiled`) the boxes whose centre
        lies outside it are dropped before the mask head runs.
        """
        if self.tta:
            return predict_flip_tta(
                bgr, self._forward, self._mask_probs,
                dict(self.model.roi_head.test_cfg.nms), self.max_per_img,
                core, merge=self.tta_merge)
        h, w = bgr.shape[:2]
        feats, scale, dets = self._forward(bgr)
        if core is not None:
            dets = dets[centres_in_core(dets.bboxes, core, scale)]
        probs = self._mask_probs(feats, dets.bboxes, dets.labels)
        return Detections.from_network(dets.bboxes, dets.scores, dets.labels,
                                       probs, scale, h, w)

    def predict(self, rgb: np.ndarray) -> Detections:
        """Predict one RGB ``uint8`` image (H, W, 3) of any size."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an H x W x 3 image, got {rgb.shape}')
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        h, w = rgb.shape[:2]
        if not should_tile(h, w, self.tile_size, self.tile_above):
            return self._predict_array(bgr)
        return predict_tiled(self._predict_array, bgr, self.tile_size,
                             self.tile_overlap, self.max_per_img)

    # ------------------------------------------------------------------
    def to_coco_results(self, dets: Detections, image_id: int,
                        category_ids: Optional[Sequence[int]] = None
                        ) -> List[dict]:
        """COCO results entries of one image, masks binarised at the
        config's ``mask_thr_binary``
        (:func:`~mmseg_cells.apis.coco_results`)."""
        return coco_results(dets, image_id, self.mask_thr, category_ids)

    def label_maps(self, dets: Detections) -> Dict[int, np.ndarray]:
        """Instance-id maps per class, overlaps by published score, masks
        binarised at the config's ``mask_thr_binary``
        (:func:`~mmseg_cells.apis.instance_label_maps`)."""
        return instance_label_maps(dets, self.mask_thr)

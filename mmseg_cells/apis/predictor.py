"""Memory-frugal, tiled Mask R-CNN prediction for cell images."""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from mmseg_cells.mask_codec import encode_crop_rle, paste_mask_crop
from mmseg_cells.models.plugins import gate_bottleneck_plugins_in_place


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
    def empty(cls, height: int, width: int, mask_size: int = 28):
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
            np.zeros(0, np.int64), np.zeros((0, mask_size, mask_size),
                                            np.float32), height, width)

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

    def iter_masks(self, threshold: float = 0.5):
        """Yield ``(index, crop_bool, x0, y0)`` per detection.

        The crop is the binary mask restricted to the box's pixel range, as
        mmdet's ``FCNMaskHead`` would paste it into the full image.
        """
        for i in range(len(self)):
            crop, x0, y0 = paste_mask_crop(self.mask_probs[i], self.bboxes[i],
                                           self.height, self.width,
                                           threshold)
            yield i, crop, x0, y0


def tile_grid(length: int, tile: int,
              overlap: int) -> List[Tuple[int, int, int, int]]:
    """Split ``[0, length)`` into overlapping tiles and disjoint cores.

    Returns ``(start, end, core_start, core_end)`` per tile. The fewest
    tiles of at most ``tile`` pixels that overlap by at least ``overlap``
    are used, all of the same length (balanced: a 2000 px side becomes
    three 795 px tiles, not three of 1024 px, two of them mostly overlap);
    cores partition ``[0, length)``, each boundary midway in the overlap of
    two neighbouring tiles. A detection is kept only by the tile whose core
    holds its box centre, so a cell crossing a tile border is predicted
    once, by a tile that contains all of it as long as the cell is smaller
    than half the overlap on either side of the centre.
    """
    if length <= tile:
        return [(0, length, 0, length)]
    if overlap >= tile:
        raise ValueError('overlap must be smaller than tile')
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)  # <= tile
    starts = [i * (size - overlap) for i in range(n - 1)] + [length - size]
    spans = [(s, s + size) for s in starts]
    out = []
    for i, (s, e) in enumerate(spans):
        core_s = 0 if i == 0 else (s + spans[i - 1][1]) // 2
        core_e = length if i == len(spans) - 1 else (spans[i + 1][0] + e) // 2
        out.append((s, e, core_s, core_e))
    return out


def predict_tiled(predict_fn: Callable[..., Detections],
                  img: np.ndarray, tile_size: int, tile_overlap: int,
                  max_per_img: int) -> Detections:
    """Run ``predict_fn`` on overlapping tiles of ``img`` and merge.

    ``predict_fn(tile, core)`` gets the tile and its core (``x0, x1, y0,
    y1`` in tile pixels) so that it can skip the masks of boxes it will lose.
    Each tile's detections are shifted to image coordinates and kept only if
    their box centre lies in the tile's core (:func:`tile_grid`), so no cell
    is reported twice; the best ``max_per_img`` by score are returned.
    """
    h, w = img.shape[:2]
    parts = []
    for ys, ye, cys, cye in tile_grid(h, tile_size, tile_overlap):
        for xs, xe, cxs, cxe in tile_grid(w, tile_size, tile_overlap):
            d = predict_fn(np.ascontiguousarray(img[ys:ye, xs:xe]),
                           (cxs - xs, cxe - xs, cys - ys, cye - ys))
            if not len(d):
                continue
            d.bboxes = d.bboxes + np.array([xs, ys, xs, ys], np.float32)
            cx = (d.bboxes[:, 0] + d.bboxes[:, 2]) / 2
            cy = (d.bboxes[:, 1] + d.bboxes[:, 3]) / 2
            inside = (cx >= cxs) & (cx < cxe) & (cy >= cys) & (cy < cye)
            parts.append(d.select(inside))
    dets = Detections.concat(parts, h, w)
    order = np.argsort(-dets.scores, kind='stable')[:max_per_img]
    return dets.select(order)


def _nchw(feats):
    """Contiguous (NCHW) copies of channels-last maps, for mmdet/mmcv code
    that needs them (mmcv's RoIAlign ignores strides)."""
    return tuple(f.contiguous() for f in feats)


def roi_pool(layer, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """``layer(feat, rois)``; mmcv's average-mode ``RoIAlign`` on CPU runs
    as :func:`~mmseg_cells.ops.roi_align_nhwc` (same values up to float32
    rounding, ~4x faster on 2 cores, reads channels-last maps without a
    copy). Other layers and devices call ``layer`` (which needs a
    contiguous NCHW ``feat``)."""
    from mmcv.ops import RoIAlign
    if type(layer) is RoIAlign and layer.pool_mode == 'avg' and \
            not layer.use_torchvision and feat.device.type == 'cpu':
        from mmseg_cells.ops import roi_align_nhwc
        return roi_align_nhwc(feat, rois, layer.output_size,
                              layer.spatial_scale, layer.sampling_ratio,
                              layer.aligned)
    return layer(feat.contiguous(), rois)


def extract_roi_feats(extractor, feats, rois: torch.Tensor) -> torch.Tensor:
    """``extractor(feats[:num_inputs], rois)`` for inference.

    For mmdet's ``SingleRoIExtractor`` the same values with less work: the
    RoIs of each pyramid level go through that level's RoIAlign as there
    (by :func:`roi_pool`), but when they all map to one level (typical for
    cells, which all pool from P2) its output is returned as is instead of
    being copied into a zero-filled tensor, and levels without RoIs are
    skipped instead of adding ``0 * feats[i].sum()`` (a training-time trick
    that keeps every level in the autograd graph for DDP) to every output.
    Other extractors get contiguous (NCHW) maps.
    """
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    feats = feats[:extractor.num_inputs]
    if type(extractor) is not SingleRoIExtractor or len(rois) == 0:
        return extractor(_nchw(feats), rois)
    rois = rois.type_as(feats[0])
    if len(feats) == 1:
        return roi_pool(extractor.roi_layers[0], feats[0], rois)
    levels = extractor.map_roi_levels(rois, len(feats))
    out = None
    for i in range(len(feats)):
        inds = (levels == i).nonzero(as_tuple=False).squeeze(1)
        if inds.numel() == 0:
            continue
        if inds.numel() == len(rois):  # all RoIs on this level, in order
            return roi_pool(extractor.roi_layers[i], feats[i], rois)
        part = roi_pool(extractor.roi_layers[i], feats[i], rois[inds])
        if out is None:
            # every RoI maps to exactly one level: all rows get written
            out = part.new_empty((len(rois), ) + part.shape[1:])
        out[inds] = part
    return out


SCORE_DECIMALS = 5


def published_score(score: float) -> float:
    """A detection's score as written to ``test-results.json`` (5
    decimals); label maps order overlaps by this value."""
    return round(float(score), SCORE_DECIMALS)


class CellPredictor:
    """Run a trained Mask R-CNN on whole images, tiling large ones.

    Compared with ``mmdet.apis.inference_detector`` this

    - never pastes N full-image masks: it returns each detection's ``M x M``
      mask probabilities and pastes/encodes them from box-sized crops;
    - predicts images whose longer side exceeds ``tile_above`` and whose
      area exceeds one ``tile_size`` square by overlapping tiles of at most
      ``tile_size`` px (``tile_overlap`` px overlap, balanced sizes), merged
      without duplicates by the tile-core rule of :func:`tile_grid`;
    - optionally merges horizontal/vertical flip test-time augmentation,
      masks included (:meth:`predict`).

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
        optimize (bool): apply the inference-only rewrites of
            :meth:`optimize` (BN folded into convs; channels-last convs on
            CPU), each checked on a probe input. Defaults to True.
    """

    MASK_CHUNK = 128  # RoIs per mask-head call

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
                 optimize: bool = True) -> None:
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
        self.classes = tuple(self.model.dataset_meta.get('classes', ()))
        self.pipeline = Compose(self._pipeline_cfg(cfg))
        self.channels_last = False
        if optimize:
            self.optimize()

    def optimize(self) -> bool:
        """Rewrite the model for fast inference, keeping its outputs.

        * every BN that directly follows a conv is folded into it
          (``mmcv.cnn.fuse_conv_bn``; in eval mode BN is a per-channel
          affine map), which saves one pass over each feature map;
        * on CPU, conv weights are made channels-last, so oneDNN runs the
          convolutions without reordering every input and output (the
          backbone and the heads' convs then produce channels-last maps;
          CBAM gates them in that layout). RoI pooling reads them as they
          are (:func:`roi_pool`; mmcv's own RoIAlign reads any input as
          NCHW whatever its strides, so it gets a contiguous copy).

        Measured on 2 CPU cores: ResNet-50 at 768 px 1.5x faster, the mask
        head 1.3x (``benchmarks/predict_throughput.py``). The rewritten
        model is compared with the original on a probe input (features,
        RPN and both RoI heads' outputs); if any differs by more than float
        rounding (e.g. a custom op that ignores memory format) or the probe
        fails (mmcv's deformable convs refuse channels-last input), the
        original is kept, with a warning. Returns whether the rewrite was kept.

        The rewritten ``self.model`` is meant for this predictor: mmdet's
        own ``inference_detector`` would hand its channels-last maps to
        mmcv's RoIAlign; build with ``optimize=False`` to use the model
        elsewhere.
        """
        import copy
        import warnings
        from mmcv.cnn import fuse_conv_bn
        original = copy.deepcopy(self.model)
        before = self._probe_outputs()
        fuse_conv_bn(self.model)
        channels_last = torch.device(self.device).type == 'cpu'
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        try:
            after = self._probe_outputs()
            worst = max(((a - b).abs().max() /
                         (a.abs().max() + 1e-6)).item()
                        for a, b in zip(before, after))
            if worst <= 1e-3:
                return True
            why = f'changed the outputs (relative difference {worst:.2g})'
        except RuntimeError as err:  # e.g. an op that needs NCHW input
            why = f'failed: {err}'
        warnings.warn(
            f'CellPredictor: the inference rewrite (BN folding, channels-last'
            f' convs) {why}; predicting with the unmodified model')
        self.model = original
        self.channels_last = False
        return False

    @torch.no_grad()
    def _probe_outputs(self) -> List[torch.Tensor]:
        """Model outputs on a fixed random input: pyramid, RPN maps, box
        head scores and deltas, mask logits (used by :meth:`optimize`)."""
        from mmdet.structures.bbox import bbox2roi
        gen = torch.Generator().manual_seed(0)
        dev = next(self.model.parameters()).device
        x = torch.randn((1, 3, 96, 128), generator=gen).to(dev)
        feats = self.model.extract_feat(x)
        cls, reg = self.model.rpn_head(feats)
        head = self.model.roi_head
        rois = bbox2roi([torch.tensor(
            [[4., 6., 40., 30.], [50., 10., 90., 80.], [0., 0., 128., 96.]],
            device=dev)])
        outs = list(feats) + list(cls) + list(reg)
        if getattr(head, 'with_bbox', False) and not head.with_shared_head:
            outs += [o for o in head.bbox_head(extract_roi_feats(
                head.bbox_roi_extractor, feats, rois)) if o is not None]
        if getattr(head, 'with_mask', False) and not head.with_shared_head:
            outs.append(head.mask_head(extract_roi_feats(
                head.mask_roi_extractor, feats, rois)))
        return [o.float().contiguous() for o in outs]

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
    def _forward(self, bgr: np.ndarray):
        """Features, image meta and box detections for one BGR array."""
        data = self.pipeline(
            dict(img=bgr, img_id=0, img_shape=bgr.shape[:2],
                 ori_shape=bgr.shape[:2]))
        data = self.model.data_preprocessor(
            dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
            False)
        samples = data['data_samples']
        feats = self.model.extract_feat(data['inputs'])
        rpn = self.model.rpn_head.predict(feats, samples, rescale=False)
        metas = [s.metainfo for s in samples]
        dets = self._predict_bbox(feats, metas, rpn)
        return feats, metas[0], dets

    def _predict_bbox(self, feats, metas, rpn):
        """``roi_head.predict_bbox`` for one image, with the RoI features
        from :func:`extract_roi_feats` (same values, less work)."""
        from mmdet.models.roi_heads import StandardRoIHead
        from mmdet.structures.bbox import bbox2roi
        head = self.model.roi_head
        cfg = head.test_cfg
        if type(head) is not StandardRoIHead or head.with_shared_head or \
                len(rpn) != 1 or len(rpn[0]) == 0:
            return head.predict_bbox(_nchw(feats), metas, rpn, cfg,
                                     rescale=False)[0]
        rois = bbox2roi([rpn[0].bboxes])
        cls_score, bbox_pred = head.bbox_head(
            extract_roi_feats(head.bbox_roi_extractor, feats, rois))
        return head.bbox_head.predict_by_feat(
            rois=(rois, ), cls_scores=(cls_score, ), bbox_preds=(bbox_pred, ),
            batch_img_metas=metas, rcnn_test_cfg=cfg, rescale=False)[0]

    @torch.no_grad()
    def _mask_probs(self, feats, boxes: torch.Tensor,
                    labels: torch.Tensor) -> torch.Tensor:
        """(N, M, M) mask probabilities for boxes in network-input coords."""
        from mmdet.structures.bbox import bbox2roi
        head = self.model.roi_head
        if boxes.shape[0] == 0:  # no roi: nothing to run (empty probs)
            return boxes.new_zeros((0, 1, 1))
        out = []
        fast = self._fast_mask_tail()
        if not fast:  # mmdet's head with mmcv's RoIAlign: NCHW maps
            feats = _nchw(feats)
        # In chunks: the mask head's upsampled 256 x 28 x 28 maps take
        # 0.8 MB per RoI, 0.8 GB for 1000 detections at once.
        for i in range(0, len(boxes), self.MASK_CHUNK):
            rois = bbox2roi([boxes[i:i + self.MASK_CHUNK]])
            lab = labels[i:i + self.MASK_CHUNK]
            if fast:
                preds = self._mask_logits_fast(feats, rois, lab)
            else:
                preds = head._mask_forward(feats, rois)['mask_preds']
                if preds.shape[1] > 1:  # class-specific masks
                    preds = preds[torch.arange(len(lab)), lab]
                else:
                    preds = preds[:, 0]
            out.append(preds.sigmoid())
        return torch.cat(out)

    def _fast_mask_tail(self) -> bool:
        """Whether the mask head is mmdet's FCNMaskHead with the standard
        tail (2x2 stride-2 deconv + ReLU, 1x1 logits conv), which
        :meth:`_mask_logits_fast` computes."""
        if getattr(self, '_fast_tail', None) is None:
            from mmcv.cnn.bricks import wrappers
            from torch import nn
            from mmdet.models.roi_heads.mask_heads import FCNMaskHead
            deconvs = (nn.ConvTranspose2d, wrappers.ConvTranspose2d)
            convs = (nn.Conv2d, wrappers.Conv2d)
            head = self.model.roi_head
            mh = head.mask_head
            up, lg = getattr(mh, 'upsample', None), mh.conv_logits
            self._fast_tail = bool(
                type(mh) is FCNMaskHead and not head.with_shared_head
                and mh.upsample_method == 'deconv'
                and type(up) in deconvs
                and up.kernel_size == (2, 2) and up.stride == (2, 2)
                and up.padding == (0, 0) and up.output_padding == (0, 0)
                and up.dilation == (1, 1) and up.groups == 1
                and up.bias is not None and type(lg) in convs
                and lg.kernel_size == (1, 1) and lg.stride == (1, 1)
                and lg.padding == (0, 0) and lg.groups == 1
                and lg.bias is not None)
        return self._fast_tail

    def _mask_logits_fast(self, feats, rois: torch.Tensor,
                          labels: torch.Tensor) -> torch.Tensor:
        """(N, 2S, 2S) mask logits of each RoI's own class.

        The same function as ``FCNMaskHead.forward`` followed by picking the
        label's channel, with the tail restructured: a 2x2 stride-2 deconv
        maps every input pixel to its own 2x2 output block, so it is one
        matrix product ``(N*S*S, C) @ (C, 4*C')``; after the ReLU only the
        label's row of the 1x1 logits conv is applied (a batched
        matrix-vector product) instead of all classes' rows to all RoIs.
        This skips the deconv's layout conversion of its (N, C', 2S, 2S)
        output and 3/4 of the logits conv. Probabilities equal mmdet's up
        to float32 summation order (~1e-6).
        """
        head = self.model.roi_head
        mh = head.mask_head
        x = extract_roi_feats(head.mask_roi_extractor, feats, rois)
        for conv in mh.convs:
            x = conv(x)
        n, c, h, w = x.shape
        up, lg = mh.upsample, mh.conv_logits
        o = up.out_channels
        # deconv weight (C, C', 2, 2) -> (C, 4 * C'), column (a*2+b)*C'+o'
        wd = up.weight.permute(0, 2, 3, 1).reshape(c, 4 * o)
        y = torch.addmm(up.bias.repeat(4), x.permute(0, 2, 3, 1).reshape(
            n * h * w, c), wd).relu_()  # (N*S*S, 4*C'), rows (n, y, x)
        wl = lg.weight.view(lg.out_channels, o)
        cls = labels if lg.out_channels > 1 else torch.zeros_like(labels)
        logits = torch.bmm(y.view(n, h * w * 4, o), wl[cls].unsqueeze(2))
        logits = logits.view(n, h, w, 2, 2) + lg.bias[cls].view(n, 1, 1, 1, 1)
        # (n, y, x, a, b) -> (n, 2y+a, 2x+b)
        return logits.permute(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * w)

    @staticmethod
    def _in_core(boxes: torch.Tensor, scale: np.ndarray,
                 core: Optional[Tuple[int, int, int, int]]) -> torch.Tensor:
        """Which boxes (network-input coords) have their centre in ``core``
        (``x0, x1, y0, y1`` in image pixels); all when ``core`` is None."""
        if core is None:
            return boxes.new_ones(len(boxes), dtype=torch.bool)
        cx = (boxes[:, 0] + boxes[:, 2]) / (2 * float(scale[0]))
        cy = (boxes[:, 1] + boxes[:, 3]) / (2 * float(scale[1]))
        x0, x1, y0, y1 = core
        return (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)

    def _predict_array(
            self,
            bgr: np.ndarray,
            core: Optional[Tuple[int, int, int, int]] = None) -> Detections:
        """Detections of one (tile) image, optionally with flip TTA.

        With ``core`` (a tile's core, see :func:`predict_tiled`) the boxes
        whose centre lies outside it are dropped before the mask head runs.
        """
        h, w = bgr.shape[:2]
        feats, meta, dets = self._forward(bgr)
        scale = np.array(meta['scale_factor'] * 2, np.float32)  # (w,h,w,h)
        if not self.tta:
            dets = dets[self._in_core(dets.bboxes, scale, core)]
            probs = self._mask_probs(feats, dets.bboxes, dets.labels)
            return Detections(
                dets.bboxes.cpu().numpy() / scale,
                dets.scores.cpu().numpy(),
                dets.labels.cpu().numpy().astype(np.int64),
                probs.cpu().numpy().astype(np.float32), h, w)
        return self._predict_tta(bgr, feats, meta, dets, scale, core)

    def _predict_tta(self, bgr, feats, meta, dets, scale,
                     core=None) -> Detections:
        """Flip TTA: boxes of the original, h-flipped and v-flipped images
        are merged by class-wise NMS; each kept box's mask is the mean of the
        mask head's probabilities for that box in all three views (mapped
        into each view and flipped back), so masks are merged, not just
        boxes."""
        from mmcv.ops import batched_nms
        h, w = bgr.shape[:2]
        views = [(None, feats, meta, dets)]
        for direction in ('horizontal', 'vertical'):
            flipped = np.ascontiguousarray(
                bgr[:, ::-1] if direction == 'horizontal' else bgr[::-1])
            f_feats, f_meta, f_dets = self._forward(flipped)
            views.append((direction, f_feats, f_meta, f_dets))
        iw, ih = w * scale[0], h * scale[1]  # network-input size

        def flip_boxes(b: torch.Tensor, direction) -> torch.Tensor:
            b = b.clone()
            if direction == 'horizontal':
                b[:, [0, 2]] = iw - b[:, [2, 0]]
            elif direction == 'vertical':
                b[:, [1, 3]] = ih - b[:, [3, 1]]
            return b

        boxes = torch.cat([flip_boxes(d.bboxes, v) for v, _, _, d in views])
        scores = torch.cat([d.scores for *_, d in views])
        labels = torch.cat([d.labels for *_, d in views])
        nms_cfg = dict(self.model.roi_head.test_cfg.nms)
        kept, keep = batched_nms(boxes, scores, labels, nms_cfg)
        keep = keep[:self.max_per_img]
        keep = keep[self._in_core(boxes[keep], scale, core)]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        probs = 0
        for direction, v_feats, _, _ in views:
            p = self._mask_probs(v_feats, flip_boxes(boxes, direction), labels)
            if direction == 'horizontal':
                p = p.flip(-1)
            elif direction == 'vertical':
                p = p.flip(-2)
            probs = probs + p
        probs = probs / len(views)
        return Detections(boxes.cpu().numpy() / scale,
                          scores.cpu().numpy(),
                          labels.cpu().numpy().astype(np.int64),
                          probs.cpu().numpy().astype(np.float32), h, w)

    def predict(self, rgb: np.ndarray) -> Detections:
        """Predict one RGB ``uint8`` image (H, W, 3) of any size."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an H x W x 3 image, got {rgb.shape}')
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        h, w = rgb.shape[:2]
        if not self.tile_above or max(h, w) <= self.tile_above or \
                h * w <= self.tile_size**2:
            return self._predict_array(bgr)
        return predict_tiled(self._predict_array, bgr, self.tile_size,
                             self.tile_overlap, self.max_per_img)

    # ------------------------------------------------------------------
    def to_coco_results(self, dets: Detections, image_id: int,
                        category_ids: Optional[Sequence[int]] = None
                        ) -> List[dict]:
        """COCO results entries (RLE ``counts`` as str) for one image.

        Detections whose binary mask is empty are dropped (an empty mask
        can only be a false positive). ``category_ids`` maps label index to
        category id (default ``label + 1``, i.e. class1..class4 -> 1..4).
        """
        out = []
        for i, crop, x0, y0 in dets.iter_masks(self.mask_thr):
            if not crop.any():
                continue
            x1, y1, x2, y2 = (float(v) for v in dets.bboxes[i])
            label = int(dets.labels[i])
            out.append(
                dict(
                    image_id=int(image_id),
                    category_id=int(category_ids[label]
                                    if category_ids else label + 1),
                    score=published_score(dets.scores[i]),
                    bbox=[round(x1, 2), round(y1, 2),
                          round(x2 - x1, 2), round(y2 - y1, 2)],
                    segmentation=encode_crop_rle(crop, x0, y0, dets.height,
                                                 dets.width)))
        return out

    def label_maps(self, dets: Detections) -> Dict[int, np.ndarray]:
        """Instance-id maps per class (training layout), overlaps by score.

        Every pixel belongs to at most one instance: detections are painted
        in ascending order of the score written to the results file
        (:func:`published_score`), so the highest-scoring one wins, across
        classes too; between equal written scores the later detection (the
        later results entry) wins. Ordering by the written score, not the
        float32 one, makes the maps reproducible from ``test-results.json``
        alone: two detections whose scores differ below its 5 decimals
        would otherwise be ordered by digits no reader can see.
        Instance ids are renumbered 1..K per class; classes
        without an instance are absent from the returned dict (keys are
        0-based label indices).
        """
        owner = np.full((dets.height, dets.width), -1, np.int32)
        crops = {}
        for i, crop, x0, y0 in dets.iter_masks(self.mask_thr):
            crops[i] = (crop, x0, y0)
        written = np.array([published_score(v) for v in dets.scores])
        for i in np.argsort(written, kind='stable'):
            if i not in crops:
                continue
            crop, x0, y0 = crops[i]
            ch, cw = crop.shape
            region = owner[y0:y0 + ch, x0:x0 + cw]
            region[crop] = i
        maps = {}
        present = np.unique(owner[owner >= 0])
        for label in np.unique(dets.labels[present]) if len(present) else []:
            idx = present[dets.labels[present] == label]
            lut = np.zeros(len(dets) + 1, np.float64)
            lut[idx + 1] = np.arange(1, len(idx) + 1)
            maps[int(label)] = lut[owner + 1]
        return maps


__all__ = ['CellPredictor', 'Detections', 'predict_tiled', 'published_score',
           'tile_grid']

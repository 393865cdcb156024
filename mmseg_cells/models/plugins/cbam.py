"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018)."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS


@MODELS.register_module()
class CBAM(BaseModule):
    """Channel attention followed by spatial attention, as a ResNet plugin.

    Channel attention: the feature map is average- and max-pooled over space;
    both ``C``-vectors go through one shared MLP (``C -> C/r -> C``) and the
    two outputs are summed into a per-channel gate. Spatial attention: the
    channel-wise mean and max maps are stacked and convolved by one
    ``k x k`` conv into a per-pixel gate. The two gates are applied in
    sequence (channel first), as in the paper.

    Used through mmdet's ResNet ``plugins=`` mechanism, which passes
    ``in_channels``::

        plugins=[dict(cfg=dict(type='CBAM', reduction=16),
                      stages=(True, True, True, True),
                      position='after_conv3')]

    ``after_conv3`` is after the last conv + BN of each bottleneck and before
    the residual addition, which is where the paper inserts CBAM.

    Initialisation (``identity_init=True``, the default). CBAM is grafted
    onto an ImageNet-pretrained ResNet whose residual branches are tuned to
    their current scale. With the paper's plain ``sigmoid`` gates and random
    init, each gate starts near ``sigmoid(0) = 0.5`` with pixel/channel
    dependent noise, so at step 0 every residual branch would be multiplied
    by about ``0.25`` and scrambled, destroying what the pretrained weights
    compute. Instead each gate is ``2 * sigmoid(z)`` and the layer producing
    ``z`` (the MLP's output layer and the spatial conv) starts at zero, so
    both gates are exactly 1 and CBAM is the identity at step 0. The gates
    still span the paper's range (and up to 2, which BN could absorb
    anyway), and the gradient at ``z = 0`` is ``0.5`` (the slope of the
    plain sigmoid at its steepest, doubled), so attention is learnt from the
    first step: the zero-initialised layers get non-zero gradients at step 0
    and the MLP's hidden layer from step 1 on (the same scheme as
    zero-initialising the last BN of a residual block). ``identity_init=False``
    gives the paper's plain sigmoid gates with default (Kaiming-uniform)
    initialisation, for training from scratch.

    Args:
        in_channels (int): Channels of the input feature map.
        reduction (int): Channel reduction ratio ``r`` of the shared MLP.
            Defaults to 16.
        kernel_size (int): Kernel size ``k`` of the spatial attention conv
            (odd). Defaults to 7.
        use_channel (bool): Apply channel attention. Defaults to True.
        use_spatial (bool): Apply spatial attention. Defaults to True.
        identity_init (bool): Start as the identity (see above).
            Defaults to True.
        inplace (bool): Without autograd (inference), gate the input tensor
            in place instead of allocating the output, like
            ``nn.ReLU(inplace=True)``; only for inputs nobody else reads,
            e.g. the BN output CBAM receives inside mmdet's ``Bottleneck``
            (:class:`~mmseg_cells.models.ResNetStagePlugins`, the configs'
            backbone, and :class:`~mmseg_cells.apis.CellPredictor` switch it
            on there: :func:`gate_bottleneck_plugins_in_place`). It avoids a feature-map-sized allocation per
            block: on 2 CPU cores, a C2 map of 256 x 192 x 192 takes 37 ms
            gated out of place and 11 ms in place, the fresh 38 MB buffer's
            page faults being most of the difference. Ignored under
            autograd. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config. Left
            None so that :meth:`init_weights` keeps the scheme above.
    """

    _abbr_ = 'cbam'

    def __init__(self,
                 in_channels: int,
                 reduction: int = 16,
                 kernel_size: int = 7,
                 use_channel: bool = True,
                 use_spatial: bool = True,
                 identity_init: bool = True,
                 inplace: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (use_channel or use_spatial):
            raise ValueError('CBAM needs use_channel or use_spatial')
        if reduction < 1:
            raise ValueError(f'reduction must be >= 1, got {reduction}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.in_channels = in_channels
        self.reduction = reduction
        self.kernel_size = kernel_size
        self.use_channel = use_channel
        self.use_spatial = use_spatial
        self.identity_init = identity_init
        self.inplace = inplace
        self.gate_scale = 2.0 if identity_init else 1.0
        if use_channel:
            hidden = max(in_channels // reduction, 1)
            self.channel_mlp = nn.Sequential(
                nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, in_channels))
        if use_spatial:
            self.spatial_conv = nn.Conv2d(
                2, 1, kernel_size, padding=kernel_size // 2)
        self._reset_gates()

    def _reset_gates(self) -> None:
        if not self.identity_init:
            return
        if self.use_channel:
            nn.init.zeros_(self.channel_mlp[2].weight)
            nn.init.zeros_(self.channel_mlp[2].bias)
        if self.use_spatial:
            nn.init.zeros_(self.spatial_conv.weight)
            nn.init.zeros_(self.spatial_conv.bias)

    def init_weights(self) -> None:
        """Keep the identity initialisation unless an ``init_cfg`` is set."""
        super().init_weights()
        if self.init_cfg is None:
            self._reset_gates()

    def channel_gate(self, x: Tensor) -> Tensor:
        """Per-channel gate of shape (N, C, 1, 1)."""
        n, c = x.shape[:2]
        flat = x.flatten(2)
        return self._gate_from_pooled(flat.mean(dim=2),
                                      flat.amax(dim=2)).view(n, c, 1, 1)

    def spatial_gate(self, x: Tensor) -> Tensor:
        """Per-pixel gate of shape (N, 1, H, W)."""
        return self._gate_from_maps(
            x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True))

    def _gate_from_pooled(self, avg: Tensor, mx: Tensor) -> Tensor:
        """(N, C) channel gate from the (N, C) average and max descriptors."""
        n = avg.shape[0]
        # one MLP call on the stacked avg/max descriptors (2N x C)
        z = self.channel_mlp(torch.cat([avg, mx], dim=0))
        return torch.sigmoid(z[:n] + z[n:]) * self.gate_scale

    def _gate_from_maps(self, avg: Tensor, mx: Tensor) -> Tensor:
        """(N, 1, H, W) spatial gate from the channel mean and max maps."""
        desc = torch.cat([avg, mx], dim=1)
        return torch.sigmoid(self.spatial_conv(desc)) * self.gate_scale

    def forward(self, x: Tensor) -> Tensor:
        """Apply channel then spatial attention.

        Computes ``x * g_c * g_s`` bit-identically to the two gates above,
        with one full-size allocation (the output, which the spatial gate
        is applied to in place; none with ``inplace``) instead of one per
        gate. Under autograd a custom backward (:class:`_CBAMFunction`)
        replaces the ~15 full-size temporaries that autograd would create
        for the pooling and gating ops by one (plus two boolean masks) and
        keeps only ``x`` and small tensors for it.
        """
        if torch.is_grad_enabled() and (x.requires_grad or any(
                p.requires_grad for p in self.parameters())):
            return _CBAMFunction.apply(x, self, *self.parameters())
        with torch.no_grad():
            return _cbam_forward(self, x, inplace=self.inplace)[0]

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'kernel_size={self.kernel_size}, '
                f'use_channel={self.use_channel}, '
                f'use_spatial={self.use_spatial}, '
                f'identity_init={self.identity_init}, '
                f'inplace={self.inplace}')


def _cbam_forward(m: CBAM, x: Tensor, for_backward: bool = False,
                  inplace: bool = False):
    """Forward pass without autograd (called under ``no_grad``).

    Returns ``(out, saved)``; ``saved`` holds what the backward of
    :class:`_CBAMFunction` needs besides ``x`` (only with
    ``for_backward``): the channel gate ``g`` (N, C), the spatial gate
    ``s`` (N, 1, H*W), the pooled descriptors and the positions of the
    channel-wise maxima.

    The output is bit-identical to ``x1 = x * channel_gate(x)`` followed by
    ``x1 * spatial_gate(x1)``, with fewer passes over the map: one
    full-size allocation (the output, gated in place by the spatial gate;
    none with ``inplace``, which gates ``x`` itself),
    the two channel descriptors written straight into the conv's input
    (no ``cat``), and the spatial gate's power-of-two scale folded into the
    channel gate (``x * (2 g)`` is exactly ``2 (x * g)``; the descriptors
    of the doubled map are exactly doubled, which the conv undoes by
    halving its weights, and ``(2 x1) * sigmoid`` is exactly
    ``x1 * (2 sigmoid)``), so no pass over the map applies the scale.

    A channels-last ``x`` (a model converted with
    ``.to(memory_format=torch.channels_last)`` for inference) is gated in
    its own layout and the output stays channels-last; the values equal
    the contiguous path's up to float32 summation order in the pooling.
    """
    n, c, h, w = x.shape
    hw = h * w
    # channels-last maps (inference with a channels-last model) are gated
    # in their own layout, as (n, hw, c); training always uses (n, c, hw)
    nhwc = not for_backward and not x.is_contiguous() and \
        x.is_contiguous(memory_format=torch.channels_last)
    if nhwc:
        def to_flat(t: Tensor) -> Tensor:
            return t.permute(0, 2, 3, 1).view(n, hw, c)
        d_px, d_ch, pix = 1, 2, (n, hw, 1)  # reduce pixels / channels
    else:
        def to_flat(t: Tensor) -> Tensor:
            return t.view(n, c, hw)
        inplace = inplace and x.is_contiguous()
        x = x.contiguous()
        d_px, d_ch, pix = 2, 1, (n, 1, hw)
    flat = to_flat(x)
    g = s = avg = mx = tie_c = None
    desc = None
    out = None  # the output (n, c, h, w), in x's layout
    scale = m.gate_scale
    # folding the scale is exact only for a power of two (1 or 2 here)
    fold = m.use_channel and m.use_spatial and scale != 1 and \
        math.frexp(scale)[0] == 0.5
    if m.use_channel:
        avg, mx = flat.mean(dim=d_px), flat.amax(dim=d_px)
        g = m._gate_from_pooled(avg, mx)
        gate = (g * scale if fold else g).view(n, c, 1, 1)
        out = x.mul_(gate) if inplace else x * gate
    if m.use_spatial:
        src = flat if out is None else to_flat(out)
        desc = x.new_empty((n, 2, h, w))
        torch.mean(src, dim=d_ch, keepdim=True, out=desc[:, :1].view(pix))
        torch.amax(src, dim=d_ch, keepdim=True, out=desc[:, 1:].view(pix))
        if for_backward:  # where the channel maxima are (ties included)
            tie_c = (src == desc[:, 1:].view(n, 1, hw)).nonzero()
        conv = m.spatial_conv
        weight = conv.weight / scale if fold else conv.weight
        z = torch.sigmoid_(conv._conv_forward(desc, weight, conv.bias))
        if out is None:
            gate = z * scale if scale != 1 else z
            out = x.mul_(gate) if inplace else x * gate
        else:
            to_flat(out).mul_(z.view(pix))
        if for_backward:
            s = (z * scale).view(n, 1, hw)
            if fold:
                desc = desc / scale
    if not for_backward:
        return out, None
    a = mc = None
    if desc is not None:
        a, mc = desc[:, :1].reshape(n, 1, hw), desc[:, 1:].reshape(n, 1, hw)
    return out, (g, s, avg, mx, a, mc, tie_c)


def _max_grad(grad: Tensor, ties: Tensor, n: int, c: int, hw: int,
              dim: int):
    """Backward of an ``amax`` over ``dim`` (1: channels, 2: pixels) of an
    (n, c, hw) tensor, as autograd computes it: ``grad`` (the reduced
    positions' gradient) is spread evenly over the maximal elements, whose
    ``nonzero()`` indices are ``ties``. Returns their flat indices into the
    (n, c, hw) tensor and the value to add at each."""
    i_n, i_c, i_p = ties.unbind(1)
    flat_idx = (i_n * c + i_c) * hw + i_p
    if dim == 1:
        red, size = i_n * hw + i_p, n * hw
    else:
        red, size = i_n * c + i_c, n * c
    count = torch.bincount(red, minlength=size)
    return flat_idx, grad.reshape(-1)[red] / count[red].to(grad.dtype)


class _CBAMFunction(torch.autograd.Function):
    """CBAM forward/backward with few full-size temporaries.

    Forward is :func:`_cbam_forward`. Backward, for ``y = x1 * s`` with
    ``x1 = x * g``, ``g = G(mean_hw x, max_hw x)`` (the MLP) and
    ``s = S(mean_c x1, max_c x1)`` (the conv), with ``P = dy * x``:

    * ``ds = sum_c P g`` and ``dg = sum_hw P s + sum_hw x (da / C)
      + (max_c terms)``: matrix-vector products over ``P`` and ``x``;
    * ``da, dm`` (and the conv's parameter gradients) by autograd through
      ``S`` on the small maps, likewise ``d_avg, d_max`` (and the MLP's)
      through ``G``;
    * ``dx = (dy s + da / C + max_c terms) g + d_avg / HW + (max_hw
      terms)``, written into ``P``'s buffer.

    Gradients of the maxima are spread evenly over ties, as for
    ``torch.amax``. The small gate graphs are recomputed in backward under
    the forward's autocast state.
    """

    @staticmethod
    def forward(ctx, x: Tensor, module: CBAM, *params: Tensor) -> Tensor:
        out, saved = _cbam_forward(module, x, for_backward=True)
        ctx.module = module
        ctx.shape = tuple(x.shape)
        dev = x.device.type
        ctx.autocast = (dev, torch.is_autocast_enabled(dev),
                        torch.get_autocast_dtype(dev))
        ctx.save_for_backward(x.contiguous(), *saved)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        x, g, s, avg, mx, a, mc, tie_c = ctx.saved_tensors
        m: CBAM = ctx.module
        n, c, h, w = ctx.shape
        hw = h * w
        params = list(m.parameters())
        want = {id(p) for p in params if p.requires_grad}
        grads = {}
        flat = x.view(n, c, hw)
        dy = dy.contiguous().view(n, c, hw)
        dev, ac_on, ac_dtype = ctx.autocast

        def small_grad(fn, leaves, mods, grad_out):
            """Gradients of ``fn(*leaves)`` w.r.t. leaves and the
            parameters of ``mods`` that require grad."""
            ps = [p for p in mods.parameters() if id(p) in want]
            leaves = [t.detach().requires_grad_() for t in leaves]
            with torch.enable_grad(), torch.autocast(
                    dev, dtype=ac_dtype, enabled=ac_on):
                out = fn(*leaves)
            res = torch.autograd.grad(out, leaves + ps, grad_out)
            for p, gp in zip(ps, res[len(leaves):]):
                grads[id(p)] = gp
            return res[:len(leaves)]

        buf = None  # becomes dx
        dg = None
        if m.use_spatial:
            p_ = dy * flat  # P = dy * x
            if m.use_channel:
                ds = torch.bmm(g.unsqueeze(1).to(p_.dtype), p_)
                dg = torch.bmm(p_, s.transpose(1, 2).to(p_.dtype))
            else:
                ds = p_.sum(dim=1, keepdim=True)
            da, dm = small_grad(
                lambda a_, m_: m._gate_from_maps(a_, m_), [
                    a.view(n, 1, h, w), mc.view(n, 1, h, w)
                ], m.spatial_conv, ds.view(n, 1, h, w).to(s.dtype))
            da = da.reshape(n, 1, hw)
            dm = dm.reshape(n, 1, hw)
            # d(loss)/d(x1) = dy * s + da / C + (max_c terms), into P
            buf = torch.addcmul(da / c, dy, s.to(dy.dtype), out=p_)
            idx, val = _max_grad(dm, tie_c, n, c, hw, 1)
            buf.view(-1).index_add_(0, idx, val.to(buf.dtype))
            if m.use_channel:
                dg = dg + torch.bmm(flat, da.transpose(1, 2)) / c
                # max_c term of dg: x at the maxima times their share of dm
                xg = flat.reshape(-1)[idx]
                dg.view(-1).index_add_(
                    0, (idx // hw), (xg * val).to(dg.dtype))
                dg = dg.view(n, c)
        else:
            buf = dy
        d_in = None
        if m.use_channel:
            if dg is None:  # channel only: dg = sum_hw dy * x
                dg = torch.bmm(dy.reshape(n * c, 1, hw),
                               flat.reshape(n * c, hw, 1)).view(n, c)
            d_avg, d_max = small_grad(
                lambda a_, m_: m._gate_from_pooled(a_, m_), [avg, mx],
                m.channel_mlp, dg.to(g.dtype))
            if ctx.needs_input_grad[0]:
                d_in = torch.addcmul(
                    (d_avg / hw).unsqueeze(2).to(buf.dtype), buf,
                    g.unsqueeze(2).to(buf.dtype),
                    out=None if buf is dy else buf)
                ties = (flat == mx.unsqueeze(2)).nonzero()
                idx, val = _max_grad(d_max, ties, n, c, hw, 2)
                d_in.view(-1).index_add_(0, idx, val.to(d_in.dtype))
        elif ctx.needs_input_grad[0]:
            d_in = buf
        if d_in is not None:
            d_in = d_in.view(n, c, h, w)
        return (d_in, None) + tuple(grads.get(id(p)) for p in params)


def gate_bottleneck_plugins_in_place(model: nn.Module) -> int:
    """Set ``inplace=True`` on every CBAM that mmdet's ``Bottleneck``
    runs as a plugin inside ``model``; returns how many.

    Inside a ``Bottleneck`` a plugin receives the fresh output of a conv +
    BN (+ ReLU) that nothing else reads, so without autograd CBAM may gate
    that tensor in place instead of allocating its output (bit-identical
    results; saves a feature-map-sized allocation per block).
    """
    from mmdet.models.backbones.resnet import Bottleneck
    count = 0
    for mod in model.modules():
        if not (isinstance(mod, Bottleneck) and mod.with_plugins):
            continue
        for name in (*mod.after_conv1_plugin_names,
                     *mod.after_conv2_plugin_names,
                     *mod.after_conv3_plugin_names):
            plugin = getattr(mod, name)
            if isinstance(plugin, CBAM):
                plugin.inplace = True
                count += 1
    return count


__all__ = ['CBAM', 'gate_bottleneck_plugins_in_place']

"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018)."""
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
        # one MLP call on the stacked avg/max descriptors (2N x C)
        desc = torch.cat([flat.mean(dim=2), flat.amax(dim=2)], dim=0)
        z = self.channel_mlp(desc)
        z = z[:n] + z[n:]
        return (torch.sigmoid(z) * self.gate_scale).view(n, c, 1, 1)

    def spatial_gate(self, x: Tensor) -> Tensor:
        """Per-pixel gate of shape (N, 1, H, W)."""
        desc = torch.cat(
            [x.mean(dim=1, keepdim=True),
             x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial_conv(desc)) * self.gate_scale

    def forward(self, x: Tensor) -> Tensor:
        """Apply channel then spatial attention."""
        if self.use_channel:
            x = x * self.channel_gate(x)
        if self.use_spatial:
            x = x * self.spatial_gate(x)
        return x

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, reduction={self.reduction}, '
                f'kernel_size={self.kernel_size}, '
                f'use_channel={self.use_channel}, '
                f'use_spatial={self.use_spatial}, '
                f'identity_init={self.identity_init}')


__all__ = ['CBAM']

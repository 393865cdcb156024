"""ResNet with plugins applied once at the end of each stage."""
from typing import List, Optional, Sequence, Tuple

from mmcv.cnn import build_plugin_layer
from torch import Tensor

from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS


@MODELS.register_module()
class ResNetStagePlugins(ResNet):
    """mmdet :class:`~mmdet.models.backbones.ResNet` extended by plugins that
    act on whole stage outputs.

    ResNet's own ``plugins=`` inserts a module inside every bottleneck
    (``after_conv1/2/3``). ``stage_plugins`` instead inserts one module after
    the last block of a stage, on the feature map that goes to the neck: the
    placement of the seed implementation, which applied one CBAM to each of
    C2..C5 before the FPN. Both mechanisms can be combined.

    Args:
        stage_plugins (list[dict], optional): each dict has ``cfg`` (the
            plugin config; ``in_channels`` is filled in with the stage's
            output channels) and ``stages`` (tuple of bools, one per stage).
        **kwargs: the arguments of :class:`~mmdet.models.backbones.ResNet`.

    Example:
        >>> backbone = dict(
        ...     type='ResNetStagePlugins', depth=50,
        ...     stage_plugins=[dict(cfg=dict(type='CBAM'),
        ...                         stages=(True, True, True, True))])
    """

    def __init__(self,
                 *args,
                 stage_plugins: Optional[Sequence[dict]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stage_plugin_names: List[List[str]] = [
            [] for _ in self.res_layers
        ]
        for plugin in stage_plugins or []:
            plugin = dict(plugin)
            stages = plugin.get('stages')
            if stages is not None and len(stages) != self.num_stages:
                raise ValueError(
                    f'stage_plugins stages {stages} must have one flag per '
                    f'stage ({self.num_stages})')
            for i in range(self.num_stages):
                if stages is not None and not stages[i]:
                    continue
                channels = self.base_channels * 2**i * self.block.expansion
                cfg = dict(plugin['cfg'])
                postfix = cfg.pop('postfix', '')
                name, layer = build_plugin_layer(
                    cfg, in_channels=channels,
                    postfix=f'_stage{i + 1}{postfix}')
                if hasattr(self, name):
                    raise KeyError(f'duplicate stage plugin name {name}')
                self.add_module(name, layer)
                self.stage_plugin_names[i].append(name)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward with the stage plugins after each residual stage."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            for name in self.stage_plugin_names[i]:
                x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


__all__ = ['ResNetStagePlugins']

"""ResNet whose plugins learn in frozen stages, with optional stage plugins."""
from typing import List, Optional, Sequence, Tuple

from mmcv.cnn import build_plugin_layer
from torch import Tensor, nn

from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

from ..plugins.cbam import CBAM, gate_bottleneck_plugins_in_place


@MODELS.register_module()
class ResNetStagePlugins(ResNet):
    """mmdet :class:`~mmdet.models.backbones.ResNet` whose plugins always
    learn, extended by plugins that act on whole stage outputs.

    Freezing (``frozen_stages=k``) keeps the *pretrained* weights of the stem
    and of stages 1..k fixed: their convs and BN layers get
    ``requires_grad=False`` and stay in eval mode, as in mmdet. mmdet's
    ``ResNet`` freezes every parameter of a frozen stage, so a plugin it
    inserted there (``plugins=``, e.g. CBAM or ContextBlock in C2 with the
    usual ``frozen_stages=1``) would never train and, with an identity
    initialisation, stay the identity for the whole run while still costing
    time. Here the modules that plugins add are new weights, not pretrained
    ones: they keep ``requires_grad=True`` and follow the backbone's
    train/eval mode in every stage.

    Every CBAM it holds gates in place when run without autograd
    (``CBAM.inplace``): inside a bottleneck and at a stage's end alike, its
    input is a temporary nothing else reads.

    ResNet's own ``plugins=`` inserts a module inside every bottleneck
    (``after_conv1/2/3``). ``stage_plugins`` instead inserts one module after
    the last block of a stage, on the feature map that goes to the neck
    (one CBAM on each of C2..C5 before the FPN, as in
    ``configs/ablations/cbam_stage_end.py``). Both mechanisms can be
    combined.

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
        gate_bottleneck_plugins_in_place(self)
        for names in self.stage_plugin_names:  # a stage's output: temporary
            for name in names:
                if isinstance(getattr(self, name), CBAM):
                    getattr(self, name).inplace = True

    def plugin_modules(self, stage: int) -> List[nn.Module]:
        """The modules that plugins added to stage ``stage`` (0-based):
        those inside its bottlenecks and those after it."""
        mods = []
        for block in getattr(self, self.res_layers[stage]):
            for attr in ('after_conv1_plugin_names',
                         'after_conv2_plugin_names',
                         'after_conv3_plugin_names'):
                mods += [getattr(block, n) for n in getattr(block, attr, [])]
        # empty while ResNet.__init__ runs (stage plugins come after it)
        names = getattr(self, 'stage_plugin_names', None) or []
        if stage < len(names):
            mods += [getattr(self, n) for n in names[stage]]
        return mods

    def _freeze_stages(self) -> None:
        """Freeze the pretrained layers of the frozen stages, not plugins."""
        super()._freeze_stages()
        for i in range(min(self.frozen_stages, self.num_stages)):
            for module in self.plugin_modules(i):
                module.train(self.training)
                for param in module.parameters():
                    param.requires_grad = True

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

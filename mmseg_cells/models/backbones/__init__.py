from .resnet_stage_plugins import ResNetStagePlugins

__all__ = ['ResNetStagePlugins']

from .cbam import CBAM, gate_bottleneck_plugins_in_place

__all__ = ['CBAM', 'gate_bottleneck_plugins_in_place']

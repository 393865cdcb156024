from .load_annotations import LoadCellAnnotations
from .loading import LoadCellImageFromFile
from .rot90 import RandomRot90
from .scale_jitter import RandomScaleFactorResize
from .stain_jitter import RandomHEDJitter

__all__ = [
    'LoadCellImageFromFile', 'LoadCellAnnotations', 'RandomHEDJitter',
    'RandomRot90', 'RandomScaleFactorResize'
]

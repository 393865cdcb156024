from .load_annotations import LoadCellAnnotations
from .loading import LoadCellImageFromFile
from .rot90 import RandomRot90
from .stain_jitter import RandomHEDJitter

__all__ = [
    'LoadCellImageFromFile', 'LoadCellAnnotations', 'RandomHEDJitter',
    'RandomRot90'
]

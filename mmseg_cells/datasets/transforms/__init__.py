from .load_annotations import LoadCellAnnotations
from .loading import LoadCellImageFromFile

__all__ = ['LoadCellImageFromFile', 'LoadCellAnnotations']

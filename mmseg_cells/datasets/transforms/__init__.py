from .loading import LoadCellImageFromFile

__all__ = ['LoadCellImageFromFile']

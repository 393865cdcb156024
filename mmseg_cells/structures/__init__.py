"""Data structures of mmseg-cells."""
from .crop_masks import CropBitmapMasks

__all__ = ['CropBitmapMasks']

"""Operators: RoIAlign over channels-last torch feature maps (inference)
and over crop-stored instance masks in numpy (mask targets)."""
from .roi_align import roi_align_nhwc
from .roi_align_numpy import roi_align_crops

__all__ = ['roi_align_crops', 'roi_align_nhwc']

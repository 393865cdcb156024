from .roi_align import roi_align_nhwc

__all__ = ['roi_align_nhwc']

from .chunked_overlaps import ChunkedBboxOverlaps2D

__all__ = ['ChunkedBboxOverlaps2D']

"""Dataset I/O, the hw3 -> COCO converter and the synthetic generator.

These modules depend on numpy, tifffile and pycocotools only (not on torch or
mmdet), so that the converters run without the deep-learning stack.
"""

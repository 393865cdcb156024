"""Dataset I/O and the hw3 -> COCO converter.

* :mod:`.io`: image and instance-map readers and writers (the hw3 format);
* :mod:`.instances`: instances of per-class id maps and their COCO fields;
* :mod:`.train_val_split`: the stratified train/val split;
* :mod:`.test_listing`: the ``test_image_name_to_ids.json`` reader;
* :mod:`.conversion_stats`: ``stats.json`` and its text summary;
* :mod:`.hw3_coco`: the converter itself;
* :mod:`.slide`: whole-slide images read region by region.

The synthetic hw3 look-alike generator is the subpackage
:mod:`mmseg_cells.data.synthetic` and the slide tissue detector
:mod:`mmseg_cells.data.tissue` (they need OpenCV, so they are not imported
here). These modules depend on numpy, scipy, tifffile and pycocotools (not
on torch or mmdet), so that the converters run without the deep-learning
stack.
"""
from .conversion_stats import format_summary, summarize_conversion
from .hw3_coco import (CATEGORIES, HW3DataWarning, convert_hw3,
                       convert_image_dir)
from .instances import Instance, encode_instances, instances_from_class_maps
from .io import (CLASS_NAMES, TIFF_SUFFIXES, DataFormatError,
                 find_class_files, read_image, read_image_size,
                 read_instance_map, write_image_tif, write_instance_map)
from .slide import SlideError, is_slide, open_slide
from .test_listing import TEST_IMAGE_DIR, TEST_LISTING, read_test_listing
from .train_val_split import split_train_val

__all__ = [
    'CATEGORIES', 'CLASS_NAMES', 'DataFormatError', 'HW3DataWarning',
    'Instance', 'TEST_IMAGE_DIR', 'TEST_LISTING', 'TIFF_SUFFIXES',
    'convert_hw3', 'convert_image_dir', 'encode_instances',
    'find_class_files', 'format_summary', 'instances_from_class_maps',
    'is_slide', 'open_slide', 'read_image', 'read_image_size',
    'read_instance_map', 'read_test_listing', 'SlideError',
    'split_train_val', 'summarize_conversion', 'write_image_tif',
    'write_instance_map'
]

"""Reader of the hw3 test-image listing ``test_image_name_to_ids.json``.

The listing is a JSON list with one object per test image::

    [{"file_name": "<name>.tif", "id": 1, "height": 397, "width": 482}, ...]

``file_name`` is relative to ``<data_root>/test_release/``; ``id`` is the
image id that the submitted results must use. The converter (``test.json``)
and the predictor read it with :func:`read_test_listing`.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from .io import DataFormatError, read_image_size

__all__ = ['TEST_IMAGE_DIR', 'TEST_LISTING', 'read_test_listing']

PathLike = Union[str, os.PathLike]

#: File name of the listing in the data root.
TEST_LISTING = 'test_image_name_to_ids.json'

#: Folder of the listed images in the data root.
TEST_IMAGE_DIR = 'test_release'

_KEYS = ('file_name', 'id', 'height', 'width')


def read_test_listing(data_root: PathLike,
                      check_images: bool = True) -> List[Dict[str, Any]]:
    """Read and validate ``<data_root>/test_image_name_to_ids.json``.

    Every entry must be an object with ``file_name`` (non-empty str), ``id``
    (int, unique in the listing), ``height`` and ``width`` (positive ints);
    an empty list is valid. Entries are checked in listing order.

    Args:
        data_root: Folder holding the listing and ``test_release/``.
        check_images: Also require, entry by entry, that the listed image
            exists in ``test_release/`` and that its size read from the file
            header equals the listed ``(height, width)``.

    Returns:
        list[dict]: One ``{'file_name', 'id', 'height', 'width'}`` dict per
        entry, in listing order; ``file_name`` as listed (relative to
        ``test_release/``), other keys of an entry are dropped.

    Raises:
        DataFormatError: Naming the listing for a missing, unreadable or
            invalid listing, or naming the image for a missing image or a
            size mismatch (``check_images``).
    """
    data_root = Path(data_root)
    list_path = data_root / TEST_LISTING
    if not list_path.exists():
        raise DataFormatError.at(list_path, 'file does not exist')
    try:
        with open(list_path, encoding='utf-8') as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        raise DataFormatError.at(list_path, f'cannot read JSON ({e})') from e
    if not isinstance(entries, list):
        raise DataFormatError.at(list_path, 'expected a JSON list')
    images = []
    seen_ids = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(k in entry for k in _KEYS):
            raise DataFormatError.at(
                list_path, f'entry {i} must have file_name, id, height and '
                'width')
        fname, img_id = entry['file_name'], entry['id']
        h, w = entry['height'], entry['width']
        if not isinstance(fname, str) or not fname:
            raise DataFormatError.at(list_path,
                                     f'entry {i}: bad file_name {fname!r}')
        for key, val in (('id', img_id), ('height', h), ('width', w)):
            if isinstance(val, bool) or not isinstance(val, int) or (
                    key != 'id' and val <= 0):
                raise DataFormatError.at(
                    list_path, f'entry {i} ({fname}): bad {key} {val!r}')
        if img_id in seen_ids:
            raise DataFormatError.at(list_path,
                                     f'duplicate image id {img_id}')
        seen_ids.add(img_id)
        if check_images:
            _check_image(data_root / TEST_IMAGE_DIR / fname, (h, w),
                         list_path.name)
        images.append({'file_name': fname, 'id': img_id, 'height': h,
                       'width': w})
    return images


def _check_image(path: Path, size: Tuple[int, int],
                 listing_name: str) -> None:
    """Raise unless ``path`` is a file whose header size is ``size``."""
    if not path.is_file():
        raise DataFormatError.at(
            path, f'test image listed in {listing_name} does not exist')
    actual = read_image_size(path)
    if actual != size:
        raise DataFormatError.at(
            path, f'image size (h, w) = {actual} != {size} listed in '
            f'{listing_name}')

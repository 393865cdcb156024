"""Atomic file writing: a reader never sees a partial output file."""
import contextlib
import json
import os
import tempfile
from typing import Any, Iterator, Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'w', **kwargs) -> Iterator[Any]:
    """Open a temporary file next to ``path`` and move it over ``path`` only
    when the ``with`` block finishes without an exception.

    On any error the temporary file is removed and ``path`` is untouched, so a
    failed run neither leaves a partial file nor destroys an earlier result.
    The file gets the permissions of a plainly created one (``0o666`` less
    the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: PathLike, obj: Any, **dump_kwargs) -> None:
    """Serialise ``obj`` to JSON and write it to ``path`` atomically."""
    text = json.dumps(obj, **dump_kwargs)  # fails before anything is opened
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)


def atomic_write_png(path: PathLike, rgb: Any) -> None:
    """Encode an ``H x W x 3`` RGB uint8 array as PNG and write it to
    ``path`` atomically (OpenCV, imported here)."""
    import cv2
    ok, png = cv2.imencode('.png', rgb[..., ::-1])
    if not ok:
        raise OSError(f'{path}: PNG encoding failed')
    with atomic_write(path, 'wb') as f:
        f.write(png.tobytes())

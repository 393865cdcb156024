"""Check, in seconds, that this Python can build mmcv 2.1.0 and run mmengine.

tools/install.sh runs it before the 15-30 minute mmcv build and again after
the last pip call. It imports what mmcv's ``setup.py`` (built with
``--no-build-isolation``) and mmengine 0.10.7 import at start-up, so it fails
the way they would, and says how to fix it. Exit status 1 on a problem.
"""
import sys
import warnings


def main() -> int:
    problems = []
    try:
        import setuptools
        major = int(setuptools.__version__.split('.')[0])
        if major >= 82:
            problems.append(
                f'setuptools {setuptools.__version__} is installed; mmcv 2.1.0 '
                'and mmengine 0.10.7 need setuptools<82 (82 removed '
                'pkg_resources)')
    except ImportError:
        problems.append('setuptools is not installed')
    try:
        # mmcv's setup.py: `from pkg_resources import DistributionNotFound,
        # get_distribution, parse_version`; mmengine: pkg_resources at import.
        with warnings.catch_warnings():  # its deprecation notice
            warnings.simplefilter('ignore')
            from pkg_resources import (  # noqa: F401
                DistributionNotFound, get_distribution, parse_version)
    except ImportError as exc:
        problems.append(f'`import pkg_resources` fails ({exc})')
    try:
        import torch  # noqa: F401
        from torch.utils import cpp_extension  # noqa: F401
    except ImportError as exc:
        problems.append(f'torch and its cpp_extension do not import ({exc})')
    try:
        import wheel  # noqa: F401
    except ImportError:
        problems.append('wheel is not installed (pip wheel needs it)')
    for p in problems:
        print(f'[install] build-environment check: {p}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())

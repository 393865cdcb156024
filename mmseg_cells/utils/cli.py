"""Helpers shared by the command-line tools: argparse value types and the
error boundary of a tool's ``main``."""
import argparse
import sys
from typing import Callable, Optional


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not an integer: {text!r}')
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'must be >= {minimum}, got {value}')
        return value

    parse.__name__ = f'int>={minimum}'
    return parse


def run_cli(main: Callable[[], Optional[int]]) -> int:
    """Run a tool's ``main`` and turn the errors a user can fix without a
    traceback into one ``error: ...`` line and exit status 1.

    Covered: :class:`~mmseg_cells.compat.CheckpointLoadError` (a checkpoint
    refused by the weights-only unpickler; ImageNet weights that cannot be
    downloaded), whose messages name the file and the fix.
    """
    from mmseg_cells.compat import CheckpointLoadError
    try:
        return main() or 0
    except CheckpointLoadError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


__all__ = ['int_at_least', 'run_cli']

"""argparse value types shared by the command-line tools."""
import argparse
from typing import Callable


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


__all__ = ['int_at_least']

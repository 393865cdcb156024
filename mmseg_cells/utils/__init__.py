from .atomic import atomic_write, atomic_write_json, atomic_write_png
from .setup_env import REGISTERING_PACKAGES, register_all_modules

__all__ = [
    'REGISTERING_PACKAGES', 'atomic_write', 'atomic_write_json',
    'atomic_write_png', 'register_all_modules'
]

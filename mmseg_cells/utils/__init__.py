from .atomic import atomic_write, atomic_write_json

__all__ = ['atomic_write', 'atomic_write_json']

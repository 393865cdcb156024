from mmseg_cells import compat  # noqa: F401  (first: stack fixes)
from .transforms import *  # noqa: F401,F403

from mmseg_cells import compat  # noqa: F401  (first: stack fixes)
from .backbones import *  # noqa: F401,F403
from .plugins import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403

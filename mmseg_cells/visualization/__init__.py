"""Drawing predictions and annotations on images (numpy only, no torch)."""
from .overlay import draw_instance_overlay, instance_outline

__all__ = ['draw_instance_overlay', 'instance_outline']

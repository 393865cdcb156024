"""Evaluation: leaderboard-exact mask AP50 (:mod:`.ap50`), RLE helpers
(:mod:`.rle`) and the validation metric used by the configs
(:mod:`.metrics`, imported by ``mmseg_cells`` for registration).

Importing this package alone does not import torch or mmdet.
"""

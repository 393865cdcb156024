"""Evaluation: leaderboard-exact mask AP50 (:mod:`.ap50`) and the
validation metric used by the configs (:mod:`.metrics`, which registers it
and so imports mmdet).

Importing this package alone does not import torch or mmdet.
"""

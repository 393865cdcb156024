"""Deterministic, stratified train/val split of the hw3 training images."""
from typing import Collection, Dict, List, Mapping, Tuple

import numpy as np

__all__ = ['split_train_val']

#: Stratum priority of the split: rarest class first; 0 = no instances.
_STRATUM_ORDER: Tuple[int, ...] = (4, 3, 1, 2, 0)


def _stratum(classes: Collection[int]) -> int:
    """The stratum of an image: the rarest class it contains, else 0."""
    for c in _STRATUM_ORDER[:-1]:
        if c in classes:
            return c
    return 0


def split_train_val(image_classes: Mapping[str, Collection[int]],
                    val_ratio: float,
                    seed: int = 0) -> Tuple[List[str], List[str]]:
    """Deterministic stratified train/val split.

    Each image is keyed by the rarest class it contains (4 > 3 > 1 > 2 >
    none); every stratum's sorted names are shuffled with
    ``numpy.random.default_rng(seed)`` and ``round(val_ratio * n)`` of them go
    to val. With ``val_ratio > 0`` and at least two images, val and train
    each get at least one image.

    Args:
        image_classes: ``{image name: category ids present}``.
        val_ratio: Fraction in ``[0, 1)``.
        seed: Random seed.

    Returns:
        tuple[list[str], list[str]]: Sorted train and val names.
    """
    if not 0 <= val_ratio < 1:
        raise ValueError(f'val_ratio must be in [0, 1), got {val_ratio}')
    rng = np.random.default_rng(seed)
    strata: Dict[int, List[str]] = {s: [] for s in _STRATUM_ORDER}
    for name in sorted(image_classes):
        strata[_stratum(set(image_classes[name]))].append(name)
    val: List[str] = []
    rest: Dict[int, List[str]] = {}  # shuffled names left in train
    for s in _STRATUM_ORDER:
        names = strata[s]
        order = [names[i] for i in rng.permutation(len(names))]
        k = int(np.floor(val_ratio * len(names) + 0.5)) if val_ratio else 0
        val.extend(order[:k])
        rest[s] = order[k:]
    n = len(image_classes)
    if val_ratio > 0 and n >= 2:
        # Largest stratum first; ties by stratum priority.
        by_size = sorted(
            _STRATUM_ORDER,
            key=lambda s: (-len(strata[s]), _STRATUM_ORDER.index(s)))
        if not val:
            s = next(s for s in by_size if rest[s])
            val.append(rest[s].pop(0))
        if len(val) == n:
            for s in by_size:
                if any(x in val for x in strata[s]):
                    moved = next(x for x in reversed(val) if x in strata[s])
                    val.remove(moved)
                    break
    val_set = set(val)
    train = sorted(x for x in image_classes if x not in val_set)
    return train, sorted(val_set)


"""Synthetic H&E-like cell images in the exact hw3-data-release layout.

The generator lets the whole pipeline (conversion, training, inference,
evaluation) run end to end without the real data set; :func:`make_synthetic`
writes a data set (see :mod:`.dataset` for the layout),
:func:`synthesize_sample` draws one image and its instance maps.

The statistics imitate the real ground truth (``val_coco.json``, 50 training
images):

* image sides: log-normal fitted to the real sizes (93-2162 px), truncated to
  ``[min_side, max_side]`` when these are given;
* two kinds of scene, as in the real data: *crowded* images dominated by
  class2 (and class1), hundreds of cells per megapixel, clustered and often
  touching (about 30 % of the cells touch another one, as in the real data);
  and *sparse* images with a few class3 / class4 cells. Crowded scenes tend
  to be the larger images. The number of cells is ``density * area`` (capped
  near the real maxima, 772 and 35), so the density stays realistic on small
  images, and the instance counts per image are heavy-tailed;
* per-class areas (median 780 / 278 / 566 / 2356 px for class1..class4) and
  elongations are drawn from skewed log-normals fitted to the real quantiles;
* class2: small, dark, compact round/oval nuclei; class1: larger, elongated,
  paler vesicular nuclei with a darker rim; class3: medium round nuclei with
  mildly lobed outline, coarse chromatin and a nucleolus; class4: rare, large,
  pale nuclei with a thin rim and nucleoli.

Images are rendered in optical-density space (Beer-Lambert) with per-image
stain vectors drawn around three anchors fitted to real images (the
brownish/lavender released sample, dark and pale H&E: nucleus and stroma
optical densities and chromatin texture, see :mod:`.realism` and
``benchmarks/synthetic_realism.py``), plus stromal texture, fibre streaks,
pale lumen patches, cytoplasm haze, retraction halos, unannotated distractor
nuclei (out-of-focus ghosts and spindle-shaped stromal nuclei), blur and
noise.

Modules: :mod:`.scene` (sizes, regime, class statistics), :mod:`.fields`
(random fields), :mod:`.placement` (nucleus outlines and their placement),
:mod:`.render` (stains and optics), :mod:`.sample` (one image) and
:mod:`.dataset` (the data set writer); :mod:`.realism` measures how close
images look to real ones. They need numpy, OpenCV and tifffile, not torch
or mmdet.
"""
from .dataset import format_summary, make_synthetic
from .render import LOOKS
from .sample import synthesize_sample
from .scene import sample_crowded, sample_image_size

__all__ = [
    'LOOKS', 'format_summary', 'make_synthetic', 'sample_crowded',
    'sample_image_size', 'synthesize_sample'
]

"""selfrestore: restore images and videos from corrupted data alone.

Conventions used everywhere in the package:

* Images on disk are read into ``numpy`` float32 arrays of shape (H, W, C) with values in [0, 1]
  (see :mod:`selfrestore.io`), together with an :class:`~selfrestore.io.ImageInfo` that remembers the
  original dtype / bit depth so that outputs can be written back in the same form.
* Networks see ``torch`` float32 tensors of shape (N, C, H, W) in [0, 1] (noise may leave that range).
* Noise levels are in the data's own scale: ``gauss25`` means sigma = 25/255 on [0, 1] images;
  ``poisson30`` means y = Poisson(30 x) / 30.
"""

__version__ = "0.1.0"

"""The shipped model used where none is named: by ``selfrestore restore`` and by ``Restorer()`` alike (a module
without torch, so that ``restore --help`` stays quick)."""

#: Gaussian noise of std 5-50 (0-255 scale), its level found per image (``selfrestore models`` describes it)
DEFAULT_MODEL = "laine19-gauss5_50"

#: for noisy chroma-subsampled JPEGs (noise spread over neighbours, which the default's blind spot assumes
#: independent), where their measured level is high enough (``restore``: benchmarks/results/jpeg_default_model.md)
JPEG_MODEL = "unet-gauss25"

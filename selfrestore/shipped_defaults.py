"""The shipped model used where none is named: by ``selfrestore restore`` and by ``Restorer()`` alike (a module
without torch, so that ``restore --help`` stays quick)."""

#: Gaussian noise of std 5-50 (0-255 scale), its level found per image (``selfrestore models`` describes it)
DEFAULT_MODEL = "laine19-gauss5_50"

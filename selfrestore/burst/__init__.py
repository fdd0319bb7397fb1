"""Raw bursts: synthesis, registration, shift-and-add and the burst data sources.

Geometry convention used throughout (see :mod:`selfrestore.burst.geometry`): a motion is a 2x3 affine
matrix ``A`` in pixel coordinates (x = column, y = row, pixel centres on integers) such that
``frame_t(A p) ~ reference(p)``: it maps reference coordinates to the frame's coordinates.
"""

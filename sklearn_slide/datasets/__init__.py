"""Datasets for extreme multi-label classification.

- :func:`make_extreme_multilabel` generates XMC problems of any size.
- :func:`load_xc` and :func:`dump_xc` read and write the Extreme
  Classification Repository text format; :func:`load_xc_folder` reads a
  train/test split folder of it; :func:`iter_xc` reads a file in blocks of
  rows (bounded memory) and :func:`read_xc_header` its sizes.
"""

from ._synthetic import make_extreme_multilabel
from ._xc_blocks import iter_xc, read_xc_header
from ._xc_folder import load_xc_folder
from ._xc_format import dump_xc, load_xc

__all__ = [
    "dump_xc",
    "iter_xc",
    "load_xc",
    "load_xc_folder",
    "make_extreme_multilabel",
    "read_xc_header",
]

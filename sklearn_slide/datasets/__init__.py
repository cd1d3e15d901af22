"""Datasets for extreme multi-label classification.

- :func:`make_extreme_multilabel` generates XMC problems of any size.
- :func:`load_xc` and :func:`dump_xc` read and write the Extreme
  Classification Repository text format.
"""

from ._synthetic import make_extreme_multilabel
from ._xc_format import dump_xc, load_xc

__all__ = ["dump_xc", "load_xc", "make_extreme_multilabel"]

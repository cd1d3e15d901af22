"""``python -m sklearn_slide``: the ``sklearn-slide`` command line."""

import sys

from ._cli import main

sys.exit(main())

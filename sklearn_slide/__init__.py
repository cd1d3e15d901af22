"""sklearn-slide: SLIDE (hash-sampled sparse training of wide networks on CPUs)
as a scikit-learn estimator for extreme multi-label classification."""

from ._classifier import SlideClassifier
from ._engine import effective_n_threads
from ._targets import topk_to_indicator

__version__ = "0.1.0"

__all__ = ["SlideClassifier", "effective_n_threads", "topk_to_indicator", "__version__"]

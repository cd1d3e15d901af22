"""scikit-learn's common estimator checks: one and two threads, and cluster inference.

Training sums every gradient in sample order, so fits are bit-identical for any
thread count: no check is expected to fail, including the ones that compare two
separate fits (which SLIDE's lock-free HOGWILD accumulation would fail).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_slide import SlideClassifier

# The common checks use tiny dense problems (tens of samples): more epochs and a
# larger step than the XMC defaults, so that a few dozen Adam steps suffice.
SMALL_DATA = dict(max_iter=50, learning_rate=1e-2, random_state=0)


@parametrize_with_checks(
    [
        SlideClassifier(n_threads=1, **SMALL_DATA),
        SlideClassifier(n_threads=2, **SMALL_DATA),
        # predict through the label-cluster index (built lazily, not pickled)
        SlideClassifier(n_threads=2, inference="clusters", n_probes=1, **SMALL_DATA),
        # predict from the cached bfloat16 copy of the output layer (not pickled either)
        SlideClassifier(n_threads=2, precision="bfloat16", **SMALL_DATA),
        # holds out rows and lowers the rate on a validation plateau
        SlideClassifier(n_threads=1, learning_rate_schedule="plateau", **SMALL_DATA),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's common estimator checks.

With one thread, training is bit-reproducible and every check must pass. With
two threads, HOGWILD's lock-free gradient accumulation makes two fits differ in
the last bits, so only the checks that compare two separate fits may fail.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_slide import SlideClassifier

# The common checks use tiny dense problems (tens of samples): more epochs and a
# larger step than the XMC defaults, so that a few dozen Adam steps suffice.
SMALL_DATA = dict(max_iter=50, learning_rate=1e-2, random_state=0)

FIT_VS_FIT = (
    "two fits with n_threads>1 accumulate gradients in a different order "
    "(HOGWILD), so their results differ slightly"
)


def expected_failures(estimator):
    if estimator.n_threads == 1:
        return {}
    return {
        "check_fit_idempotent": FIT_VS_FIT,
        "check_supervised_y_2d": FIT_VS_FIT,
        "check_classifiers_multilabel_representation_invariance": FIT_VS_FIT,
    }


@parametrize_with_checks(
    [
        SlideClassifier(n_threads=1, **SMALL_DATA),
        SlideClassifier(n_threads=2, **SMALL_DATA),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""Every SIMD kernel set the CPU can run gives the generic kernels' results
(to float32 rounding: FMA and wider partial sums change the last bits)."""

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
# _engine: every kernel set against the generic one.
from sklearn_slide._engine import active_kernels, available_kernels, select_kernels


@pytest.fixture
def restore_kernels():
    before = active_kernels()
    yield
    select_kernels(before)


def test_auto_picks_the_widest_available(restore_kernels):
    select_kernels("auto")
    assert active_kernels() == available_kernels()[-1]
    with pytest.raises(ValueError, match="unknown kernel set"):
        select_kernels("avx9000")


@pytest.mark.parametrize("name", [k for k in available_kernels() if k != "generic"])
def test_simd_kernels_match_generic(xmc_small, restore_kernels, name):
    X, Y, X_test, _ = xmc_small
    # Hidden sizes that are not multiples of the vector width exercise the tails.
    kwargs = dict(hidden_layer_sizes=(37, 21), hash_family="dwta", min_active=40,
                  max_active=200, max_iter=2, random_state=0, n_threads=1)
    models = {}
    for kernels in ("generic", name):
        select_kernels(kernels)
        models[kernels] = SlideClassifier(**kwargs).fit(X, Y)
    # Training: the same steps up to rounding.
    np.testing.assert_allclose(models[name].loss_curve_, models["generic"].loss_curve_, rtol=1e-3)
    # Inference with one model under both kernel sets (every scoring path).
    simd_clf = models[name]
    select_kernels("generic")
    ref_proba = simd_clf.predict_proba(X_test)
    ref_topk = {mode: simd_clf.set_params(inference=mode, n_probes=3).predict_topk(X_test, k=5)
                for mode in ("exact", "clusters")}
    select_kernels(name)
    np.testing.assert_allclose(simd_clf.predict_proba(X_test), ref_proba, rtol=1e-4, atol=1e-7)
    for mode, (ref_labels, ref_scores) in ref_topk.items():
        labels, scores = simd_clf.set_params(inference=mode).predict_topk(X_test, k=5)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-5)
        # Labels agree except where two scores tie to within rounding.
        close = np.isclose(scores[:, :-1], scores[:, 1:], rtol=1e-4, atol=1e-5).any(axis=1)
        np.testing.assert_array_equal(labels[~close], ref_labels[~close])


@pytest.mark.parametrize("name", [k for k in available_kernels() if k != "generic"])
def test_dwta_codes_identical_to_generic(restore_kernels, name):
    # _engine: DWTA codes per kernel set.
    from sklearn_slide._engine import hash_codes

    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 128)).astype(np.float32)
    X[rng.rand(*X.shape) < 0.6] = 0  # ReLU-like sparsity, many empty bins
    X[:20] = np.round(X[:20])  # ties
    X[20, :5] = [np.nan, np.inf, -np.inf, 0, 1]
    X[21] = 0
    X[22, ::3] = np.nan
    for dim in (128, 37, 5):  # 37: a bin tail; 5: bins of 5, the portable path
        select_kernels("generic")
        expected = hash_codes("dwta", X[:, :dim], 6, 50, 7)
        select_kernels(name)
        np.testing.assert_array_equal(hash_codes("dwta", X[:, :dim], 6, 50, 7), expected)

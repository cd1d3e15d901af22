"""precision="bfloat16": output-layer scores from bfloat16-rounded inputs and
weights with float32 sums, on every kernel set this CPU can run (the emulated
ones and the native AVX512_BF16 / AMX ones), against a NumPy reference."""

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
# _engine: bfloat16 scoring per kernel set: the set is chosen below the public API.
from sklearn_slide._engine import active_kernels, available_kernels, select_kernels


def to_bfloat16(a):
    """Round float32 values to the nearest bfloat16 (ties to even), as float32."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


@pytest.fixture
def restore_kernels():
    before = active_kernels()
    yield
    select_kernels(before)


def test_rounding_reference_is_round_to_nearest_even():
    # 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one.
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-7 + 2**-9, -2.5], dtype=np.float32)
    np.testing.assert_array_equal(to_bfloat16(x), [1.0, 1.0, 1 + 2**-6, 1 + 2**-7, -2.5])


@pytest.fixture(scope="module")
def exact_hidden_model(xmc_small):
    """A trained model whose last hidden activations are exactly representable in
    bfloat16 (0/1 inputs, hidden weights on a 1/8 grid, zero hidden biases), so the
    reference does not depend on how the engine rounds them; the output weights
    stay arbitrary float32 values."""
    X, Y, X_test, _ = xmc_small
    # Odd hidden width: exercises the zero-padded last pair of the native kernels.
    clf = SlideClassifier(reranker=None, hidden_layer_sizes=(21,), hash_family="dwta",
                          candidates="lsh", min_active=40,
                          max_iter=1, random_state=0, n_threads=2).fit(X, Y)
    params = clf._network["params"]
    rng = np.random.RandomState(0)
    params["hidden_weights_0"][:] = rng.randint(-2, 3, params["hidden_weights_0"].shape) / 8
    params["hidden_biases_0"][:] = 0
    X_binary = X_test[:300].copy()
    X_binary.data[:] = 1
    return clf, X_binary


def reference_logits(clf, X, bfloat16):
    params = clf._network["params"]
    hidden = np.maximum(X.toarray().astype(np.float64) @ params["hidden_weights_0"], 0)
    weights = params["output_weights"]
    if bfloat16:
        assert np.array_equal(to_bfloat16(hidden), hidden)  # the fixture's premise
        weights = to_bfloat16(weights)
    return hidden @ weights.T.astype(np.float64) + params["output_biases"]


@pytest.mark.parametrize("kernels", available_kernels())
@pytest.mark.parametrize("inference", ["exact", "clusters"])
def test_bfloat16_scores_match_numpy(exact_hidden_model, restore_kernels, kernels, inference):
    clf, X = exact_hidden_model
    n_labels = len(clf.classes_)
    select_kernels(kernels)
    expected = {b: reference_logits(clf, X, b) for b in (True, False)}
    # k = n_labels: every label is scored and returned, whatever the inference mode.
    clf.set_params(precision="bfloat16", inference=inference, n_probes=2)
    labels, scores = clf.predict_topk(X, k=n_labels)
    got = np.empty_like(scores)
    np.put_along_axis(got, labels, scores, axis=1)
    # Exact products, float32 sums: well inside the bfloat16 rounding of the
    # weights, which moves the float32 scores by up to ~1e-2 here.
    np.testing.assert_allclose(got, expected[True], rtol=1e-5, atol=2e-5)
    assert np.abs(expected[True] - expected[False]).max() > 1e-3


@pytest.mark.parametrize("kernels", available_kernels())
def test_bfloat16_probabilities_match_numpy(exact_hidden_model, restore_kernels, kernels):
    clf, X = exact_hidden_model
    select_kernels(kernels)
    logits = reference_logits(clf, X, True)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    proba = clf.set_params(precision="bfloat16").predict_proba(X)
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-7)


def test_bfloat16_predictions_agree_with_float32(xmc_small, precision_at_1):
    X, Y, X_test, Y_test = xmc_small
    clf = SlideClassifier(reranker=None, hash_family="dwta", max_iter=3, random_state=0).fit(X, Y)
    labels32, _ = clf.predict_topk(X_test, k=5)
    labels16, _ = clf.set_params(precision="bfloat16").predict_topk(X_test, k=5)
    assert np.mean(labels16[:, 0] == labels32[:, 0]) > 0.97
    assert abs(precision_at_1(labels16, Y_test) - precision_at_1(labels32, Y_test)) < 0.02
    # The model itself is float32 whatever the precision: switching back is exact.
    np.testing.assert_array_equal(
        clf.set_params(precision="float32").predict_topk(X_test, k=5)[0], labels32)


def test_unknown_precision_is_refused(xmc_small):
    X, Y, X_test, _ = xmc_small
    with pytest.raises(ValueError, match="precision"):
        SlideClassifier(precision="float16", max_iter=1).fit(X, Y)
    clf = SlideClassifier(reranker=None, max_iter=1, random_state=0).fit(X, Y)
    clf.set_params(precision="half")
    with pytest.raises(ValueError, match="'precision' parameter of SlideClassifier"):
        clf.predict_topk(X_test, k=1)
    with pytest.raises(ValueError, match="'precision' parameter of SlideClassifier"):
        clf.predict_proba(X_test)


def test_memory_budget_counts_the_bfloat16_copy_of_the_output_layer(xmc_small, monkeypatch):
    from sklearn_slide._memory import MEMORY_LIMIT_ENV

    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(reranker=None, max_iter=1, random_state=0).fit(X, Y)
    copy_bytes = 2 * clf._network["params"]["output_weights"].size
    # A budget between what float32 scoring needs and that plus the copy.
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(copy_bytes))
    clf.predict_topk(X_test[:10], k=1)
    clf.predict_proba(X_test[:10])
    clf.set_params(precision="bfloat16")
    for method in (lambda: clf.predict_topk(X_test[:10], k=1),
                   lambda: clf.predict_proba(X_test[:10])):
        with pytest.raises(ValueError, match="bfloat16 output layer"):
            method()


NATIVE = [k for k in available_kernels() if k in ("avx512_bf16", "amx_bf16")]


@pytest.mark.skipif(not NATIVE, reason="no native bfloat16 kernels on this CPU")
def test_packed_output_layer_follows_training(xmc_small, restore_kernels):
    # The packed bfloat16 copy is cached between calls; training must replace it.
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(reranker=None, hash_family="dwta", max_iter=1, random_state=0,
                          precision="bfloat16").fit(X, Y)
    select_kernels(NATIVE[-1])
    clf.predict_topk(X_test, k=5)  # caches the packed layer
    clf.partial_fit(X, Y)
    got = clf.predict_topk(X_test, k=5)
    select_kernels("generic")  # never packs: scores the current float32 weights
    expected = clf.predict_topk(X_test, k=5)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=2e-3)
    # Same for predict_proba, which shares the cache.
    select_kernels(NATIVE[-1])
    clf.partial_fit(X, Y)
    got = clf.predict_proba(X_test)
    select_kernels("generic")
    np.testing.assert_allclose(got, clf.predict_proba(X_test), rtol=1e-2, atol=1e-6)


@pytest.mark.skipif(not NATIVE, reason="no native bfloat16 kernels on this CPU")
def test_engine_refuses_a_packed_layer_of_the_wrong_shape(xmc_small, restore_kernels):
    # _engine: the binding's check of a packed layer, which predict always builds right.
    from sklearn_slide import _engine as engine

    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(reranker=None, max_iter=1, random_state=0).fit(X, Y)
    select_kernels(NATIVE[-1])
    params = clf._network["params"]
    packed = engine.pack_output_bf16(params, 1)
    X_rows = X_test[:5]
    for bad, error in ((packed[:-1], ValueError), (packed.astype(np.int64), TypeError),
                       (packed[::2], ValueError)):
        with pytest.raises(error, match="packed_bf16"):
            engine.predict_topk(params, X_rows, 1, 1, precision="bfloat16", packed_bf16=bad)
    labels, _ = engine.predict_topk(params, X_rows, 1, 1, precision="bfloat16",
                                    packed_bf16=packed)
    np.testing.assert_array_equal(
        labels, clf.set_params(precision="bfloat16").predict_topk(X_test[:5], k=1)[0])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_inference_mode_gives_a_label_the_same_score(xmc_small, precision):
    # Clusters' candidates are scored by the kernel exact scoring uses, so
    # they only choose which labels to score, never change a score.
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(reranker=None, hash_family="dwta", max_iter=1, min_active=40,
                          random_state=0, precision=precision).fit(X, Y)
    n_labels = len(clf.classes_)
    scores = {}
    for mode in ("exact", "clusters"):
        labels, got = clf.set_params(inference=mode, n_probes=2).predict_topk(X_test, k=n_labels)
        scores[mode] = np.empty_like(got)
        np.put_along_axis(scores[mode], labels, got, axis=1)
    np.testing.assert_array_equal(scores["clusters"], scores["exact"])

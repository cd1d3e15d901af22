"""Bad input never crashes or corrupts: it raises ValueError/TypeError naming the problem.

One test (or parametrised case) per item of the reliability issue: X, y,
parameters and memory. Each test checks the exception type and a message
fragment that tells the user what to fix.
"""

import copy
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

import sklearn_slide._memory as memory
import sklearn_slide._network_state as network_state
from sklearn_slide import SlideClassifier
from sklearn_slide._input import is_canonical
from sklearn_slide._memory import MEMORY_LIMIT_ENV
from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k_scorer, xmc_scorer

FAST = dict(max_iter=2, random_state=0, n_threads=1, hidden_layer_sizes=(16,))


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(300, 200, 20, random_state=0)
    return X, Y


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return SlideClassifier(**FAST).fit(X, Y)


@pytest.fixture(scope="module")
def fitted_multiclass(data):
    X, _ = data
    y = np.arange(X.shape[0]) % 4
    return SlideClassifier(**FAST).fit(X, y), y


def _weights(clf):
    return {k: v for k, v in clf._network["params"].items() if isinstance(v, np.ndarray)}


def assert_same_model(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


# ------------------------------------------------------------------------- X values


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dense", [False, True])
def test_non_finite_X_is_refused_at_fit_and_predict(data, fitted, bad, dense):
    X, Y = data
    X_bad = X.copy()
    X_bad.data[7] = bad
    if dense:
        X_bad = X_bad.toarray()
    match = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**FAST).fit(X_bad, Y)
    for method in ("predict_topk", "predict", "predict_proba"):
        with pytest.raises(ValueError, match=match):
            getattr(fitted, method)(X_bad)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_float64_values_beyond_float32_are_refused(data):
    X, Y = data
    X_big = X.astype(np.float64)
    X_big.data[0] = 1e300  # finite in float64, infinite once converted to float32
    with pytest.raises(ValueError, match="infinity or a value too large"):
        SlideClassifier(**FAST).fit(X_big, Y)


def test_complex_X_is_refused(data, fitted):
    X, Y = data
    for X_complex in (X.astype(np.complex128), X.toarray().astype(np.complex64)):
        with pytest.raises(ValueError, match="Complex data not supported"):
            SlideClassifier(**FAST).fit(X_complex, Y)
        with pytest.raises(ValueError, match="Complex data not supported"):
            fitted.predict_topk(X_complex)


def test_object_X_of_numbers_is_converted_and_other_objects_refused(data, fitted):
    # scikit-learn's check_dtype_object requires object arrays of numbers to work.
    X, Y = data
    dense = X.toarray()
    np.testing.assert_array_equal(
        fitted.predict_topk(dense.astype(object))[0], fitted.predict_topk(dense)[0]
    )
    assert_same_model(
        SlideClassifier(**FAST).fit(dense.astype(object), Y), SlideClassifier(**FAST).fit(X, Y)
    )
    strings = dense.astype(object)
    strings[0, 0] = "word"
    with pytest.raises(ValueError, match="could not convert string to float"):
        SlideClassifier(**FAST).fit(strings, Y)
    dicts = dense.astype(object)
    dicts[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="argument must be a string.* number"):
        fitted.predict_topk(dicts)


# ----------------------------------------------------------------- sparse structure


def _with(X, **arrays):
    """A copy of sparse X with some of its index arrays replaced after construction
    (scipy only checks them in the constructor)."""
    X = X.copy()
    for name, value in arrays.items():
        setattr(X, name, np.asarray(value))
    return X


def _bad_csr_cases(X):
    n_cols = X.shape[1]
    indices = X.indices.copy()
    neg = indices.copy()
    neg[5] = -3
    big = indices.copy()
    big[5] = n_cols
    huge = indices.astype(np.int64)
    huge[5] += 2**32  # would alias a valid column if truncated to int32
    indptr_dec = X.indptr.copy()
    indptr_dec[4] = indptr_dec[5] + 3
    indptr_start = X.indptr.copy()
    indptr_start[0] = 2
    indptr_end = X.indptr.copy()
    indptr_end[-1] = X.nnz + 10
    return {
        "negative column index":
            (_with(X, indices=neg), ValueError, "column index -3 out of range"),
        "column index = n_features":
            (_with(X, indices=big), ValueError, f"column index {n_cols} out of range"),
        "64-bit index beyond int32":
            (_with(X, indices=huge, indptr=X.indptr.astype(np.int64)), ValueError,
             "column index 4294967.* out of range"),
        "decreasing indptr":
            (_with(X, indptr=indptr_dec), ValueError, "indptr must be non-decreasing"),
        "indptr not starting at 0":
            (_with(X, indptr=indptr_start), ValueError, "indptr must start at 0"),
        "indptr beyond the data": (_with(X, indptr=indptr_end), ValueError, "indptr ends at"),
        "short indptr": (_with(X, indptr=X.indptr[:-5]), ValueError, "indptr has shape"),
        "float indices":
            (_with(X, indices=indices.astype(np.float64)), TypeError, "must hold integers"),
    }


# The names of the cases, written once (the cases are built from the test's X).
CSR_CASES = list(_bad_csr_cases(sp.identity(8, dtype=np.float32, format="csr")))


@pytest.mark.parametrize("case", CSR_CASES)
def test_malformed_csr_X_is_refused_at_fit_and_predict(data, fitted, case):
    X, Y = data
    X_bad, error, match = _bad_csr_cases(X)[case]
    with pytest.raises(error, match=match):
        SlideClassifier(**FAST).fit(X_bad, Y)
    with pytest.raises(error, match=match):
        fitted.predict_topk(X_bad)
    with pytest.raises(error, match=match):
        SlideClassifier(**FAST).partial_fit(X_bad, Y)


def test_malformed_csc_and_coo_are_refused_before_conversion(data, fitted):
    # scipy's CSC->CSR and COO->CSR conversions index memory with these arrays:
    # without the check this case segfaulted.
    X, Y = data
    csc = X.tocsc()
    csc.indices[3] = 10**7
    with pytest.raises(ValueError, match="row index 10000000 out of range"):
        fitted.predict_topk(csc)
    coo = X.tocoo(copy=True)  # tocoo() would share X.indices
    coo.col[0] = -1
    with pytest.raises(ValueError, match="column index -1 out of range"):
        SlideClassifier(**FAST).fit(coo, Y)
    coo = X.tocoo(copy=True)  # tocoo() would share X.indices
    coo.row[0] = X.shape[0]
    with pytest.raises(ValueError, match=f"row index {X.shape[0]} out of range"):
        fitted.predict_topk(coo)


def test_malformed_sparse_y_is_refused(data):
    X, Y = data
    for Y_bad, match in (
        (_with(Y, indices=np.where(np.arange(Y.nnz) == 2, 10**6, Y.indices)),
         "y: column index 1000000"),
        (_with(Y, indices=np.where(np.arange(Y.nnz) == 2, -1, Y.indices)), "y: column index -1"),
        (_with(Y, indptr=Y.indptr[::-1].copy()), "y.indptr must start at 0"),
    ):
        with pytest.raises(ValueError, match=match):
            SlideClassifier(**FAST).fit(X, Y_bad)


def _scramble_rows(X, seed=0):
    """Same matrix with every row's entries in random order, some split in two
    duplicates that sum to the original value."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        c, v = X.indices[lo:hi].copy(), X.data[lo:hi].copy()
        split = rng.random(c.size) < 0.3
        c = np.concatenate([c, c[split]])
        v = np.concatenate([v, v[split] * 0.5])
        v[: split.size][split] *= 0.5
        order = rng.permutation(c.size)
        rows.append(np.full(c.size, i))
        cols.append(c[order])
        vals.append(v[order])
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    scrambled = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), np.concatenate(cols), indptr), shape=X.shape
    )
    assert not scrambled.has_canonical_format
    return scrambled


def test_unsorted_and_duplicate_indices_give_the_canonical_result(data, fitted):
    # Decision: duplicates are summed (scipy's meaning), on a copy.
    X, Y = data
    messy = _scramble_rows(X)
    before = (messy.indices.copy(), messy.data.copy())
    np.testing.assert_allclose(messy.toarray(), X.toarray(), rtol=1e-6)
    labels, scores = fitted.predict_topk(messy, k=5)
    expected_labels, expected_scores = fitted.predict_topk(X, k=5)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
    assert SlideClassifier(**FAST).fit(messy, Y).score(X, Y) == pytest.approx(
        SlideClassifier(**FAST).fit(X, Y).score(X, Y), abs=0.02
    )
    # The caller's matrix is not modified.
    np.testing.assert_array_equal(messy.indices, before[0])
    np.testing.assert_array_equal(messy.data, before[1])


def test_stale_canonical_flag_does_not_hide_unsorted_indices(data, fitted):
    # scipy caches has_canonical_format; reversing the indices of every row in
    # place leaves the cached True. The estimator recomputes it.
    X, _ = data
    X_mut = X.copy()
    assert X_mut.has_canonical_format
    for i in range(X_mut.shape[0]):
        lo, hi = X_mut.indptr[i], X_mut.indptr[i + 1]
        X_mut.indices[lo:hi] = X_mut.indices[lo:hi][::-1].copy()
        X_mut.data[lo:hi] = X_mut.data[lo:hi][::-1].copy()
    assert X_mut.has_canonical_format  # stale
    assert not is_canonical(X_mut)
    np.testing.assert_array_equal(fitted.predict_topk(X_mut)[0], fitted.predict_topk(X)[0])


def test_non_canonical_storage_gives_the_same_model(data):
    # Unused trailing storage and explicit zeros are scipy-valid and must not
    # change anything: a stored zero used to mark its feature as touched, so
    # Adam's momentum moved its weights.
    X, Y = make_extreme_multilabel(300, 5000, 20, random_state=1)
    trailing = _with(
        X,
        data=np.r_[X.data, np.ones(4, np.float32)],
        indices=np.r_[X.indices, np.zeros(4, np.int32)],
    )
    coo = X.tocoo(copy=True)  # tocoo() would share X.indices
    zeros = sp.csr_matrix(
        (np.r_[coo.data, np.zeros(300, np.float32)],
         (np.r_[coo.row, np.arange(300)], np.r_[coo.col, (np.arange(300) * 7) % 5000])),
        shape=X.shape,
    )
    assert trailing.indices.size > trailing.indptr[-1] and np.sum(zeros.data == 0) > 100
    reference = SlideClassifier(**FAST).fit(X, Y)
    for variant in (trailing, zeros):
        assert_same_model(SlideClassifier(**FAST).fit(variant, Y), reference)
        np.testing.assert_array_equal(
            reference.predict_topk(variant)[1], reference.predict_topk(X)[1]
        )


def test_64bit_indices_are_accepted(data, fitted):
    X, Y = data
    X64 = _with(X, indices=X.indices.astype(np.int64), indptr=X.indptr.astype(np.int64))
    assert X64.indices.dtype == np.int64
    np.testing.assert_array_equal(fitted.predict_topk(X64)[0], fitted.predict_topk(X)[0])
    assert_same_model(SlideClassifier(**FAST).fit(X64, Y), SlideClassifier(**FAST).fit(X, Y))


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")
@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "dok", "dia", "bsr"])
def test_every_sparse_format_gives_the_csr_result(data, fitted, fmt):
    X, _ = data
    np.testing.assert_array_equal(
        fitted.predict_topk(X.asformat(fmt))[0], fitted.predict_topk(X)[0]
    )


# ------------------------------------------------------------------------ X shapes


def test_empty_matrices_are_refused(data, fitted):
    X, Y = data
    with pytest.raises(ValueError, match="0 sample"):
        SlideClassifier(**FAST).fit(X[:0], Y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        SlideClassifier(**FAST).fit(sp.csr_matrix((X.shape[0], 0)), Y)
    with pytest.raises(ValueError, match="0 sample"):
        fitted.predict_topk(X[:0])
    with pytest.raises(ValueError, match="0 feature"):
        fitted.predict_topk(np.zeros((3, 0), dtype=np.float32))


def test_rows_without_any_feature_work(data, fitted):
    X, Y = data
    empty = sp.csr_matrix(X.shape, dtype=np.float32)
    labels, scores = fitted.predict_topk(empty[:4], k=3)
    assert labels.shape == (4, 3) and np.all(labels == labels[0]) and np.isfinite(scores).all()
    clf = SlideClassifier(**FAST).fit(empty, Y)
    assert np.isfinite(clf.loss_curve_).all()


def test_one_sample_and_one_feature(data):
    X, Y = data
    one = SlideClassifier(**FAST).fit(X[:1], Y[:1])
    assert one.n_samples_seen_ == 1
    assert one.predict(X[:3]).shape == (3, Y.shape[1])
    with pytest.raises(ValueError, match="class"):
        SlideClassifier(**FAST).fit(X[:1], [3])  # one sample of 1-D y: one class
    narrow = SlideClassifier(**FAST).fit(X[:, :1], Y)
    assert narrow.n_features_in_ == 1
    assert narrow.predict_topk(X[:5, :1], k=2)[0].shape == (5, 2)


def test_n_features_mismatch_at_predict_time(data, fitted):
    X, Y = data
    for method in ("predict_topk", "predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(ValueError, match="X has 199 features, but .* is expecting 200"):
            getattr(fitted, method)(X[:, :-1])
    with pytest.raises(ValueError, match="expecting 200"):
        fitted.score(sp.hstack([X, X[:, :1]]).tocsr(), Y)
    with pytest.raises(ValueError, match="expecting 200"):
        SlideClassifier(**FAST).partial_fit(X, Y).partial_fit(X[:, :-1], Y)


def test_wrong_X_dimensions(data, fitted):
    X, Y = data
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.predict_topk(np.ones(200, dtype=np.float32))
    with pytest.raises(ValueError, match="dim 3"):
        SlideClassifier(**FAST).fit(np.ones((300, 2, 2)), Y)


def test_refused_fit_leaves_the_estimator_as_it_was(data):
    # Validation sets n_features_in_ before the fit fails: it must be undone,
    # or the estimator would look fitted (AttributeError instead of
    # NotFittedError) or a fitted one would expect the refused X's width.
    X, Y = data
    clf = SlideClassifier(**FAST)
    with pytest.raises(ValueError, match="no positive label"):
        clf.fit(X, sp.csr_matrix(Y.shape))
    assert not hasattr(clf, "n_features_in_")
    with pytest.raises(NotFittedError):
        clf.predict_topk(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.partial_fit(X, np.zeros(300), classes=[0])
    with pytest.raises(NotFittedError):
        clf.predict(X)
    expected = clf.fit(X, Y).predict_topk(X)
    with pytest.raises(ValueError, match="no positive label"):
        clf.fit(X[:, :50], sp.csr_matrix(Y.shape))
    assert clf.n_features_in_ == 200
    np.testing.assert_array_equal(clf.predict_topk(X)[1], expected[1])
    with pytest.raises(ValueError, match="expecting 200"):
        clf.predict_topk(X[:, :50])


# ---------------------------------------------------------------------------- y


def test_y_without_any_positive_label_is_refused(data):
    X, Y = data
    for empty in (sp.csr_matrix(Y.shape, dtype=np.int32), np.zeros(Y.shape, dtype=np.int32)):
        with pytest.raises(ValueError, match="no positive label"):
            SlideClassifier(**FAST).fit(X, empty)
    # Decision: a partial_fit chunk without labels is a legal part of a stream
    # (the label space is fixed by the columns); it trains nothing.
    streamed = SlideClassifier(**FAST).partial_fit(X, sp.csr_matrix(Y.shape, dtype=np.int32))
    assert streamed.loss_curve_ == [0.0] and streamed.label_counts_.sum() == 0
    streamed.partial_fit(X, Y)
    assert streamed.loss_curve_[-1] > 0


def test_rows_without_labels_train(data):
    X, Y = data
    Y_part = Y.tolil()
    Y_part[: X.shape[0] // 2] = 0
    Y_part = Y_part.tocsr()
    clf = SlideClassifier(**FAST).fit(X, Y_part)
    assert clf.n_samples_seen_ == X.shape[0]
    np.testing.assert_array_equal(clf.label_counts_, np.asarray(Y_part.sum(axis=0)).ravel())
    assert np.isfinite(clf.loss_curve_).all()
    assert clf.predict(X[:5]).shape == (5, Y.shape[1])
    # A batch of unlabelled rows only (batch_size=1, no shuffling) is fine too.
    SlideClassifier(**{**FAST, "shuffle": False, "batch_size": 1}).partial_fit(X, Y_part)


def test_labels_seen_only_at_predict_time_multiclass(data, fitted_multiclass):
    # A class absent from training can never be predicted: it counts as a miss.
    X, _ = data
    clf, y = fitted_multiclass
    y_new = y.copy()
    y_new[:100] = 99
    predicted = clf.predict(X)
    expected = np.mean(predicted == y_new)
    assert clf.score(X, y_new) == pytest.approx(expected)
    assert precision_at_k_scorer(1)(clf, X, y_new) == pytest.approx(expected)
    scores = xmc_scorer(k_values=(1, 3))(clf, X, y_new)
    assert all(np.isfinite(v) for v in scores.values())


def test_labels_seen_only_at_predict_time_multilabel(data):
    # Label columns never positive in training: predictions simply miss them,
    # propensity-scored metrics stay finite.
    X, Y = data
    Y_train = Y.tolil()
    Y_train[:, 0] = 0
    clf = SlideClassifier(**FAST).fit(X, Y_train.tocsr())
    assert clf.label_counts_[0] == 0
    assert 0.0 <= clf.score(X, Y) <= 1.0
    scores = xmc_scorer(k_values=(1, 3))(clf, X, Y)
    assert all(np.isfinite(v) for v in scores.values())
    # A y with other columns than the model's labels is refused, not misread.
    wider = sp.hstack([Y, sp.csr_matrix((X.shape[0], 3))]).tocsr()
    with pytest.raises(ValueError, match=r"y has shape \(300, 23\); expected \(300, 20\)"):
        clf.score(X, wider)
    with pytest.raises(ValueError, match="label columns"):
        xmc_scorer(k_values=(1,))(clf, X, wider)


def test_score_with_mismatched_y(data, fitted, fitted_multiclass):
    X, Y = data
    with pytest.raises(ValueError, match=r"y has shape \(10, 20\); expected \(300, 20\)"):
        fitted.score(X, Y[:10])
    with pytest.raises(ValueError, match=r"y has shape \(1, 300\)"):
        fitted.score(X, np.zeros(300))
    clf, y = fitted_multiclass
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X, y[:10])
    with pytest.raises(ValueError, match="sample_weight.shape"):
        clf.score(X, y, sample_weight=np.ones(5))
    assert clf.score(X, y, sample_weight=np.ones(300)) == clf.score(X, y)


@pytest.mark.filterwarnings("ignore:A column-vector y was passed")
def test_single_class_is_refused(data):
    X, Y = data
    for y in (np.zeros(300), np.full(300, "a"), np.ones((300, 1))):
        with pytest.raises(ValueError, match="at least 2 classes"):
            SlideClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SlideClassifier(**FAST).partial_fit(X, np.zeros(300), classes=[0])


@pytest.mark.parametrize(
    "make_y, match",
    [
        (lambda n: np.linspace(0, 1, n), "Unknown label type: continuous"),
        (lambda n: np.c_[np.linspace(0, 1, n), np.ones(n)], "Unknown label type"),
        (lambda n: np.c_[np.arange(n) % 3, np.ones(n)], "Unknown label type"),  # values beyond 0/1
        (lambda n: np.r_[np.nan, np.arange(n - 1) % 2], "Input y contains NaN"),
        (lambda n: (np.arange(n) % 2).astype(np.complex128), "Complex data not supported"),
        (lambda n: np.zeros((n, 2, 2)), "dim 3"),
    ],
)
def test_non_class_targets_are_refused(data, make_y, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**FAST).fit(X, make_y(X.shape[0]))


def test_mismatched_row_counts(data):
    X, Y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SlideClassifier(**FAST).fit(X, Y[:200])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SlideClassifier(**FAST).fit(X[:10], np.arange(11) % 2)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SlideClassifier(**FAST).partial_fit(X, Y).partial_fit(X[:5], Y[:6])


def test_partial_fit_with_labels_outside_classes(data):
    X, Y = data
    clf = SlideClassifier(**FAST).partial_fit(X, np.arange(300) % 3, classes=[0, 1, 2])
    weights = {k: v.copy() for k, v in _weights(clf).items()}
    with pytest.raises(ValueError, match=r"y contains labels not in classes: \[5\]"):
        clf.partial_fit(X[:4], [0, 1, 5, 2])
    with pytest.raises(ValueError, match="differ from the classes of the first partial_fit"):
        clf.partial_fit(X[:4], [0, 1, 1, 2], classes=[0, 1, 2, 3])
    for key, value in _weights(clf).items():  # refused before any training
        np.testing.assert_array_equal(value, weights[key])
    multilabel = SlideClassifier(**FAST).partial_fit(X, Y)
    with pytest.raises(ValueError, match="y has 23 label columns but the model has 20 labels"):
        multilabel.partial_fit(X, sp.hstack([Y, sp.csr_matrix((300, 3))]).tocsr())
    with pytest.raises(ValueError, match="y is multiclass but the model was fitted on multilabel"):
        multilabel.partial_fit(X, np.arange(300) % 2)
    with pytest.raises(ValueError, match="classes has 5 entries but y has 20 label columns"):
        SlideClassifier(**FAST).partial_fit(X, Y, classes=np.arange(5))


@pytest.mark.parametrize(
    "classes, values",
    [
        ([2, 0, 1], [0, 1, 2]),
        (np.array([2, 0, 1]), [0, 1, 2]),
        (["c", "a", "b"], ["a", "b", "c"]),
        ([0, 1, 1, 2], [0, 1, 2]),  # repeats, as np.unique reads them
    ],
)
def test_partial_fit_takes_the_same_classes_again_in_any_order(data, classes, values):
    # Before: the second call compared classes to the sorted classes_ as given,
    # so unsorted classes (and sklearn_slide.dask.partial_fit_stream, which
    # passes them with every block) were refused at the second call.
    X, _ = data
    y = np.asarray(values)[np.arange(X.shape[0]) % 3]
    clf = SlideClassifier(**FAST).partial_fit(X, y, classes=classes)
    clf.partial_fit(X, y, classes=classes)
    clf.partial_fit(X, y, classes=list(reversed(classes)))
    assert clf.n_iter_ == 3
    np.testing.assert_array_equal(clf.classes_, np.unique(values))
    with pytest.raises(ValueError, match="classes must be a 1-D array-like"):
        SlideClassifier(**FAST).partial_fit(X, y, classes=3)


def _indicator_with(Y, absent, present, sparse):
    dense = np.where(Y.toarray() != 0, present, absent)
    return sp.csr_matrix(dense) if sparse else dense


@pytest.mark.parametrize("absent, present", [(-1, 1), (0, 2), (0, -1), (0, 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
def test_indicator_values_other_than_0_and_1_are_refused(data, fitted, absent, present,
                                                         sparse):
    # Before: a dense {-1, +1} indicator trained as if every label were
    # relevant on every row, and score returned 1.0 for it.
    X, Y = data
    bad = _indicator_with(Y, absent, present, sparse)
    match = "other than 0 and 1|Unknown label type|binary"
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**FAST).fit(X, bad)
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**FAST).partial_fit(X, bad)
    model = SlideClassifier(**FAST).fit(X, Y)
    weights = {k: v.copy() for k, v in _weights(model).items()}
    with pytest.raises(ValueError, match=match):
        model.partial_fit(X, bad)
    for key, value in _weights(model).items():
        np.testing.assert_array_equal(value, weights[key])
    for score in (fitted.score, xmc_scorer().__call__, precision_at_k_scorer(1).__call__):
        args = (X, bad) if score == fitted.score else (fitted, X, bad)
        with pytest.raises(ValueError, match=match):
            score(*args)


def test_indicators_of_bools_and_floats_are_0_and_1(data, fitted):
    X, Y = data
    for y in (Y.toarray().astype(bool), Y.toarray().astype(np.float32), Y.astype(np.float64)):
        assert fitted.score(X, y) == fitted.score(X, Y)
        SlideClassifier(**FAST).fit(X, y)


# --------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hash_bits=33), "'hash_bits' parameter"),  # wider than the 32-bit bucket index
        (dict(hash_bits=2**40), "'hash_bits' parameter"),
        (dict(hash_bits=0), "'hash_bits' parameter"),
        (dict(bucket_size=0), "'bucket_size' parameter"),
        (dict(bucket_size=2**31), "'bucket_size' parameter"),  # the engine's int
        (dict(n_tables=0), "'n_tables' parameter"),
        (dict(n_tables=4097), "'n_tables' parameter"),
        (dict(max_active=2**70), "'max_active' parameter"),
        (dict(min_active=-1), "'min_active' parameter"),
        (dict(batch_size=2**70), "'batch_size' parameter"),
        (dict(rehash_interval=2**70), "'rehash_interval' parameter"),
        (dict(rebuild_every=2**70), "'rebuild_every' parameter"),
        (dict(n_threads=100_000), "'n_threads' parameter"),  # libgomp would exit the process
        (dict(n_threads=0), "'n_threads' parameter"),
        (dict(learning_rate=float("nan")), "'learning_rate' parameter"),
        (dict(learning_rate=float("inf")), "'learning_rate' parameter"),
        (dict(rehash_growth=0.5), "'rehash_growth' parameter"),
        (dict(hidden_layer_sizes=(2**31,)), "hidden_layer_sizes must contain ints in"),
        (dict(hidden_layer_sizes=(True,)), "hidden_layer_sizes must contain ints in"),
        (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes must contain ints in"),
        (dict(hidden_layer_sizes=(2.5,)), "hidden_layer_sizes must contain ints in"),
    ],
)
def test_parameters_out_of_range(data, params, match):
    X, Y = data
    for hash_family in ("dwta", None):
        with pytest.raises(ValueError, match=match):
            SlideClassifier(**{**FAST, "hash_family": hash_family, **params}).fit(X, Y)
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**{**FAST, **params}).partial_fit(X, Y)


@pytest.mark.parametrize("family", ["simhash", "wta", "dwta", "minhash"])
def test_largest_hash_bits_and_tables_work(data, family):
    # K = 32 codes of 3 bits do not fit the bucket index: they are hashed into it.
    X, Y = data
    clf = SlideClassifier(
        **{**FAST, "max_iter": 1}, hash_family=family, hash_bits=32, n_tables=64,
        candidates="lsh",
    ).fit(X, Y)
    labels, _ = clf.predict_topk(X[:10], k=3)
    assert ((labels >= 0) & (labels < Y.shape[1])).all()


# ------------------------------------------------------------------ memory budget


def _refused_without_allocating(fn, match):
    """fn() raises ValueError matching `match` with a byte count, and allocates
    less than 20 MB on the way (numpy allocations are traced by tracemalloc)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as info:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
    assert "bytes" in str(info.value)
    return str(info.value)


def test_network_above_the_available_memory_is_refused_before_allocating(data, monkeypatch):
    # Default budget: the memory available now. 2**30 hidden units on 200
    # features need terabytes.
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    X, Y = data
    clf = SlideClassifier(**{**FAST, "hidden_layer_sizes": (2**30,)})
    message = _refused_without_allocating(lambda: clf.fit(X, Y), "training would need about")
    assert "network" in message and "the memory available now" in message
    needed = int(message.split("about ")[1].split(" bytes")[0].replace(",", ""))
    assert needed > 12 * 200 * 2**30  # at least the weights and Adam moments
    assert not hasattr(clf, "_network")


def test_hash_tables_above_the_budget_are_refused_before_allocating(monkeypatch):
    X, Y = make_extreme_multilabel(50, 100, 5000, random_state=0)
    # 4096 tables of 2**12 or 2**13 buckets and 5000 ids: 149 to 216 MB.
    params = dict(**FAST, hash_family="dwta", candidates="lsh", n_tables=4096, hash_bits=8)
    bits = network_state.table_bits_for("dwta", 8, 5000, FAST["hidden_layer_sizes"][-1])
    tables = memory.table_bytes(n_tables=4096, table_bits=bits, n_labels=5000)
    assert tables > 100 * 2**20
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "100M")
    clf = SlideClassifier(**params)
    message = _refused_without_allocating(lambda: clf.fit(X, Y), "training would need about")
    assert f"hash tables {tables / 2**30:.2f} GiB" in message
    assert f"{MEMORY_LIMIT_ENV}=100M" in message
    with pytest.raises(ValueError, match="hash tables"):
        clf.partial_fit(X, Y)
    assert not hasattr(clf, "_network")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "none")  # the budget can be lifted
    SlideClassifier(**{**params, "n_tables": 64}).fit(X, Y)


def test_training_buffers_of_a_fitted_model_are_checked(data, monkeypatch):
    X, Y = data
    clf = SlideClassifier(**FAST).fit(X, Y)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1K")
    with pytest.raises(ValueError, match="training buffers"):
        clf.partial_fit(X, Y)
    with pytest.raises(ValueError, match="training buffers"):
        clf.set_params(warm_start=True).fit(X, Y)
    assert clf.n_iter_ == FAST["max_iter"]


def test_dense_outputs_above_the_budget_are_refused(data, fitted, monkeypatch):
    X, Y = data
    dense = SlideClassifier(**FAST, reranker=None).fit(X, Y.toarray())
    # 300 x 20 float32 = 24,000 bytes; top-5 labels and scores: 12,000 bytes.
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "20000")
    with pytest.raises(ValueError, match=r"predict_proba would need about 24,000 bytes"):
        fitted.predict_proba(X)
    with pytest.raises(ValueError, match=r"predict would need about 24,000 bytes"):
        dense.predict(X)
    network_only = copy.copy(fitted).set_params(reranker=None)
    assert network_only.predict_topk(X, k=5)[0].shape == (300, 5)
    with pytest.raises(ValueError, match=r"predict_topk would need about 24,000 bytes"):
        network_only.predict_topk(X, k=10)
    # The re-ranker scores a shortlist of max(k, 32) labels (here all 20).
    with pytest.raises(ValueError, match=r"predict_topk would need about 48,000 bytes"):
        fitted.predict_topk(X, k=5)
    # The fixed 1 GiB limit of dense outputs reports the bytes too.
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    monkeypatch.setattr(memory, "DENSE_OUTPUT_LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match=r"\(24,000 bytes.*use predict_topk"):
        fitted.predict_proba(X)


def test_malformed_budget_setting(data, fitted, monkeypatch):
    X, _ = data
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MEMORY_LIMIT_ENV}='lots'"):
        fitted.predict_topk(X)

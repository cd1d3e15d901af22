"""Models pickled by an older sklearn_slide load and behave as they did.

tests/data/models_4088783.pkl.gz holds two models pickled at main 4088783 with
their data and what they predicted then, before and after one more
``partial_fit`` epoch (tests/data/make_pickled_models.py says how it was made).
On the kernel set that wrote it the results must be bit-identical; on another
CPU, equal to float32 rounding (as tests/test_kernels.py compares kernel sets).
"""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

# _engine: bit-identical top-k only with the recording's kernel set (no public name).
from sklearn_slide._engine import active_kernels

FIXTURE = Path(__file__).parent / "data" / "models_4088783.pkl.gz"


@pytest.fixture(scope="module")
def record():
    with gzip.open(FIXTURE, "rb") as fh:
        return pickle.load(fh)


def assert_same_topk(got, expected, identical):
    labels, scores = got
    ref_labels, ref_scores = expected
    if identical:
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(scores, ref_scores)
        return
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-5)
    close = np.isclose(ref_scores[:, :-1], ref_scores[:, 1:], rtol=1e-4, atol=1e-5).any(axis=1)
    np.testing.assert_array_equal(labels[~close], ref_labels[~close])


def assert_same_outputs(clf, X, expected, modes, identical):
    for mode in modes:
        k = expected[mode][0].shape[1]
        assert_same_topk(clf.set_params(inference=mode).predict_topk(X, k=k), expected[mode],
                         identical)
    predicted = clf.set_params(inference="exact").predict(X)
    if identical:
        if sp.issparse(predicted):
            predicted, reference = predicted.toarray(), expected["predict"].toarray()
        else:
            reference = expected["predict"]
        np.testing.assert_array_equal(predicted, reference)


@pytest.mark.parametrize("name", ["lsh", "exact"])
def test_old_pickle_predicts_and_trains_as_before(record, name):
    entry = record["models"][name]
    identical = active_kernels() == record["kernels"]
    clf = pickle.loads(entry["pickle"])
    X_test = record["X_test"]
    # inference="lsh" is deprecated: it predicts as "clusters" now.
    modes = [mode for mode in entry["modes"] if mode != "lsh"]
    assert_same_outputs(clf, X_test, entry["before"], modes, identical)
    y = record["Y_train"] if name == "lsh" else record["y_class"]
    clf.partial_fit(record["X_train"], y)
    assert_same_outputs(clf, X_test, entry["after_partial_fit"], ("exact",), identical)
    # The loaded model pickles again, and the copy predicts what it does.
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_topk(X_test, k=2)[0],
                                  clf.predict_topk(X_test, k=2)[0])

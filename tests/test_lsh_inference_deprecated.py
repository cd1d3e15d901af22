"""inference="lsh" is deprecated: a FutureWarning, then the label clusters' answers.

The training hash tables gave recall@5 of the exact top 5 of 0.05 at 100k labels
(BENCHMARKS.md, inference): the value now predicts as inference="clusters", for
one release, and models saved with it load with "clusters".
"""

import pickle
import warnings

import numpy as np
import pytest

from sklearn_slide import SlideClassifier

FAST = dict(max_iter=2, random_state=0, n_threads=1, n_probes=2)
DEPRECATED = 'inference="lsh" is deprecated'


@pytest.fixture(scope="module", params=["lsh", "clusters", None])
def fitted(request, xmc_small):
    # With SLIDE's tables, with cluster candidates (no tables) and trained exactly.
    X, Y, X_test, Y_test = xmc_small
    if request.param is None:
        clf = SlideClassifier(hash_family=None, **FAST)
    else:
        clf = SlideClassifier(hash_family="dwta", candidates=request.param, **FAST)
    return clf.fit(X, Y), X_test, Y_test


def _recorded(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, FutureWarning)]


def test_lsh_inference_warns_and_predicts_as_clusters(fitted):
    clf, X_test, Y_test = fitted
    clusters = clf.set_params(inference="clusters").predict_topk(X_test, k=5)
    expected = {"predict_topk": clusters, "predict": clf.predict(X_test).toarray(),
                "score": clf.score(X_test, Y_test)}
    clf.set_params(inference="lsh")
    calls = {"predict_topk": lambda: clf.predict_topk(X_test, k=5),
             "predict": lambda: clf.predict(X_test),
             "score": lambda: clf.score(X_test, Y_test)}
    try:
        for name, call in calls.items():
            result, caught = _recorded(call)
            assert len(caught) == 1 and DEPRECATED in str(caught[0].message), name
            assert 'inference="clusters"' in str(caught[0].message)
            assert caught[0].filename == __file__, name  # the user's line, not ours
            if name == "predict_topk":
                np.testing.assert_array_equal(result[0], clusters[0])
                np.testing.assert_array_equal(result[1], clusters[1])
            elif name == "predict":
                np.testing.assert_array_equal(result.toarray(), expected["predict"])
            else:
                assert result == expected["score"]
    finally:
        clf.set_params(inference="exact")


def test_other_inference_values_do_not_warn(fitted):
    clf, X_test, _ = fitted
    for inference in ("exact", "clusters"):
        _, caught = _recorded(lambda: clf.set_params(inference=inference).predict_topk(X_test))
        assert caught == []
    clf.set_params(inference="exact")


def test_a_model_saved_with_lsh_inference_loads_with_clusters(fitted):
    clf, X_test, _ = fitted
    blob = pickle.dumps(clf.set_params(inference="lsh"))
    clf.set_params(inference="exact")
    restored, caught = _recorded(lambda: pickle.loads(blob))
    assert len(caught) == 1 and 'loads with inference="clusters"' in str(caught[0].message)
    assert restored.get_params()["inference"] == "clusters"
    labels, _ = restored.predict_topk(X_test, k=5)  # no second warning: it is "clusters"
    np.testing.assert_array_equal(
        labels, clf.set_params(inference="clusters").predict_topk(X_test, k=5)[0])
    clf.set_params(inference="exact")
    _, caught = _recorded(lambda: pickle.loads(pickle.dumps(clf)))
    assert caught == []


def test_fit_accepts_lsh_inference_for_one_release(xmc_small):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(inference="lsh", **FAST).fit(X, Y)
    with pytest.warns(FutureWarning, match=DEPRECATED):
        labels, _ = clf.predict_topk(X_test, k=3)
    assert labels.shape == (X_test.shape[0], 3)

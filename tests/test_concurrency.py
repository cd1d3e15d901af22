"""Training and prediction on one estimator from concurrent threads (docs/reliability.md):
training calls run one at a time and exclusive of predictions, predictions run
together, so every prediction sees one consistent model and nothing crashes."""

import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
from sklearn_slide._model_lock import ModelLock
from sklearn_slide.datasets import make_extreme_multilabel

# Rebuild the tables at every step: the setting that crashed within seconds (issue 17).
TABLE_CHURN = dict(hash_family="dwta", candidates="lsh", rehash_interval=1, rehash_growth=1.0, rebuild_every=1,
                   batch_size=16, min_active=32, max_active=128)
MODES = {"exact": {"inference": "exact"}, "clusters": {"inference": "clusters"},
         "bfloat16": {"inference": "exact", "precision": "bfloat16"}}


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(700, 300, 300, random_state=0)
    return X[:600], Y[:600], X[600:], Y[600:]


def test_training_against_predictions_in_a_subprocess_does_not_crash(tmp_path):
    # The reported crash, as a subprocess so that a segfault fails this test
    # instead of killing the test run; it runs for a bounded time.
    script = textwrap.dedent(f"""
        import threading, time
        from sklearn_slide import SlideClassifier
        from sklearn_slide.datasets import make_extreme_multilabel
        X, Y = make_extreme_multilabel(3000, 1000, 2000, random_state=0)
        models = {{}}
        for name, mode in {MODES!r}.items():
            models[name] = SlideClassifier(**{TABLE_CHURN!r}, max_iter=1, random_state=0,
                                           **mode).fit(X, Y)
        stop = time.monotonic() + 1.5
        def predict(clf):
            while time.monotonic() < stop:
                clf.predict_topk(X[:100], k=5)
        def train(clf):
            while time.monotonic() < stop:
                clf.partial_fit(X[:500], Y[:500])
        threads = []
        for clf in models.values():
            threads += [threading.Thread(target=predict, args=(clf,)) for _ in range(2)]
            threads += [threading.Thread(target=train, args=(clf,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)  # the installed package
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"


def _prediction(clf, method, X, Y):
    if method == "predict_topk":
        return clf.predict_topk(X, k=5)
    if method == "predict":
        return clf.predict(X).toarray()  # Y is CSR: so is predict's indicator
    if method == "predict_proba":
        return clf.predict_proba(X)
    return clf.score(X, Y)


def _same(a, b):
    if isinstance(a, tuple):
        return all(np.array_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["predict_topk", "predict", "predict_proba", "score"])
@pytest.mark.parametrize("training", ["fit", "partial_fit", "warm_start_fit"])
def test_every_concurrent_prediction_is_one_of_the_trained_models(data, training, method, mode):
    X, Y, X_test, Y_test = data
    clf = SlideClassifier(**TABLE_CHURN, **MODES[mode], max_iter=1, random_state=0,
                          warm_start=training == "warm_start_fit").fit(X, Y)
    # The training thread records what each model it committed predicts; it is
    # the only writer, so nothing changes between its call and its reference.
    references = [_prediction(clf, method, X_test, Y_test)]
    seen, errors = [], []
    done = threading.Event()

    def train():
        try:
            for seed in range(1, 4):
                if training == "partial_fit":
                    clf.partial_fit(X, Y)
                else:
                    clf.set_params(random_state=seed).fit(X, Y)
                references.append(_prediction(clf, method, X_test, Y_test))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            done.set()

    def predict():
        try:
            while not done.is_set():
                seen.append(_prediction(clf, method, X_test, Y_test))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=train)] + [threading.Thread(target=predict)
                                                  for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen
    for result in seen:
        assert any(_same(result, ref) for ref in references)


def test_two_concurrent_partial_fits_equal_two_sequential_ones(data):
    X, Y, X_test, _ = data
    sequential = SlideClassifier(**TABLE_CHURN, max_iter=1, random_state=0).fit(X, Y)
    concurrent = pickle.loads(pickle.dumps(sequential))
    sequential.partial_fit(X, Y).partial_fit(X, Y)
    threads = [threading.Thread(target=concurrent.partial_fit, args=(X, Y)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert concurrent.n_iter_ == sequential.n_iter_ == 3
    for a, b in zip(concurrent.predict_topk(X_test), sequential.predict_topk(X_test)):
        np.testing.assert_array_equal(a, b)


def test_pickling_during_training_gives_a_consistent_model(data):
    X, Y, X_test, _ = data
    clf = SlideClassifier(**TABLE_CHURN, max_iter=1, random_state=0).fit(X, Y)
    references = [clf.predict_topk(X_test)]
    blobs = []
    done = threading.Event()

    def train():
        for _ in range(3):
            clf.partial_fit(X, Y)
            references.append(clf.predict_topk(X_test))
        done.set()

    trainer = threading.Thread(target=train)
    trainer.start()
    while not done.is_set():
        blobs.append(pickle.dumps(clf))
    trainer.join()
    for blob in blobs:
        labels, scores = pickle.loads(blob).predict_topk(X_test)
        assert any(np.array_equal(labels, r[0]) and np.array_equal(scores, r[1])
                   for r in references)


def test_model_lock_is_reentrant_and_excludes_writers_from_readers():
    lock = ModelLock()
    order = []
    with lock.reading():
        with lock.reading():  # score -> predict_topk on one thread
            pass
        writer = threading.Thread(target=lambda: lock.writing().__enter__() or order.append("w"))
        writer.start()
        writer.join(timeout=0.2)
        assert writer.is_alive()  # waits for the reader
        order.append("r")
        with pytest.raises(RuntimeError, match="inside its own prediction"):
            with lock.writing():
                pass
    writer.join(timeout=5)
    assert order == ["r", "w"]

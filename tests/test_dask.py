"""Scale-out with Dask against a real LocalCluster, compared with one machine.

The cluster uses worker processes (processes=True), as a real deployment does:
models and data are pickled to other processes, and the workers get Dask's
``OMP_NUM_THREADS=1``, whose effect on ``n_threads=None`` is tested here. Two
workers of one thread each keep the load small on a shared 2-core machine.
"""

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import cloudpickle  # a dependency of distributed
import dask.array as da
import joblib
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from sklearn_slide import SlideClassifier
from sklearn_slide import dask as slide_dask
from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import xmc_scorer

# The probe scorer below runs on worker processes, which cannot import this
# file (pytest imports it under --import-mode=importlib): ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dask_scale_out.py"
N_FEATURES, N_LABELS = 2000, 300
SMALL = {"hidden_layer_sizes": (32,), "batch_size": 32, "min_active": 32, "max_active": 128}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(900, N_FEATURES, N_LABELS, random_state=0)
    return X[:600], Y[:600], X[600:], Y[600:]


@pytest.fixture(scope="module")
def fitted(data):
    X, Y, _, _ = data
    clf = SlideClassifier(hash_family="dwta", candidates="lsh", max_iter=2, n_threads=1,
                          random_state=0, **SMALL)
    return clf.fit(X, Y)


def _expected_openmp_default():
    """What a Dask worker's OpenMP uses: the nanny sets OMP_NUM_THREADS=1
    unless the variable is already set where the cluster starts."""
    value = os.environ.get("OMP_NUM_THREADS", "1").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _probe(estimator, X, y):
    """Scorer recording where a fit ran and with how many threads."""
    from sklearn_slide import effective_n_threads

    scores = xmc_scorer(k_values=(1,), propensity=False)(estimator, X, y)
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    scores["threads"] = effective_n_threads(final.n_threads)
    scores["pid"] = os.getpid()
    return scores


def _split_values(search, name):
    return np.concatenate([
        search.cv_results_[key] for key in search.cv_results_
        if key.startswith("split") and key.endswith(f"_test_{name}")
    ])


def _assert_same_state(a, b, path="model"):
    """Recursive exact equality of fitted state (dicts, lists, arrays, scalars)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, np.random.RandomState):
        _assert_same_state(a.get_state(legacy=False), b.get_state(legacy=False), path)
    else:
        assert a == b, path


def _assert_same_model(a, b):
    for name in ("_network", "_rng", "classes_", "label_counts_", "n_samples_seen_",
                 "n_iter_", "loss_curve_", "n_threads"):
        _assert_same_state(getattr(a, name), getattr(b, name), name)


# ------------------------------------------------------------------ import


def test_importing_sklearn_slide_does_not_import_dask(tmp_path):
    code = (
        "import sys, sklearn_slide, sklearn_slide.metrics, sklearn_slide.datasets, "
        "sklearn_slide.model_selection\n"
        "loaded = [m for m in ('dask', 'distributed') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    # cwd: `python -c` puts it first on sys.path, and the source tree has no compiled core.
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------- threads


def test_workers_run_openmp_with_one_thread_by_default(client):
    info = slide_dask.cluster_threads(client)
    assert len(info) == 2
    expected = _expected_openmp_default()
    for worker in info.values():
        assert worker["nthreads"] == 1
        if expected is not None:
            assert worker["openmp_default"] == expected
        assert worker["per_worker"] == max(1, worker["cores"] // 2)
        assert worker["per_task"] == worker["per_worker"]


def test_threads_plan(client, fitted):
    auto = slide_dask._threads_plan(clone(fitted).set_params(n_threads=None), "auto", client,
                                    "per_worker")
    info = slide_dask.cluster_threads(client)
    assert auto == {address: w["per_worker"] for address, w in info.items()}
    assert slide_dask._threads_plan(fitted, "auto", client, "per_task") is None  # explicit 1 kept
    assert slide_dask._threads_plan(fitted, 3, client, "per_task") == 3
    assert slide_dask._threads_plan(fitted, None, client, "per_task") is None
    with pytest.raises(ValueError, match="n_threads"):
        slide_dask._threads_plan(fitted, 0, client, "per_task")
    with pytest.raises(TypeError, match="n_threads"):
        slide_dask._threads_plan(fitted, "4", client, "per_task")
    # On a worker, a per-worker plan resolves to that worker's entry.
    first, second = sorted(info)
    plan = {first: 5, second: 7}
    on_second = client.submit(slide_dask._threads_here, plan, workers=[second], pure=False)
    assert on_second.result() == 7


class _ThreadSpy(SlideClassifier):
    """Records the n_threads each partial_fit call ran with (used in this process only)."""

    def partial_fit(self, X, y, classes=None):
        self.seen_threads_ = [*getattr(self, "seen_threads_", []), self.n_threads]
        return super().partial_fit(X, y, classes=classes)


def test_partial_fit_step_runs_with_the_planned_threads_and_copies_the_model():
    X, Y = make_extreme_multilabel(**_loader_blocks(1, 100)[0])
    model = _ThreadSpy(hash_family="dwta", random_state=0, **SMALL)
    step = slide_dask._partial_fit_step(model, (X, Y), np.arange(N_LABELS), 3, "block 0")
    assert step.seen_threads_ == [3] and step.n_threads is None
    assert not hasattr(model, "seen_threads_")  # the task's input is untouched
    # Outside a worker, a per-worker plan falls back to its smallest share.
    step = slide_dask._partial_fit_step(step, (X, Y), None, {"tcp://a:1": 4, "tcp://b:1": 2}, "")
    assert step.seen_threads_ == [3, 2] and step.n_iter_ == 2


# ------------------------------------------------------------------ search


def _search(estimator, grid=None, scoring=None):
    grid = grid or {"hash_bits": [3, 5]}
    prefix = "slideclassifier__" if hasattr(estimator, "steps") else ""
    grid = {prefix + name: values for name, values in grid.items()}
    return GridSearchCV(estimator, grid, scoring=scoring or xmc_scorer(), refit="P@1", cv=2)


def test_grid_search_on_dask_backend_matches_local_and_scatters_once(client, data, monkeypatch):
    X, Y, _, _ = data  # Y is a sparse label matrix
    # candidates="lsh": the searched hash parameters change the model.
    model = SlideClassifier(hash_family="dwta", candidates="lsh", max_iter=1, n_threads=1,
                            random_state=0, **SMALL)
    local = _search(model, {"hash_bits": [3, 5], "n_tables": [4, 8]}).fit(X, Y)

    scattered = []
    real_scatter = client.scatter

    def counting_scatter(data, *args, **kwargs):
        items = data if isinstance(data, (list, tuple)) else [data]
        scattered.extend(id(item) for item in items)
        return real_scatter(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", counting_scatter)
    remote = _search(model, {"hash_bits": [3, 5], "n_tables": [4, 8]})
    with joblib.parallel_config(backend="dask"):
        remote.fit(X, Y)
    # X and Y went to the cluster once (joblib scatters large arguments once per
    # Parallel call), not with each of the 8 fits.
    assert scattered.count(id(X)) == 1 and scattered.count(id(Y)) == 1
    # n_threads=1: every fit is bit-reproducible, so the results are identical.
    for name in ("P@1", "P@3", "nDCG@5", "PSP@5"):
        np.testing.assert_array_equal(
            remote.cv_results_[f"mean_test_{name}"], local.cv_results_[f"mean_test_{name}"]
        )
    assert remote.best_params_ == local.best_params_


def test_n_threads_none_means_one_thread_on_a_worker(client, data):
    X, Y, _, _ = data
    model = SlideClassifier(hash_family="dwta", max_iter=1, random_state=0, **SMALL)
    search = _search(model, scoring=_probe)
    with joblib.parallel_config(backend="dask"):
        search.fit(X, Y)
    worker_pids = set(client.run(os.getpid).values())
    assert set(_split_values(search, "pid").astype(int)) <= worker_pids
    expected = _expected_openmp_default()
    if expected is not None:
        assert set(_split_values(search, "threads")) == {expected}


def test_search_on_cluster_sets_and_restores_worker_threads(client, data):
    X, Y, _, _ = data
    pipe = make_pipeline(
        MaxAbsScaler(), SlideClassifier(hash_family="dwta", max_iter=1, random_state=0, **SMALL)
    )
    search = _search(pipe, scoring=_probe)
    assert slide_dask.search_on_cluster(search, X, Y, client=client, n_threads=2) is search
    assert set(_split_values(search, "threads")) == {2}
    worker_pids = set(client.run(os.getpid).values())
    assert set(_split_values(search, "pid").astype(int)) <= worker_pids
    # The caller's estimator and the refitted best keep n_threads=None.
    assert search.estimator is pipe and pipe[-1].n_threads is None
    assert search.best_estimator_[-1].n_threads is None

    auto = _search(clone(pipe), scoring=_probe)
    slide_dask.search_on_cluster(auto, X, Y, client=client)
    per_task = min(w["per_task"] for w in slide_dask.cluster_threads(client).values())
    assert set(_split_values(auto, "threads")) == {per_task}


def test_search_on_cluster_keeps_searched_and_explicit_thread_counts(client, data):
    X, Y, _, _ = data
    model = SlideClassifier(hash_family="dwta", max_iter=1, random_state=0, **SMALL)
    searched = _search(model, {"n_threads": [1, 2]}, scoring=_probe)
    slide_dask.search_on_cluster(searched, X, Y, n_threads=3)
    np.testing.assert_array_equal(
        searched.cv_results_["split0_test_threads"],
        searched.cv_results_["param_n_threads"].astype(float),
    )
    explicit = _search(clone(model).set_params(n_threads=1), scoring=_probe)
    slide_dask.search_on_cluster(explicit, X, Y)  # "auto" keeps an explicit int
    assert set(_split_values(explicit, "threads")) == {1}


# -------------------------------------------------------------- prediction


def _block_inputs(X, client):
    blocks = [X[:50], X[50:51], X[51:200], X[200:]]
    return {
        "one CSR matrix": X,
        "dense ndarray": X.toarray(),
        "list of CSR blocks": blocks,
        "generator of COO blocks": (b.tocoo() for b in blocks),
        # hash=False: content-hashed keys are shared with the previous test's
        # scatter of the same blocks, whose release can drop the data under the
        # new futures ("lost dependencies"; see docs/dask.md).
        "futures of blocks": client.scatter(blocks, hash=False),
    }


@pytest.mark.parametrize("inference", ["exact", "clusters"])
def test_predict_topk_over_blocks_equals_local(client, data, fitted, inference):
    _, _, X_test, _ = data
    model = copy.copy(fitted).set_params(inference=inference)
    expected = model.predict_topk(X_test, k=5)
    for name, X in _block_inputs(X_test, client).items():
        labels, scores = slide_dask.predict_topk(model, X, k=5, client=client, block_rows=97)
        assert isinstance(labels, np.ndarray) and labels.dtype == np.int32, name
        np.testing.assert_array_equal(labels, expected[0], err_msg=name)
        np.testing.assert_array_equal(scores, expected[1], err_msg=name)


def test_predict_topk_with_model_default_threads(client, data, fitted):
    _, _, X_test, _ = data
    model = copy.copy(fitted).set_params(n_threads=None)  # "auto": the per-task share
    labels, scores = slide_dask.predict_topk(model, X_test, k=3, block_rows=128)
    expected = fitted.predict_topk(X_test, k=3)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(scores, expected[1])
    assert model.n_threads is None


@pytest.mark.parametrize("chunks", ["sparse", "dense"])
def test_predict_topk_of_a_dask_array_is_lazy_and_equals_local(client, data, fitted, chunks):
    _, _, X_test, _ = data
    source = X_test if chunks == "sparse" else X_test.toarray()
    # Chunked along columns too: the rows are reassembled before ranking.
    X = da.from_array(source, chunks=(70, 700), asarray=False)
    labels, scores = slide_dask.predict_topk(fitted, X, k=4)
    assert isinstance(labels, da.Array) and isinstance(scores, da.Array)
    assert labels.shape == scores.shape == (X_test.shape[0], 4)
    assert labels.dtype == np.int32 and scores.dtype == np.float32
    labels, scores = dask.compute(labels, scores)
    expected = fitted.predict_topk(X_test, k=4)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(scores, expected[1])


def test_predict_topk_checks_its_arguments(client, data, fitted):
    _, _, X_test, _ = data
    with pytest.raises(ValueError, match="k must be"):
        slide_dask.predict_topk(fitted, X_test, k=N_LABELS + 1)
    with pytest.raises(ValueError, match="block_rows"):
        slide_dask.predict_topk(fitted, X_test, block_rows=0)
    with pytest.raises(NotFittedError):
        slide_dask.predict_topk(SlideClassifier(), X_test)
    with pytest.raises(TypeError, match="row blocks"):
        slide_dask.predict_topk(fitted, 3.0)
    labels, scores = slide_dask.predict_topk(fitted, [], k=2)
    assert labels.shape == scores.shape == (0, 2)
    with pytest.raises(ValueError, match="features"):  # a worker's error comes back
        slide_dask.predict_topk(fitted, [X_test[:, :10]], k=2)


# ---------------------------------------------------------------- training


def _loader_blocks(n_blocks, rows):
    """Blocks generated on the workers (a stand-in for reading files there)."""
    return [
        {"n_samples": rows, "n_features": N_FEATURES, "n_labels": N_LABELS, "random_state": seed}
        for seed in range(n_blocks)
    ]


def _local_chain(model, blocks, classes, epochs):
    model = clone(model)
    for _ in range(epochs):
        for X, y in blocks:
            model.partial_fit(X, y, classes=classes)
    return model


@pytest.mark.parametrize(
    "form", ["arrays", "futures", "delayed loaders", "delayed pairs", "dask arrays"]
)
def test_partial_fit_stream_equals_local_chain(client, form):
    model = SlideClassifier(hash_family="dwta", n_threads=1, random_state=0, **SMALL)
    kwargs = _loader_blocks(3, 150)
    local_blocks = [make_extreme_multilabel(**kw) for kw in kwargs]
    epochs = 2 if form in ("arrays", "delayed loaders") else 1
    if form == "arrays":
        blocks = local_blocks
    elif form == "futures":
        blocks = [tuple(client.scatter(list(pair))) for pair in local_blocks]
    elif form == "delayed loaders":  # each loads to an (X, Y) pair on a worker
        blocks = [dask.delayed(make_extreme_multilabel)(**kw) for kw in kwargs]
    elif form == "delayed pairs":  # one loader, two outputs: loaded once
        blocks = [dask.delayed(make_extreme_multilabel, nout=2)(**kw) for kw in kwargs]
    else:
        X = sp.vstack([x for x, _ in local_blocks]).tocsr()
        Y = sp.vstack([y for _, y in local_blocks]).tocsr()
        blocks = (
            da.from_array(X, chunks=(150, 1000), asarray=False),
            da.from_array(Y, chunks=(150, N_LABELS), asarray=False),
        )
    trained = slide_dask.partial_fit_stream(
        model, blocks, classes=N_LABELS, epochs=epochs, client=client, prefetch=1
    )
    expected = _local_chain(model, local_blocks, np.arange(N_LABELS), epochs)
    assert not hasattr(model, "classes_")  # the input model is left alone
    assert trained.n_iter_ == 3 * epochs
    _assert_same_model(trained, expected)


def test_partial_fit_stream_multiclass_with_label_space_up_front(client):
    X, Y = make_extreme_multilabel(400, N_FEATURES, 30, random_state=1)
    y = np.asarray(Y.argmax(axis=1)).ravel() * 10  # class ids 0, 10, ..., 290
    classes = np.arange(30) * 10
    blocks = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]
    model = SlideClassifier(n_threads=1, random_state=0, **SMALL)
    trained = slide_dask.partial_fit_stream(model, blocks, classes=classes)
    expected = _local_chain(model, blocks, classes, 1)
    _assert_same_model(trained, expected)
    np.testing.assert_array_equal(trained.classes_, classes)
    # Continue training a fitted model: classes may be omitted then.
    more = slide_dask.partial_fit_stream(trained, blocks[:2])
    for X_block, y_block in blocks[:2]:
        expected.partial_fit(X_block, y_block)
    _assert_same_model(more, expected)


def test_partial_fit_stream_with_unsorted_classes(client):
    # Every block gets classes again: unsorted ones failed at the second block.
    X, Y = make_extreme_multilabel(300, N_FEATURES, 3, n_labels_per_sample=1, random_state=2)
    y = np.array([2, 0, 1])[np.asarray(Y.argmax(axis=1)).ravel()]
    blocks = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 300, 100)]
    model = SlideClassifier(n_threads=1, random_state=0, **SMALL)
    trained = slide_dask.partial_fit_stream(model, blocks, classes=[2, 0, 1])
    _assert_same_model(trained, _local_chain(model, blocks, [2, 0, 1], 1))
    np.testing.assert_array_equal(trained.classes_, [0, 1, 2])
    assert trained.n_iter_ == 3


def test_partial_fit_stream_auto_threads_keep_the_model_default(client):
    blocks = [make_extreme_multilabel(**kw) for kw in _loader_blocks(2, 100)]
    model = SlideClassifier(hash_family="dwta", random_state=0, **SMALL)  # n_threads=None
    trained = slide_dask.partial_fit_stream(model, blocks, classes=N_LABELS)
    assert trained.n_iter_ == 2 and trained.n_threads is None


def test_partial_fit_stream_errors(client):
    blocks = [make_extreme_multilabel(**kw) for kw in _loader_blocks(2, 100)]
    model = SlideClassifier(hash_family="dwta", n_threads=1, random_state=0, **SMALL)
    with pytest.raises(ValueError, match="classes is required"):
        slide_dask.partial_fit_stream(model, blocks)
    with pytest.raises(TypeError, match="re-iterable"):
        slide_dask.partial_fit_stream(model, iter(blocks), classes=N_LABELS, epochs=2)
    with pytest.raises(ValueError, match="epochs"):
        slide_dask.partial_fit_stream(model, blocks, classes=N_LABELS, epochs=0)
    with pytest.raises(TypeError, match="pair"):
        slide_dask.partial_fit_stream(model, [blocks[0][0]], classes=N_LABELS)
    narrow = [blocks[0], (blocks[1][0], blocks[1][1][:, :100])]
    with pytest.raises(ValueError, match=r"block 1 \(epoch 1\).*100 label columns"):
        slide_dask.partial_fit_stream(model, narrow, classes=N_LABELS)


# ----------------------------------------------------------------- example


def test_example_runs_on_this_cluster(client):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--scheduler", client.scheduler.address],
        check=False, capture_output=True, text=True, timeout=300, cwd=EXAMPLE.parent,
    )
    assert result.returncode == 0, result.stderr
    for line in ("grid search", "predict_topk", "partial_fit_stream", "fit_distributed"):
        assert line in result.stdout

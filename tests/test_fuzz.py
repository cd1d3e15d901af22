"""Bounded fuzzing of the two input paths: the XC reader and the estimator.

Mutated inputs may be refused, never crash, hang or raise anything but
ValueError (reader) or ValueError/TypeError (estimator). The mutators are
plain NumPy random mutations (no extra package); ``tools/fuzz_long.py`` runs
the same targets for minutes, in subprocesses that survive crashes.

Each target takes ``(rng, workdir)``, builds one mutated input, runs it and
returns ``(outcome, reproducer)``; ``run_fuzz`` turns an unexpected exception
or a slow input into a failure that names the random state replaying it.
"""

import bz2
import gzip
import os
import signal
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import dump_xc, load_xc

# ------------------------------------------------------------------- XC reader

XC_SEEDS = [
    b"2 4 3\n0,2 1:0.5 3:1\n 0:2\n",
    b"3 5 4\n1 0:1\n\n2,3 4:-1.5e-3 2:7\r\n",
    b"1 3 2\n0,1\n",
    b"2 10 10\n9 9:1e10\n0,1,2,3,4,5,6,7,8,9 0:0 1:.5 2:+3 3:-0\n",
    b"0 0 0\n",
]

# Tokens that sit on the format's edges: separators, signs, exponents, huge
# ids, non-ASCII and NUL bytes.
XC_TOKENS = [
    b":", b",", b" ", b"\t", b"\n", b"\r\n", b"-", b"+", b".", b"e", b"E", b"-1", b"1e40",
    b"1e-50", b"nan", b"inf", b"0:0", b"1,1", b"99999999999999999999", b"4294967296",
    b"2147483648", b"9007199254740993", b"\x00", b"\xff", b"\xef\xbb\xbf", b"::", b",,",
    b" 0:1", b"0,", b"1:", b":1",
]


def mutate_bytes(rng, data):
    """One to four random edits of ``data``."""
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        op = int(rng.integers(8))
        pos = int(rng.integers(len(data) + 1))
        if op == 0 and data:  # overwrite a byte
            data[min(pos, len(data) - 1)] = int(rng.integers(256))
        elif op == 1:  # insert a token
            token = XC_TOKENS[int(rng.integers(len(XC_TOKENS)))]
            data[pos:pos] = token
        elif op == 2 and data:  # delete a range
            data[pos:pos + int(rng.integers(1, 8))] = b""
        elif op == 3 and data:  # duplicate a range
            chunk = data[pos:pos + int(rng.integers(1, 16))]
            data[pos:pos] = chunk
        elif op == 4:  # truncate
            del data[pos:]
        elif op == 5:  # swap two lines
            lines = bytes(data).split(b"\n")
            if len(lines) > 2:
                i, j = rng.integers(len(lines), size=2)
                lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\n".join(lines))
        elif op == 6:  # replace a digit run with an extreme number
            digits = [i for i, c in enumerate(data) if 48 <= c <= 57]
            if digits:
                i = digits[int(rng.integers(len(digits)))]
                data[i:i + 1] = [b"0", b"18446744073709551616", b"2147483647", b"-7"][
                    int(rng.integers(4))]
        else:  # flip one bit
            if data:
                i = min(pos, len(data) - 1)
                data[i] ^= 1 << int(rng.integers(8))
    return bytes(data)


def _xc_seed(rng, workdir):
    if rng.random() < 0.5:
        return XC_SEEDS[int(rng.integers(len(XC_SEEDS)))]
    n, d, L = int(rng.integers(1, 6)), int(rng.integers(1, 20)), int(rng.integers(1, 8))
    X = sp.random(n, d, density=0.4, format="csr", random_state=int(rng.integers(2**31)),
                  dtype=np.float32)
    Y = sp.random(n, L, density=0.3, format="csr", random_state=int(rng.integers(2**31)))
    Y.data[:] = 1
    path = os.path.join(workdir, "seed.txt")
    dump_xc(X, Y, path)
    with open(path, "rb") as fh:
        return fh.read()


def _check_loaded(X, Y):
    assert X.format == "csr" and Y.format == "csr"
    assert X.dtype == np.float32 and Y.dtype == np.int32
    assert X.shape[0] == Y.shape[0]
    for M in (X, Y):
        assert M.indptr[0] == 0 and np.all(np.diff(M.indptr) >= 0)
        assert M.indptr[-1] == M.indices.size == M.data.size
        if M.nnz:
            assert M.indices.min() >= 0 and M.indices.max() < M.shape[1]
        assert M.has_sorted_indices
    assert np.isfinite(X.data).all()
    assert np.all(Y.data == 1)


def xc_target(rng, workdir):
    """Load one mutated (possibly compressed) XC file: ValueError or a valid result."""
    data = mutate_bytes(rng, _xc_seed(rng, workdir))
    compression = rng.random()
    if compression < 0.15:
        data = gzip.compress(data, compresslevel=1)
    elif compression < 0.25:
        data = bz2.compress(data, compresslevel=1)
    if compression < 0.25 and rng.random() < 0.7:
        data = mutate_bytes(rng, data)  # damage the compressed stream itself
    path = os.path.join(workdir, "fuzz.txt")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        X, Y = load_xc(path)
    except ValueError as exc:
        assert path in str(exc) or "n_features" in str(exc) or "n_labels" in str(exc), str(exc)
        return "refused", data
    _check_loaded(X, Y)
    return "loaded", data


# ------------------------------------------------------------------ estimator

N_FEATURES, N_LABELS = 30, 6
TINY = dict(max_iter=1, random_state=0, n_threads=1, hidden_layer_sizes=(8,), batch_size=16)


def _base_problem(rng):
    n = int(rng.integers(1, 40))
    X = sp.random(n, N_FEATURES, density=0.2, format="csr", dtype=np.float32,
                  random_state=int(rng.integers(2**31)))
    Y = rng.random((n, N_LABELS)) < 0.3
    Y[0, 0] = True  # at least one positive label
    return X, sp.csr_matrix(Y.astype(np.float32))


def _random_index_array(rng, like, n_minor):
    kind = int(rng.integers(6))
    out = np.array(like, copy=True)
    if out.size == 0:
        return out
    i = int(rng.integers(out.size))
    if kind == 0:
        out[i] = -int(rng.integers(1, 10))
    elif kind == 1:
        out[i] = n_minor + int(rng.integers(0, 3))
    elif kind == 2:
        out = out.astype(np.int64)
        out[i] += 2**32  # aliases a valid index if truncated to int32
    elif kind == 3:
        rng.shuffle(out)
    elif kind == 4:
        out = out.astype([np.int8, np.uint64, np.float64, np.int16][int(rng.integers(4))])
    else:
        out[i] = np.iinfo(out.dtype).max
    return out


def _mutated_sparse(rng, M):
    """M (CSR) in a random sparse format with some index/data arrays damaged."""
    fmt = ["csr", "csc", "coo", "bsr", "lil", "dok"][int(rng.integers(6))]
    M = M.asformat(fmt, copy=True)
    if fmt in ("csr", "csc", "bsr"):
        n_minor = M.shape[1] if fmt != "csc" else M.shape[0]
        what = int(rng.integers(5))
        if what == 0:
            M.indices = _random_index_array(rng, M.indices, n_minor)
        elif what == 1:
            indptr = M.indptr.copy()
            if indptr.size:
                indptr[int(rng.integers(indptr.size))] += int(rng.integers(-5, 6))
            M.indptr = indptr
        elif what == 2:
            M.indptr = M.indptr[: int(rng.integers(M.indptr.size + 1))]
        elif what == 3:
            M.indices = M.indices[: int(rng.integers(M.indices.size + 1))]
        else:
            M.data = M.data[: int(rng.integers(M.data.size + 1))]
    elif fmt == "coo":
        axis = int(rng.integers(2))
        coords = list(M.coords)
        coords[axis] = _random_index_array(rng, coords[axis], M.shape[axis])
        if rng.random() < 0.2:
            coords[axis] = coords[axis][:-1]
        M.coords = tuple(coords)
    if fmt in ("csr", "csc", "bsr", "coo") and rng.random() < 0.3 and M.data.size:
        data = M.data.astype([np.float64, np.float16, np.complex64, np.int64, object, bool][
            int(rng.integers(6))])
        if data.dtype.kind == "f" and data.size:
            with np.errstate(over="ignore"):
                data[int(rng.integers(data.size))] = [np.nan, np.inf, -np.inf, 1e300][
                    int(rng.integers(4))]
        try:
            M.data = data
        except (TypeError, ValueError, AttributeError):
            pass
    return M


def _mutated_dense(rng, M):
    A = M.toarray()
    kind = int(rng.integers(8))
    if kind == 0:
        return A.astype(object)
    if kind == 1:
        A = A.astype(object)
        A.flat[int(rng.integers(A.size))] = ["x", None, {"a": 1}, [1, 2], b"7"][
            int(rng.integers(5))]
        return A
    if kind == 2:
        return A.ravel()
    if kind == 3:
        return A[:, :, None]
    if kind == 4:
        return A[:0] if rng.random() < 0.5 else A[:, :0]
    if kind == 5:
        return A.astype([np.complex128, np.float16, np.int8, bool, np.uint64][int(rng.integers(5))])
    if kind == 6:
        return A.tolist()[: max(1, A.shape[0] - 1)] + [[1.0]]  # ragged
    A = A.astype(np.float64)
    A.flat[int(rng.integers(A.size))] = [np.nan, np.inf, 1e300, -1e300][int(rng.integers(4))]
    return A


def _mutated(rng, M):
    choice = rng.random()
    if choice < 0.6:
        return _mutated_sparse(rng, M)
    if choice < 0.9:
        return _mutated_dense(rng, M)
    return M


_FITTED = {}


def _fitted(kind):
    if kind not in _FITTED:
        rng = np.random.default_rng(0)
        X, Y = _base_problem(rng)
        X, Y = sp.vstack([X] * 3).tocsr(), sp.vstack([Y] * 3).tocsr()
        if kind == "multilabel":
            _FITTED[kind] = SlideClassifier(**TINY).fit(X, Y)
        else:
            # With hash tables: damaged tables are fuzzed too.
            _FITTED[kind] = SlideClassifier(
                **TINY, hash_family="dwta", candidates="lsh", min_active=2, max_active=4
            ).fit(X, np.arange(X.shape[0]) % N_LABELS)
    return _FITTED[kind]


def _check_topk(labels, scores, n, k):
    assert labels.shape == scores.shape == (n, k)
    assert labels.dtype == np.int32
    assert ((labels >= -1) & (labels < N_LABELS)).all()


def estimator_target(rng, workdir=None):
    """One fit / partial_fit / predict / score call on mutated X (and y)."""
    X, Y = _base_problem(rng)
    X_bad = _mutated(rng, X)
    action = ["predict_topk", "predict_topk", "fit", "partial_fit", "predict_proba", "score"][
        int(rng.integers(6))]
    k = [1, 3, N_LABELS, 0, N_LABELS + 1, 2.5, -1, "2", None, True][int(rng.integers(10))]
    y = Y
    if action in ("fit", "partial_fit", "score") and rng.random() < 0.5:
        y = _mutated(rng, Y) if rng.random() < 0.7 else np.arange(X.shape[0]) % 3
    repro = (action, k, X_bad, y)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if action == "predict_topk":
                model = _fitted(["multilabel", "multiclass"][int(rng.integers(2))])
                labels, scores = model.predict_topk(X_bad, k=k)
                _check_topk(labels, scores, labels.shape[0], k)
            elif action == "predict_proba":
                proba = _fitted("multilabel").predict_proba(X_bad)
                assert proba.shape[1] == N_LABELS and np.isfinite(proba).all()
            elif action == "score":
                score = _fitted("multilabel").score(X_bad, y)
                assert 0.0 <= score <= 1.0
            elif action == "fit":
                clf = SlideClassifier(**TINY).fit(X_bad, y)
                assert np.isfinite(clf.loss_curve_).all()
            else:
                one_d = isinstance(y, np.ndarray) and y.ndim == 1
                clf = SlideClassifier(**TINY).partial_fit(
                    X_bad, y, classes=np.arange(3) if one_d else None
                )
                clf.partial_fit(X_bad, y)
    except (ValueError, TypeError):
        return "refused", repro
    return "accepted", repro


def _damage_state(rng, network):
    """One random corruption of a fitted model's state dict (in place)."""
    params, tables, schedule = network["params"], network["tables"], network["schedule"]
    where = int(rng.integers(4))
    if where == 0:  # an array of the network
        key = sorted(k for k, v in params.items() if isinstance(v, np.ndarray))[
            int(rng.integers(sum(isinstance(v, np.ndarray) for v in params.values())))]
        value = params[key]
        how = int(rng.integers(6))
        if how == 0:
            params[key] = value.reshape(-1)[: max(0, value.size - int(rng.integers(1, 4)))]
        elif how == 1:
            params[key] = value.T.copy() if value.ndim == 2 else value[None]
        elif how == 2:
            params[key] = value.astype([np.float64, np.int32, np.float16][int(rng.integers(3))])
        elif how == 3:
            del params[key]
        elif how == 4 and value.size:
            flat = value.reshape(-1)
            flat[int(rng.integers(flat.size))] = (
                [np.nan, np.inf, -1e38][int(rng.integers(3))] if value.dtype.kind == "f"
                else [-1, 2**40, -(2**62), 2**62][int(rng.integers(4))]
            )
        else:
            params[key] = np.asfortranarray(np.stack([value, value], axis=-1))[..., 0]
    elif where == 1:  # the layer sizes
        sizes = list(params["layer_sizes"])
        i = int(rng.integers(len(sizes)))
        sizes[i] = [0, -1, sizes[i] + 1, 2**31, 2**40][int(rng.integers(5))]
        params["layer_sizes"] = sizes if rng.random() < 0.8 else sizes[:2]
    elif where == 2 and tables is not None:  # the hash tables
        key = ["offsets", "ids", "n_tables", "table_bits"][int(rng.integers(4))]
        if key in ("n_tables", "table_bits"):
            tables[key] = [0, -3, tables[key] + 1, 31, 70000][int(rng.integers(5))]
        else:
            flat = tables[key].reshape(-1)
            for _ in range(int(rng.integers(1, 4))):
                flat[int(rng.integers(flat.size))] = int(
                    rng.integers(-(2**31), 2**31 - 1)
                ) if rng.random() < 0.5 else int(rng.integers(-3, N_LABELS + 3))
    else:  # the training schedule
        key = ["step", "samples_seen", "next_rehash_step", "rehash_interval", "n_rehashes",
               "hash_seed"][int(rng.integers(6))]
        schedule[key] = [-1, 0, 2**62, float("nan"), 0.5, 2**63 - 1][int(rng.integers(6))]


def state_target(rng, workdir=None):
    """Predict or keep training with a randomly damaged (unpickled) model."""
    import copy
    import pickle

    model = copy.deepcopy(_fitted(["multilabel", "multiclass"][int(rng.integers(2))]))
    _damage_state(rng, model._network)
    action = ["predict_topk", "predict_clusters", "predict_proba", "partial_fit"][int(rng.integers(4))]
    X, Y = _base_problem(rng)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pickle.loads(pickle.dumps(model))
            if action == "predict_topk":
                labels, scores = model.set_params(inference="exact").predict_topk(X, k=2)
                _check_topk(labels, scores, X.shape[0], 2)
            elif action == "predict_clusters":
                labels, scores = model.set_params(inference="clusters").predict_topk(X, k=2)
                _check_topk(labels, scores, X.shape[0], 2)
            elif action == "predict_proba":
                model.predict_proba(X)
            else:
                y = Y if model._target_kind == "multilabel" else np.arange(X.shape[0]) % N_LABELS
                model.partial_fit(X, y)
    except (ValueError, TypeError):
        return "refused", action
    except RuntimeError as exc:  # NaN/inf weights: training stops with this message
        assert "diverged" in str(exc), exc
        return "diverged", action
    return "accepted", action


# ----------------------------------------------------------------- test harness


class _Timeout(Exception):
    pass


def run_fuzz(target, n_runs, seed, workdir, per_input_seconds=5.0):
    """Run ``target`` n_runs times; returns {outcome: count}. Raises with the
    reproducer on an unexpected exception or an input that takes too long."""
    rng = np.random.default_rng(seed)
    counts = {}
    use_alarm = hasattr(signal, "setitimer")

    def on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    try:
        for i in range(n_runs):
            state = rng.bit_generator.state
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, per_input_seconds)
            try:
                outcome, _ = target(rng, workdir)
            except _Timeout:
                raise AssertionError(
                    f"{target.__name__} run {i} (seed {seed}) took over {per_input_seconds} s; "
                    f"replay with rng.bit_generator.state = {state}"
                ) from None
            except BaseException as exc:
                raise AssertionError(
                    f"{target.__name__} run {i} (seed {seed}) raised {type(exc).__name__}: "
                    f"{exc}; replay with rng.bit_generator.state = {state}"
                ) from exc
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, previous)
    return counts


def test_fuzz_xc_reader(tmp_path):
    counts = run_fuzz(xc_target, 1000, seed=20240601, workdir=str(tmp_path))
    # Both outcomes occur: the mutations are neither all fatal nor all harmless.
    assert counts.get("refused", 0) > 100 and counts.get("loaded", 0) > 30, counts


def test_fuzz_estimator_inputs(tmp_path):
    counts = run_fuzz(estimator_target, 1000, seed=20240602, workdir=str(tmp_path))
    assert counts.get("refused", 0) > 300 and counts.get("accepted", 0) > 100, counts


def test_fuzz_damaged_models(tmp_path):
    assert _fitted("multiclass")._network["tables"] is not None  # so damaged tables are fuzzed
    counts = run_fuzz(state_target, 600, seed=20240603, workdir=str(tmp_path))
    assert counts.get("refused", 0) > 200 and counts.get("accepted", 0) > 50, counts


def test_harness_reports_unexpected_exceptions_and_hangs(tmp_path):
    # The harness itself must be able to fail.
    def crashing(rng, workdir):
        raise IndexError("boom")

    with pytest.raises(AssertionError, match="raised IndexError: boom; replay with"):
        run_fuzz(crashing, 3, seed=0, workdir=str(tmp_path))
    if hasattr(signal, "setitimer"):
        def hanging(rng, workdir):
            time.sleep(5)

        with pytest.raises(AssertionError, match="took over 0.2 s"):
            run_fuzz(hanging, 1, seed=0, workdir=str(tmp_path), per_input_seconds=0.2)


def test_mutators_change_their_input():
    rng = np.random.default_rng(1)
    seed = XC_SEEDS[0]
    changed = sum(mutate_bytes(rng, seed) != seed for _ in range(200))
    assert changed > 180
    X, _ = _base_problem(rng)
    kinds = set()
    for _ in range(200):
        M = _mutated(rng, X)
        kinds.add(type(M).__name__ if not isinstance(M, np.ndarray) else f"ndarray{M.ndim}")
    assert len(kinds) >= 6, kinds

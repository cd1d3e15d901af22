"""Tests of the XMC ranking metrics against hand computations and oracles."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from sklearn_slide._memory import MEMORY_LIMIT_ENV
from sklearn_slide.metrics import (
    inverse_propensity,
    ndcg_at_k,
    precision_at_k,
    psndcg_at_k,
    psprecision_at_k,
    recall_at_k,
)

# Two rows, five labels.  Row 0 is relevant to {0, 2, 3}, row 1 to {4}.
Y_TRUE = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 1]])
# Ranked predictions: row 0 hits at ranks 1 and 3, row 1 at rank 2.
TOP = np.array([[2, 1, 0], [3, 4, -1]])
W = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def _log2(j):
    return math.log2(j + 1)  # discount of rank j (1-based)


def test_hand_computed_precision_recall_ndcg():
    assert precision_at_k(Y_TRUE, TOP, k=1) == pytest.approx((1 + 0) / 2)
    assert precision_at_k(Y_TRUE, TOP, k=3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(Y_TRUE, TOP, k=3) == pytest.approx((2 / 3 + 1) / 2)
    assert recall_at_k(Y_TRUE, TOP, k=1) == pytest.approx((1 / 3 + 0) / 2)
    row0 = (1 / _log2(1) + 1 / _log2(3)) / (1 / _log2(1) + 1 / _log2(2) + 1 / _log2(3))
    row1 = (1 / _log2(2)) / (1 / _log2(1))  # IDCG over min(k, |y|) = 1 rank
    assert ndcg_at_k(Y_TRUE, TOP, k=3) == pytest.approx((row0 + row1) / 2)
    assert ndcg_at_k(Y_TRUE, TOP, k=1) == pytest.approx(0.5)


def test_hand_computed_propensity_scored():
    # Hits: row 0 labels 2 (rank 1) and 0 (rank 3); row 1 label 4 (rank 2).
    # Ideal rankings: row 0 -> 3, 2, 0 (weights 4, 3, 1); row 1 -> 4.
    num = (3 + 1) / 3 + 5 / 3
    best = (4 + 3 + 1) / 3 + 5 / 3
    assert psprecision_at_k(Y_TRUE, TOP, k=3, inv_propensity=W) == pytest.approx(num / best)
    assert psprecision_at_k(Y_TRUE, TOP, k=3, inv_propensity=W, normalize=False) == pytest.approx(num / 2)
    # k=1: row 0 gains 3 of a best 4, row 1 gains 0 of a best 5.
    assert psprecision_at_k(Y_TRUE, TOP, k=1, inv_propensity=W) == pytest.approx(3 / 9)

    idcg0 = 1 / _log2(1) + 1 / _log2(2) + 1 / _log2(3)
    idcg1 = 1.0
    dcg0 = 3 / _log2(1) + 1 / _log2(3)
    dcg1 = 5 / _log2(2)
    ideal0 = 4 / _log2(1) + 3 / _log2(2) + 1 / _log2(3)
    ideal1 = 5.0
    expected = (dcg0 / idcg0 + dcg1 / idcg1) / (ideal0 / idcg0 + ideal1 / idcg1)
    assert psndcg_at_k(Y_TRUE, TOP, k=3, inv_propensity=W) == pytest.approx(expected)
    unnormalised = (dcg0 / idcg0 + dcg1 / idcg1) / 2
    assert psndcg_at_k(Y_TRUE, TOP, k=3, inv_propensity=W, normalize=False) == pytest.approx(unnormalised)


def test_perfect_ranking_scores_one():
    ideal = np.array([[3, 2, 0], [4, -1, -1]])
    for k in (1, 2, 3):
        assert psprecision_at_k(Y_TRUE, ideal, k=k, inv_propensity=W) == pytest.approx(1)
        assert psndcg_at_k(Y_TRUE, ideal, k=k, inv_propensity=W) == pytest.approx(1)
        assert ndcg_at_k(Y_TRUE, ideal, k=k) == pytest.approx(1)
    assert precision_at_k(Y_TRUE, ideal, k=1) == 1.0


def test_rows_without_labels_count_as_zero():
    y = np.array([[0, 0, 0], [1, 0, 0]])
    top = np.array([[0, 1], [0, 1]])
    assert precision_at_k(y, top, k=1) == 0.5
    assert recall_at_k(y, top, k=1) == 0.5
    assert ndcg_at_k(y, top, k=2) == 0.5
    w = np.ones(3)
    # PSP: the empty row adds 0 to the score and to the best score.
    assert psprecision_at_k(y, top, k=1, inv_propensity=w) == 1.0
    assert psprecision_at_k(np.zeros((2, 3)), top, k=1, inv_propensity=w) == 0.0
    assert psndcg_at_k(np.zeros((2, 3)), top, k=1, inv_propensity=w) == 0.0


def test_minus_one_never_counts():
    y = np.array([[1, 1, 1]])
    assert precision_at_k(y, np.array([[-1, -1, 2]]), k=3) == pytest.approx(1 / 3)
    assert precision_at_k(y, np.array([[-1, -1, -1]]), k=3) == 0.0
    # Extra columns beyond k are ignored.
    assert precision_at_k(y, np.array([[0, -1, 1, 2]]), k=2) == 0.5


def test_score_input_and_ties():
    scores = np.array([[0.1, 0.9, 0.5, 0.5, 0.0], [0.3, 0.3, 0.3, 0.3, 0.3]])
    y = np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]])
    # Ties go to the smaller label id: row 0 ranks 1, 2, 3; row 1 ranks 0, 1.
    assert precision_at_k(y, scores, k=2) == pytest.approx((0 + 1 / 2) / 2)
    assert precision_at_k(y, scores, k=3) == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert precision_at_k(y, np.array([[1, 2, 3], [0, 1, 2]]), k=3) == precision_at_k(y, scores, k=3)
    # Booleans are scores too.
    assert precision_at_k(y, y.astype(bool), k=1) == 1.0
    # k larger than the number of labels: missing ranks count as misses.
    assert precision_at_k(y, scores, k=10) == pytest.approx(0.1)


def test_sparse_score_input_only_stored_entries():
    y = sp.csr_matrix(np.array([[0, 0, 1], [0, 1, 0]]))
    scores = sp.csr_matrix(np.array([[0.0, 0.2, 0.0], [-1.0, 0.0, 0.0]]))
    # Row 0 predicts only label 1 (miss), row 1 only label 0 (miss, even
    # though label 1 has the larger implicit zero).
    assert precision_at_k(y, scores, k=2) == 0.0
    scores = sp.csr_matrix(np.array([[0.0, 0.2, 0.7], [0.0, 3.0, 0.0]]))
    assert precision_at_k(y, scores, k=1) == 1.0
    assert precision_at_k(y, scores.tocoo(), k=2) == 0.5


def test_y_true_formats_agree():
    y = (np.random.default_rng(0).random((20, 7)) < 0.3).astype(int)
    top = np.argsort(-np.random.default_rng(1).random((20, 7)), axis=1)[:, :3]
    ref = precision_at_k(y, top, k=3)
    formats = (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array)
    for fmt in formats + (lambda a: a.astype(bool), lambda a: a.tolist()):
        assert precision_at_k(fmt(y), top, k=3) == ref


def test_never_densifies_top_k_or_sparse_input():
    # A billion labels: any dense (n, L) array would need gigabytes.
    n_labels = 10**9
    y = sp.csr_matrix((np.ones(3), ([0, 1, 2], [5, 999_999_999, 7])), shape=(3, n_labels))
    top = np.array([[5, 1], [0, 999_999_999], [8, 9]])
    assert precision_at_k(y, top, k=2) == pytest.approx(2 / 6)
    assert ndcg_at_k(y, top, k=2) == pytest.approx((1 + 1 / math.log2(3)) / 3)
    scores = sp.csr_matrix((np.array([0.5, 0.7, 0.1]), ([0, 1, 2], [5, 6, 7])), shape=(3, n_labels))
    assert precision_at_k(y, scores, k=1) == pytest.approx(2 / 3)


# ------------------------------------------------------------------ oracles


def _oracle(y, ranked, k, w=None):
    """Straightforward per-row loops over Python sets."""
    n = len(y)
    totals = dict(P=0.0, R=0.0, nDCG=0.0, psp=0.0, psp_best=0.0, psn=0.0, psn_best=0.0)
    for i in range(n):
        truth = set(np.flatnonzero(y[i]).tolist())
        top = list(ranked[i])[:k]
        hits = [label >= 0 and label in truth for label in top]
        totals["P"] += sum(hits) / k
        if not truth:
            continue
        totals["R"] += sum(hits) / len(truth)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(truth))))
        totals["nDCG"] += sum(h / math.log2(j + 2) for j, h in enumerate(hits)) / idcg
        if w is not None:
            gains = [w[label] if h else 0.0 for label, h in zip(top, hits)]
            ideal = sorted((w[label] for label in truth), reverse=True)[:k]
            totals["psp"] += sum(gains) / k
            totals["psp_best"] += sum(ideal) / k
            totals["psn"] += sum(g / math.log2(j + 2) for j, g in enumerate(gains)) / idcg
            totals["psn_best"] += sum(v / math.log2(j + 2) for j, v in enumerate(ideal)) / idcg
    out = {name: totals[name] / n for name in ("P", "R", "nDCG")}
    if w is not None:
        out["PSP"] = totals["psp"] / totals["psp_best"] if totals["psp_best"] else 0.0
        out["PSnDCG"] = totals["psn"] / totals["psn_best"] if totals["psn_best"] else 0.0
        out["PSP_raw"] = totals["psp"] / n
        out["PSnDCG_raw"] = totals["psn"] / n
    return out


def _ranked_from_scores(scores, k):
    return [sorted(range(len(row)), key=lambda label: (-row[label], label))[:k] for row in scores]


def _ranked_from_sparse(S, k):
    S = S.tocsr()
    ranked = []
    for i in range(S.shape[0]):
        cols = S.indices[S.indptr[i]:S.indptr[i + 1]]
        vals = S.data[S.indptr[i]:S.indptr[i + 1]]
        order = sorted(zip(-vals, cols))[:k]
        ranked.append([c for _, c in order] + [-1] * (k - len(order)))
    return ranked


def _all_metrics(y, y_pred, k, w):
    return {
        "P": precision_at_k(y, y_pred, k=k),
        "R": recall_at_k(y, y_pred, k=k),
        "nDCG": ndcg_at_k(y, y_pred, k=k),
        "PSP": psprecision_at_k(y, y_pred, k=k, inv_propensity=w),
        "PSnDCG": psndcg_at_k(y, y_pred, k=k, inv_propensity=w),
        "PSP_raw": psprecision_at_k(y, y_pred, k=k, inv_propensity=w, normalize=False),
        "PSnDCG_raw": psndcg_at_k(y, y_pred, k=k, inv_propensity=w, normalize=False),
    }


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("sparse_truth", [False, True])
def test_agrees_with_loop_oracle(seed, k, sparse_truth):
    rng = np.random.default_rng(seed)
    n, L = 60, 25
    y = (rng.random((n, L)) < rng.uniform(0.02, 0.3)).astype(np.int8)
    w = inverse_propensity(y.sum(axis=0), n)
    y_true = sp.csr_matrix(y) if sparse_truth else y

    scores = rng.standard_normal((n, L))
    scores[:, :3] = np.round(scores[:, :3])  # some ties
    expected = _oracle(y, _ranked_from_scores(scores, k), k, w)
    top = np.array(_ranked_from_scores(scores, k + 2))
    top[rng.random(top.shape) < 0.1] = -1  # holes in the ranking
    expected_top = _oracle(y, top, k, w)
    S = sp.random(n, L, density=0.15, format="csr", random_state=seed, data_rvs=rng.standard_normal)
    expected_sparse = _oracle(y, _ranked_from_sparse(S, k), k, w)

    for y_pred, ref in ((scores, expected), (top, expected_top), (S, expected_sparse)):
        got = _all_metrics(y_true, y_pred, k, w)
        for name, value in ref.items():
            assert got[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_ndcg_matches_scikit_learn(k):
    rng = np.random.default_rng(k)
    y = (rng.random((40, 12)) < 0.25).astype(int)
    y[:5] = 0  # scikit-learn also scores label-less rows 0
    scores = rng.random((40, 12))
    assert ndcg_at_k(y, scores, k=k) == pytest.approx(ndcg_score(y, scores, k=k))
    assert ndcg_at_k(sp.csr_matrix(y), scores, k=k) == pytest.approx(ndcg_score(y, scores, k=k))


# -------------------------------------------------------------- propensity


def test_inverse_propensity_formula():
    counts = np.array([0, 1, 10, 500])
    N, A, B = 1000, 0.55, 1.5
    C = (math.log(N) - 1) * (B + 1) ** A
    expected = [1 + C * (c + B) ** -A for c in counts]
    np.testing.assert_allclose(inverse_propensity(counts, N), expected)
    # Amazon constants.
    C = (math.log(N) - 1) * (2.6 + 1) ** 0.6
    np.testing.assert_allclose(
        inverse_propensity(counts, N, A=0.6, B=2.6), [1 + C * (c + 2.6) ** -0.6 for c in counts]
    )
    # Rarer labels weigh more, all weights are >= 1.
    w = inverse_propensity(counts, N)
    assert np.all(np.diff(w) < 0) and np.all(w >= 1)
    # Tiny N: C clipped at 0.
    np.testing.assert_array_equal(inverse_propensity(counts, 2), 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(label_counts=[[1, 2]], n_samples=10), "1-D"),
        (dict(label_counts=[-1, 2], n_samples=10), "non-negative"),
        (dict(label_counts=[1, 2], n_samples=0), "n_samples"),
        (dict(label_counts=[1, 2], n_samples=10.0), "n_samples"),
        (dict(label_counts=[1, 2], n_samples=10, A=0), "A must"),
        (dict(label_counts=[1, 2], n_samples=10, B=-1), "B must"),
        (dict(label_counts=[1, 2], n_samples=10, A=np.inf), "A must"),  # weights were NaN
        (dict(label_counts=[1, 2], n_samples=10, B=np.nan), "B must"),
        (dict(label_counts=[1, 2], n_samples=10, A=500, B=1e10), "infinite inverse propensities"),
    ],
)
def test_inverse_propensity_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        inverse_propensity(**kwargs)


# -------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "y_true, y_pred, k, message",
    [
        (Y_TRUE, TOP, 0, "k must be a positive int"),
        (Y_TRUE, TOP, 2.0, "k must be a positive int"),
        (Y_TRUE, TOP, 4, "only 3 labels per row"),
        (Y_TRUE, TOP[:1], 1, "with 2 rows"),
        (Y_TRUE, np.array([[5, 0, 1], [0, 1, 2]]), 3, r"must be in \[-1, 5\)"),
        (Y_TRUE, np.array([[-2, 0, 1], [0, 1, 2]]), 3, r"must be in \[-1, 5\)"),
        (Y_TRUE, Y_TRUE, 3, "repeats a label"),  # an int indicator is not a ranking
        (Y_TRUE, np.ones((2, 4)), 1, "5 columns"),
        (Y_TRUE, sp.csr_matrix(np.ones((2, 4))), 1, r"shape \(2, 5\)"),
        (Y_TRUE, np.array([[np.nan] * 5] * 2), 1, "NaN"),
        (Y_TRUE, np.array([["a"] * 5] * 2), 1, "dtype"),
        (Y_TRUE * 2, TOP, 1, "binary"),
        (sp.csr_matrix(Y_TRUE * 2), TOP, 1, "binary"),
        (Y_TRUE[0], TOP, 1, "2-D"),
        (np.zeros((0, 5)), np.zeros((0, 3), dtype=int), 1, "no samples"),
        (np.zeros((2, 0)), np.zeros((2, 0)), 1, "no label columns"),
        # uint64 2**64 - 1 was cast to -1 ("no label") and counted as a miss.
        (Y_TRUE, np.full((2, 3), 2**64 - 1, dtype=np.uint64), 3, r"must be in \[-1, 5\)"),
    ],
)
def test_input_validation(y_true, y_pred, k, message):
    with pytest.raises(ValueError, match=message):
        precision_at_k(y_true, y_pred, k=k)


def test_inverse_propensity_argument_validation():
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        psprecision_at_k(Y_TRUE, TOP, k=1, inv_propensity=np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        psndcg_at_k(Y_TRUE, TOP, k=1, inv_propensity=-np.ones(5))
    with pytest.raises(TypeError):
        psprecision_at_k(Y_TRUE, TOP, 1)  # inv_propensity is required


def test_normalize_must_be_a_bool():
    for metric in (psprecision_at_k, psndcg_at_k):
        with pytest.raises(ValueError, match="normalize must be a bool"):
            metric(Y_TRUE, TOP, k=1, inv_propensity=W, normalize="no")


# ------------------------------------------------------------------ huge k


def _score_inputs(seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((30, 8)) < 0.3).astype(int)
    scores = rng.random((30, 8))
    scores[rng.random((30, 8)) < 0.2] = 0
    return y, {
        "dense scores": scores,
        "sparse scores": sp.csr_matrix(scores),
        "label ids": np.argsort(-scores, axis=1, kind="stable"),
    }


@pytest.mark.parametrize("kind", ["dense scores", "sparse scores", "label ids"])
def test_k_beyond_the_labels_is_exact(kind):
    # A ranking ends after the last label: positions beyond it hold no label,
    # so P@k = hits / k and the other metrics stop growing.
    y, inputs = _score_inputs()
    y_pred, n_labels = inputs[kind], y.shape[1]
    w = inverse_propensity(y.sum(axis=0), y.shape[0])
    at_all = _all_metrics(y, y_pred, n_labels, w)
    for k in (n_labels + 1, 10**6, 10**12, 10**30):
        at_k = _all_metrics(y, y_pred, k, w)
        assert at_k["P"] == pytest.approx(at_all["P"] * n_labels / k)
        assert at_k["PSP_raw"] == pytest.approx(at_all["PSP_raw"] * n_labels / k)
        for name in ("R", "nDCG", "PSP", "PSnDCG", "PSnDCG_raw"):
            assert at_k[name] == pytest.approx(at_all[name]), name


HUGE_K_CHILD = """
import resource, sys
import numpy as np, scipy.sparse as sp
from sklearn_slide.metrics import ndcg_at_k, precision_at_k, psndcg_at_k
# 1 GiB of address space more than the interpreter has now: allocating a
# (rows, k) ranking for the k below would need terabytes.
with open("/proc/self/statm") as fh:
    used = int(fh.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, used + 2**30))
rng = np.random.default_rng(0)
y = (rng.random((1000, 50)) < 0.1).astype(int)
scores = rng.random((1000, 50))
ids = np.argsort(-scores, axis=1)
for y_pred in (scores, sp.csr_matrix(scores), ids):
    assert ndcg_at_k(y, y_pred, k=10**9) == ndcg_at_k(y, y_pred, k=50)
    assert precision_at_k(y, y_pred, k=10**9) > 0
    psndcg_at_k(y, y_pred, k=10**9, inv_propensity=np.ones(50))
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and RLIMIT_AS")
def test_huge_k_allocates_nothing_big(tmp_path):
    # Before: ndcg_at_k(y, scores, k=10**9) filled a (rows, k) array until the
    # kernel's OOM killer ended the process.
    proc = subprocess.run([sys.executable, "-c", HUGE_K_CHILD], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_rankings_beyond_the_memory_budget_are_refused(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1M")
    rng = np.random.default_rng(0)
    y = (rng.random((20000, 40)) < 0.1).astype(int)
    scores = rng.random((20000, 40))
    for y_pred in (scores, sp.csr_matrix(scores), np.argsort(-scores, axis=1)):
        with pytest.raises(ValueError, match="ndcg_at_k would need about .* memory budget"):
            ndcg_at_k(y, y_pred, k=40)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "none")
    assert 0 < ndcg_at_k(y, scores, k=40) <= 1


def test_returns_python_float():
    for metric in (precision_at_k, recall_at_k, ndcg_at_k):
        assert type(metric(Y_TRUE, TOP, k=2)) is float
    assert type(psprecision_at_k(Y_TRUE, TOP, k=2, inv_propensity=W)) is float


def test_malformed_sparse_input_is_refused_not_a_crash(tmp_path):
    # Issue 17 (1b): a CSC y_true or CSC/COO scores with out-of-range row
    # indices went to scipy's conversions, which crashed the process. In a
    # subprocess, so that a crash fails this test instead of the test run.
    script = textwrap.dedent("""
        import tempfile
        import numpy as np, scipy.sparse as sp
        from sklearn_slide.datasets import dump_xc
        from sklearn_slide.metrics import (ndcg_at_k, precision_at_k, psndcg_at_k,
                                           psprecision_at_k, recall_at_k)
        Y = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 1]]))
        S = sp.csr_matrix(np.arange(1.0, 11.0).reshape(2, 5))

        def broken(A, fmt, how):
            A = A.asformat(fmt).copy()
            if fmt == "coo":
                A.row = A.row.copy()
                A.row[0] = {"big": 10**7, "negative": -1, "end": 2}[how]
            else:
                A.indices = A.indices.copy()
                A.indices[0] = {"big": 10**7, "negative": -1, "end": A.shape[fmt == "csr"]}[how]
            return A

        W = np.ones(5)
        metrics = [precision_at_k, recall_at_k, ndcg_at_k,
                   lambda t, p, k: psprecision_at_k(t, p, k, inv_propensity=W),
                   lambda t, p, k: psndcg_at_k(t, p, k, inv_propensity=W)]
        refused = 0
        for fmt in ("csr", "csc", "coo"):
            for how in ("big", "negative", "end"):
                calls = [lambda m=m: m(broken(Y, fmt, how), S.toarray(), 2) for m in metrics]
                calls += [lambda m=m: m(Y, broken(S, fmt, how), 2) for m in metrics]
                calls += [lambda: dump_xc(broken(S, fmt, how), Y, tempfile.mktemp()),
                          lambda: dump_xc(S, broken(Y, fmt, how), tempfile.mktemp())]
                for call in calls:
                    try:
                        call()
                    except ValueError as error:
                        assert "out of range" in str(error), error
                        refused += 1
        print(refused)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(3 * 3 * 12)

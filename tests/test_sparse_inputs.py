"""Every public function that takes a sparse matrix checks its storage first.

scipy trusts the index arrays inside a sparse matrix: converting or slicing a
CSC/COO/DIA/LIL matrix whose arrays are damaged wrote out of bounds (the
process died with SIGSEGV or "double free") or read uninitialised memory.
Every damaged matrix below, handed to every public entry point that takes a
sparse argument, must raise ValueError/TypeError. The calls run in one child
process with a time limit, so a crash fails this test instead of ending the
test session.
"""

import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, tempfile, os
    import numpy as np
    import scipy.sparse as sp
    from sklearn_slide import SlideClassifier
    from sklearn_slide.datasets import dump_xc, make_extreme_multilabel
    from sklearn_slide.metrics import (
        ndcg_at_k, precision_at_k, psndcg_at_k, psprecision_at_k, recall_at_k, xmc_scorer)
    from sklearn_slide.model_selection import cross_validate_xmc

    N, L = 40, 6  # X and Y share the shape: one damaged matrix serves as either

    def damaged(fmt, damage):
        rng = np.random.default_rng(0)
        dense = (rng.random((N, L)) < 0.4).astype(np.float64)
        dense[:, 0] = 1
        M = sp.csr_matrix(dense).asformat(fmt)
        if fmt in ("csr", "csc"):
            if damage == "index": M.indices[0] = 10**6
            elif damage == "negative": M.indices[0] = -3
            elif damage == "indptr": M.indptr[-1] = 10**6
            elif damage == "decreasing": M.indptr[1] = M.indptr[-1] + 5
            elif damage == "short data": M.data = M.data[:2]
        elif fmt == "coo":
            if damage == "index": M.row[0] = 10**6
            elif damage == "negative": M.col[0] = -3
            elif damage == "short data": M.data = M.data[:2]
        elif fmt == "bsr":
            M.indices[0] = 10**6
        elif fmt == "lil":
            if damage == "rows and data differ": M.rows[0].append(3)
            elif damage == "rows array": M.rows, M.data = M.rows[:2], M.data[:2]
            elif damage == "float index": M.rows[0][0] = 1.5
        elif fmt == "dok":
            M._dict.clear()
            M._dict[(1.5, 2)] = 1.0
        elif fmt == "dia":
            if damage == "offsets": M.offsets = M.offsets[:1]
            elif damage == "huge offset":
                M.offsets = M.offsets.astype(np.int64)
                M.offsets[0] = 2**40
            elif damage == "float offsets": M.offsets = M.offsets.astype(float) + 0.5
        return M

    DAMAGES = [("csr", d) for d in ("index", "negative", "indptr", "decreasing", "short data")]
    DAMAGES += [("csc", d) for d in ("index", "negative", "indptr", "decreasing", "short data")]
    DAMAGES += [("coo", d) for d in ("index", "negative", "short data")]
    DAMAGES += [("bsr", "index"), ("dok", "float key")]
    DAMAGES += [("lil", d) for d in ("rows and data differ", "rows array", "float index")]
    DAMAGES += [("dia", d) for d in ("offsets", "huge offset", "float offsets")]

    X_fit, Y_fit = make_extreme_multilabel(N, L, L, random_state=0)
    Y_fit = Y_fit.tolil(); Y_fit[:, 0] = 1; Y_fit = Y_fit.tocsr()
    clf = SlideClassifier(max_iter=1, hidden_layer_sizes=(8,), n_threads=1,
                          random_state=0).fit(X_fit, Y_fit)
    Y_good = Y_fit.toarray()
    S_good = np.random.default_rng(1).random((N, L))
    w = np.ones(L)
    path = os.path.join(tempfile.mkdtemp(), "out.txt")

    CALLS = {
        "precision_at_k(y_true)": lambda M: precision_at_k(M, S_good, k=2),
        "precision_at_k(y_pred)": lambda M: precision_at_k(Y_good, M, k=2),
        "recall_at_k(y_pred)": lambda M: recall_at_k(Y_good, M, k=2),
        "ndcg_at_k(y_true)": lambda M: ndcg_at_k(M, S_good, k=10**12),
        "ndcg_at_k(y_pred)": lambda M: ndcg_at_k(Y_good, M, k=10**12),
        "psprecision_at_k(y_pred)": lambda M: psprecision_at_k(Y_good, M, inv_propensity=w),
        "psndcg_at_k(y_true)": lambda M: psndcg_at_k(M, S_good, inv_propensity=w),
        "xmc_scorer(y)": lambda M: xmc_scorer()(clf, X_fit, M),
        "dump_xc(X)": lambda M: dump_xc(M, Y_good, path),
        "dump_xc(Y)": lambda M: dump_xc(S_good, M, path),
        "cross_validate_xmc(Y)": lambda M: cross_validate_xmc(clf, X_fit, M, cv=2),
        "cross_validate_xmc(X)": lambda M: cross_validate_xmc(clf, M, Y_fit, cv=2),
        "fit(X)": lambda M: SlideClassifier(max_iter=1).fit(M, Y_fit),
        "fit(y)": lambda M: SlideClassifier(max_iter=1).fit(X_fit, M),
        "predict_topk(X)": lambda M: clf.predict_topk(M),
        "score(y)": lambda M: clf.score(X_fit, M),
    }

    results = {}
    for fmt, damage in DAMAGES:
        for name, call in CALLS.items():
            case = f"{name} <- {fmt} with {damage}"
            print("start", case, file=sys.stderr, flush=True)
            try:
                M = damaged(fmt, damage)
                call(M)
            except (ValueError, TypeError) as exc:
                results[case] = "refused"
            except Exception as exc:
                results[case] = f"{type(exc).__name__}: {exc}"
            else:
                results[case] = "accepted"
    print(json.dumps(results))
    """
)


def test_every_public_function_refuses_damaged_sparse_matrices(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    last_case = [line for line in proc.stderr.splitlines() if line.startswith("start ")][-1:]
    assert proc.returncode == 0, f"child died ({proc.returncode}) in {last_case}: {proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results
    not_refused = {case: result for case, result in results.items() if result != "refused"}
    assert not not_refused, "\n".join(f"{case}: {result}" for case, result in not_refused.items())

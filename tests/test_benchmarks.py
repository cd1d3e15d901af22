"""Every benchmark script runs end to end in its --quick mode (so none can rot).

Each runs as a subprocess with ``cwd=tmp_path`` (quick results land in
``tmp_path/results-quick``) and a private dataset cache. Peers whose package is
not installed are left out of the run; no timing is asserted.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _installed(package):
    return importlib.util.find_spec(package) is not None


def _run(tmp_path, script, *args):
    env = dict(os.environ, SLIDE_BENCH_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--threads", "1", *args],
        check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def _check_plots(folder):
    if _installed("matplotlib"):
        pngs = list(folder.glob("*.png"))
        assert pngs and all(p.stat().st_size < 200_000 for p in pngs)


def test_bench_vs_dense_quick(tmp_path):
    systems = ["slide"] + (["torch"] if _installed("torch") else [])
    out = _run(tmp_path, "bench_vs_dense.py", "--systems", *systems)
    assert "samples/s" in out and "P@1" in out
    assert (tmp_path / "results-quick" / "vs_dense.md").exists()
    if "torch" in systems:
        assert "ratio" in out
    _check_plots(tmp_path / "results-quick")


def test_bench_vs_xmc_quick(tmp_path):
    peers = {"napkinxc-plt": "napkinxc", "omikuji-parabel": "omikuji"}
    systems = ["slide", "centroid", "knn10"] + [name for name, package in peers.items()
                                                 if _installed(package)]
    out = _run(tmp_path, "bench_vs_xmc.py", "--systems", *systems)
    table = (tmp_path / "results-quick" / "vs_xmc.md").read_text()
    for system in systems:
        assert f"| {system} |" in table
    assert "FAILED" not in out


def test_bench_scaling_quick(tmp_path):
    systems = ["slide"] + (["torch"] if _installed("torch") else [])
    _run(tmp_path, "bench_scaling.py", "--parts", "labels", "tables", "--systems", *systems)
    table = (tmp_path / "results-quick" / "scaling.md").read_text()
    assert "ms / sample" in table and "P@1" in table
    _check_plots(tmp_path / "results-quick")


def test_bench_inference_quick(tmp_path):
    systems = ["slide"] + (["torch"] if _installed("torch") else [])
    _run(tmp_path, "bench_inference.py", "--systems", *systems)
    table = (tmp_path / "results-quick" / "inference.md").read_text()
    assert "recall@5" in table


def test_bench_fit_overhead_quick(tmp_path):
    out = _run(tmp_path, "bench_fit_overhead.py", "--repeats", "2")
    assert "saved per epoch after the first" in out


def test_bench_xc_reader_quick(tmp_path):
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_xc_reader.py"), "--quick", "--repeat", "1"],
        check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "load_xc" in result.stdout


@pytest.mark.skipif(not _installed("torch"), reason="torch is not installed")
def test_dense_baseline_loss_matches_definition():
    """The dense baseline's loss is cross-entropy against 1/|y| on the true labels."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _torch_dense as D
    finally:
        sys.path.remove(str(BENCHMARKS))
    X = sp.random(6, 20, density=0.3, format="csr", dtype=np.float32, random_state=0)
    Y = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0],
                                [1, 1, 1, 0], [0, 0, 0, 1], [0, 1, 0, 1]], dtype=np.float32))
    model, _ = D.make_model(20, 4, threads=1)
    with torch.no_grad():
        logits = model(*D._batch_tensors(X, 0, 6)).numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    counts = np.asarray(Y.sum(axis=1)).ravel()
    target = Y.toarray() / np.maximum(counts, 1)[:, None]
    expected = -(target * logp).sum() / 6
    got = D.batch_loss(torch.from_numpy(logits), Y, 0, 6)
    assert abs(float(got) - expected) < 1e-9

"""The examples run end to end in their quick mode (so they cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script, *args):
    """Run ``examples/<script> --quick *args`` from the examples folder."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", *args],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLES, check=False,
    )


def test_quickstart_quick_mode():
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    assert "P@1" in result.stdout and "samples/s" in result.stdout


def test_grid_search_example_quick_mode():
    result = run_example("grid_search_hash_parameters.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The workers of the n_jobs=2 search resolve n_threads=None to a limited count.
    assert re.search(r"threads per fit \(n_threads=None\): \[\d+\] in the n_jobs=2 workers", out)
    # One table row per candidate of the quick grid (2 families x 2 table counts).
    header = next(line for line in out.splitlines() if line.lstrip().startswith("rank"))
    for column in ("hash_family", "hash_bits", "n_tables", "bucket_size", "P@1", "P@5", "PSP@5"):
        assert column in header
    rows = re.findall(r"^\s+\d+\s+(dwta|simhash)\s+6\s+(8|24)\s+64\s", out, flags=re.MULTILINE)
    assert sorted(rows) == [("dwta", "24"), ("dwta", "8"), ("simhash", "24"), ("simhash", "8")]
    assert "best (refit='P@1')" in out
    assert re.search(r"test P@1 0\.\d{3}", out)


def test_text_pipeline_example_quick_mode():
    result = run_example("text_pipeline.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Y_train is csr_matrix" in out
    p_at_1 = float(re.search(r"test P@1 (\d\.\d{3})", out).group(1))
    # 500 tags: popularity alone gives about 0.05; the text must carry signal.
    assert p_at_1 > 0.2
    assert "pipe.predict -> csr_matrix (3, " in out


def test_plot_training_curve_quick_mode(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot example needs the [plot] extra")
    output = tmp_path / "curve.png"
    result = run_example("plot_training_curve.py", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert output.stat().st_size > 10_000  # two panels with curves, not an empty canvas
    assert len(re.findall(r"epoch\s+\d+: .* P@1 0\.\d{3}", result.stdout)) == 6  # 3 per model


def test_plot_training_curve_without_matplotlib(tmp_path):
    # Hide matplotlib (a None entry in sys.modules makes its import fail).
    output = tmp_path / "curve.png"
    code = (
        "import runpy, sys; sys.modules['matplotlib'] = None; "
        f"sys.argv = ['plot_training_curve.py', '--quick', '--output', {str(output)!r}]; "
        "runpy.run_path('plot_training_curve.py', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=EXAMPLES, check=False,
    )
    assert result.returncode == 1
    assert "needs matplotlib" in result.stderr and "sklearn-slide[plot]" in result.stderr
    assert "epoch" not in result.stdout  # it stopped before training
    assert not output.exists()

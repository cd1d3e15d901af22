"""The documentation site builds without a warning (needs the docs extra).

Builds a copy of docs/, examples/ and BENCHMARKS.md, so that the generated
pages (API stubs, the gallery) never land in the source tree, with warnings as
errors, as the README says to build it.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme",
                "matplotlib"):
    pytest.importorskip(_module, reason='the documentation needs pip install ".[docs]"')

ROOT = Path(__file__).resolve().parents[1]
GENERATED = shutil.ignore_patterns("_build", "generated", "auto_examples", "sg_execution_times.rst")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    source = tmp / "src"
    shutil.copytree(ROOT / "docs", source / "docs", ignore=GENERATED)
    shutil.copytree(ROOT / "examples", source / "examples")
    shutil.copy(ROOT / "BENCHMARKS.md", source / "BENCHMARKS.md")
    html = tmp / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(source / "docs"), str(html)],
        cwd=tmp, capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return html


def _text(page):
    return re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))


def test_api_reference_comes_from_the_docstrings(site):
    page = _text(site / "generated" / "sklearn_slide.SlideClassifier.html")
    # Parameters and methods of the class docstring, rendered by numpydoc.
    for text in ("hash_bits", "Codes per hash table", "predict_topk", "partial_fit",
                 "loss_curve_"):
        assert text in page
    for function in ("sklearn_slide.datasets.iter_xc", "sklearn_slide.metrics.xmc_scorer",
                     "sklearn_slide.model_selection.cross_validate_xmc"):
        assert (site / "generated" / f"{function}.html").exists()


def test_gallery_ran_the_examples_and_shows_the_plot(site):
    curve = (site / "auto_examples" / "plot_training_curve.html").read_text(encoding="utf-8")
    images = re.findall(r'src="(\.\./_images/sphx_glr_plot_training_curve_\d+\.png)"', curve)
    assert images and all((site / "auto_examples" / image).exists() for image in images)
    # The captured output of the quick runs.
    assert re.search(r"P@1 0\.\d{3}", _text(site / "auto_examples" / "quickstart.html"))
    assert "rank" in _text(site / "auto_examples" / "grid_search_hash_parameters.html")


def test_user_guide_and_benchmarks_pages(site):
    for page in ("parameters", "inference", "memory", "threads", "dask", "command_line",
                 "model_selection", "reliability", "install", "quickstart"):
        assert (site / f"{page}.html").exists(), page
    assert "Time to accuracy" in _text(site / "benchmarks.html")  # BENCHMARKS.md's summary

"""The documentation site builds without a warning (needs the docs extra). Its
API reference lists every public name, every page is in a toctree and the
Markdown links stay inside docs/: checked without the extra too, so that a
landing from a venv without Sphinx catches the usual -W failures. The
architecture page has a row for every source file, and its rule on who
imports ``_engine`` holds (in a source tree).

Builds a copy of docs/, examples/ and BENCHMARKS.md, so that the generated
pages (API stubs, the gallery) never land in the source tree, with warnings as
errors, as the README says to build it.
"""

import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_slide import SlideClassifier

ROOT = Path(__file__).resolve().parents[1]
GENERATED = shutil.ignore_patterns("_build", "generated", "auto_examples", "sg_execution_times.rst")
PUBLIC_MODULES = ("sklearn_slide", "sklearn_slide.datasets", "sklearn_slide.metrics",
                  "sklearn_slide.model_selection", "sklearn_slide.dask")


def _public_names(module_name):
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return {name for name in module.__all__ if not name.startswith("__")}
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module_name}


def _api_reference_entries():
    """module.name for every entry of an autosummary block in docs/api.rst."""
    entries, module, in_block = set(), None, False
    for line in (ROOT / "docs" / "api.rst").read_text(encoding="utf-8").splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        elif line.startswith(".. autosummary::"):
            in_block = True
        elif in_block and line.startswith("   "):
            if not line.strip().startswith(":"):
                entries.add(f"{module}.{line.strip()}")
        elif line.strip():
            in_block = False
    return entries


def test_api_reference_lists_every_public_name():
    entries = _api_reference_entries()
    public = {f"{module}.{name}" for module in PUBLIC_MODULES for name in _public_names(module)}
    assert "sklearn_slide.SlideClassifier" in entries  # the parser read the file
    assert public - entries == set(), "public but missing from docs/api.rst"
    assert entries - public == set(), "in docs/api.rst but not public"


DOCS = ROOT / "docs"
# Pages Sphinx generates during the build (sphinx-gallery, autosummary).
GENERATED_PAGES = ("auto_examples/", "generated/")


def _pages():
    return [*DOCS.glob("*.rst"), *DOCS.glob("*.md")]


def _toctree_entries():
    """Every page named in a toctree of docs/ (rst directives and MyST fences)."""
    entries = set()
    for page in _pages():
        in_rst = in_md = False
        for line in page.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if line.startswith(".. toctree::"):
                in_rst = True
            elif line.startswith("```{toctree}"):
                in_md = True
            elif in_md and line.startswith("```"):
                in_md = False
            elif in_rst and stripped and not line.startswith(" "):
                in_rst = False
            elif (in_rst or in_md) and stripped and not stripped.startswith(":"):
                entries.add(stripped)
    return entries


def test_every_page_is_in_a_toctree():
    # sphinx -W fails on a page that no toctree names (toc.not_included).
    pages = {page.stem for page in _pages()} - {"index"}
    assert pages - _toctree_entries() == set(), "add these pages to a toctree"


def test_markdown_links_stay_inside_the_site():
    # The site is docs/ alone: a relative link to ../FILE is a broken reference
    # under sphinx -W (myst.xref_missing); name such files in plain text.
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            path = target.split("#")[0]
            if re.match(r"[a-z]+:", target) or not path or path.startswith(GENERATED_PAGES):
                continue
            resolved = (DOCS / path).resolve()
            assert resolved.parent == DOCS and resolved.exists(), f"{page.name}: ({target})"


def test_parameters_page_has_a_row_for_every_parameter():
    # docs/parameters.md is where a user chooses parameters: a new constructor
    # parameter must get a row there (what it does, default, why, cost), and a
    # removed one must lose its row.
    text = (DOCS / "parameters.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \| `[^|]+` \|", text, flags=re.MULTILINE))
    parameters = set(SlideClassifier().get_params())
    assert "hidden_layer_sizes" in rows  # the parser read the tables
    assert parameters - rows == set(), "add a row to docs/parameters.md"
    assert rows - parameters == set(), "rows of docs/parameters.md that are no parameter"


SOURCE_FOLDERS = ("sklearn_slide", "cpp")


def _architecture_files():
    """Paths (from the repository root) that the first column of
    docs/architecture.md's tables names, each relative to the folder in its
    section's heading, e.g. "## The engine (`cpp/slide/`)"."""
    folder, named = None, set()
    for line in (DOCS / "architecture.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = re.search(r"\(`([\w/]+/)`\)$", line)
            folder = heading.group(1) if heading else None
        elif folder and line.startswith("| `"):
            named.update(folder + name for name in re.findall(r"`([^`]+)`", line.split("|")[1]))
    return named


def test_architecture_page_names_every_source_file():
    # A newcomer looks a file up there: every file gets a row by its full name
    # (a pattern such as kernels*.h finds no file here and fails).
    if not all((ROOT / folder).is_dir() for folder in SOURCE_FOLDERS):
        pytest.skip("no source tree (an installed package without its sources)")
    sources = {
        path.relative_to(ROOT).as_posix()
        for folder in SOURCE_FOLDERS for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".h", ".cpp") and "__pycache__" not in path.parts
    }
    named = _architecture_files()
    assert {"cpp/slide/topk.h", "sklearn_slide/_cli/_errors.py"} <= named  # the parser read it
    assert sources - named == set(), "add a row to docs/architecture.md"
    assert {name for name in named if not (ROOT / name).is_file()} == set(), "rows naming no file"


ENGINE_IMPORT = re.compile(
    r"^\s*(from sklearn_slide\._engine import|import sklearn_slide\._engine\b"
    r"|from sklearn_slide import .*\b_engine\b)")


def test_imports_of_the_engine_module_say_why():
    # docs/architecture.md "Who imports _engine": outside the package, only code
    # about the engine itself, each import under a "# _engine: why" comment.
    folders = [ROOT / name for name in ("tests", "benchmarks", "tools", "examples")]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip("no source tree (an installed package without its sources)")
    imports, unexplained = 0, []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines):
                if not ENGINE_IMPORT.match(line):
                    continue
                imports += 1
                above = lines[number - 1].strip() if number else ""
                if folder.name == "examples" or not re.match(r"# _engine: \S", above):
                    unexplained.append(f"{path.relative_to(ROOT)}:{number + 1}")
    assert imports > 10  # the pattern matched today's imports
    assert unexplained == [], "use the public API, or say why with '# _engine: ...' above"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme",
                   "matplotlib"):
        pytest.importorskip(module, reason='the documentation needs pip install ".[docs]"')
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

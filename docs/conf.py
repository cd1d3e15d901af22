"""Sphinx configuration of the sklearn-slide documentation.

Build (needs the docs extra, ``pip install ".[docs]"``, and the package
installed: the API pages import it)::

    python -m sphinx -W -b html docs docs/_build/html

The pages are reStructuredText and Markdown (MyST); the API reference comes
from the docstrings (numpydoc); the gallery runs ``examples/*.py`` in their
``--quick`` mode (sphinx-gallery) and shows their output and plots.
"""

import os
import sys

import sklearn_slide

# This folder only (not the repository root: the package is the installed one),
# for the gallery helpers, which sphinx-gallery imports by name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

project = "sklearn-slide"
author = "the sklearn-slide developers"
copyright = "the sklearn-slide developers"
release = version = sklearn_slide.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-slide {release}"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []

# Headings of the Markdown pages get anchors, so that pages can link to sections.
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Cross-references to these projects resolve only with network access; the
# build does not need them (intersphinx_mapping stays empty offline).
intersphinx_mapping = {}


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run every example but the Dask one, which starts a local cluster of
    # worker processes (its page shows the code; tests/test_dask.py runs it).
    "filename_pattern": r"examples[/\\](?!dask_)",
    "reset_argv": "_gallery.quick_mode_argv",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "plot_gallery": "True",
}

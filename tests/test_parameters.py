"""The estimator's parameters are listed alike everywhere they appear.

``__init__`` (the defaults), ``_parameter_constraints`` (the table in
``sklearn_slide._config``) and the class docstring must name the same
parameters in the same order, and the docstring's ``default=`` must be the
real default. The user guide repeats defaults in its tables (docs/*.md) and
bounds in docs/reliability.md: they are checked against the same source.
So is the ``default=`` of every other public function's docstring.
"""

import ast
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
from sklearn_slide import _config as config
# _engine: the engine's config defaults and bounds against the parameter table.
from sklearn_slide import _engine as engine


def init_defaults():
    parameters = inspect.signature(SlideClassifier.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


def documented_parameters():
    """{name: default text} from the numpydoc Parameters section."""
    doc = inspect.getdoc(SlideClassifier)
    section = doc.split("Parameters\n----------\n", 1)[1].split("Attributes\n----------", 1)[0]
    found = {}
    for match in re.finditer(r"^(\w+) : (.*)$", section, flags=re.MULTILINE):
        default = re.search(r"default=(.+)$", match.group(2))
        found[match.group(1)] = default.group(1) if default else None
    return found


def test_init_table_and_docstring_name_the_same_parameters():
    names = list(init_defaults())
    assert list(config.PARAMETERS) == names
    assert list(SlideClassifier._parameter_constraints) == names
    assert list(documented_parameters()) == names


def test_documented_defaults_are_the_defaults():
    defaults = init_defaults()
    for name, text in documented_parameters().items():
        assert text is not None, f"{name}: the docstring gives no default"
        assert ast.literal_eval(text) == defaults[name], name


def test_every_default_satisfies_its_constraints():
    # scikit-learn validates the defaults like any value.
    SlideClassifier()._validate_params()


def test_engine_config_defaults_are_the_parameter_defaults():
    # The C++ TrainConfig names its fields like the parameters; where it has one,
    # its default must be the estimator's (hash_family and n_threads are
    # resolved at fit time: "auto" and None are not engine values).
    engine_config = engine.training_config()
    defaults = init_defaults()
    shared = [name for name in defaults if hasattr(engine_config, name)]
    flagged = [name for name, p in config.PARAMETERS.items() if p.engine]
    assert set(flagged) <= set(shared)
    assert {"hash_bits", "learning_rate", "rehash_growth", "logq_correction"} <= set(shared)
    for name in set(shared) - {"hash_family", "n_threads"}:
        value = getattr(engine_config, name)
        if isinstance(value, float):
            assert value == pytest.approx(defaults[name], rel=1e-7), name
        else:
            assert value == defaults[name], name


def test_bounds_come_from_the_engine():
    constraints = SlideClassifier._parameter_constraints
    for name, bound in engine.BOUNDS.items():
        assert constraints[name][0].right == bound, name
    assert set(constraints["hash_family"][0].options) == {"auto", *engine.HASH_FAMILIES}


# ------------------------------------------------------- the user guide's figures

DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_table_defaults():
    """[(page, name, default text)] of the '| `name` | `default` |' rows of docs/*.md
    whose name is a parameter."""
    names = set(init_defaults())
    rows = []
    for page in sorted(DOCS.glob("*.md")):
        for match in re.finditer(r"^\| `(\w+)` \| `([^`]*)` \|", page.read_text(), re.MULTILINE):
            if match.group(1) in names:
                rows.append((page.name, match.group(1), match.group(2)))
    return rows


def documented_bounds():
    """[(name, low or None, high)] from the ranges of docs/reliability.md:
    "`name` in [low, high]" and "`a`, `b` <= high"."""
    text = (DOCS / "reliability.md").read_text()
    number = r"\d+(?:\*\*\d+)?(?: - 1)?"
    found = []
    for name, low, high in re.findall(rf"`(\w+)` in \[({number}), ({number})\]", text):
        found.append((name, low, high))
    for names, high in re.findall(rf"((?:`\w+`,?\s+(?:and\s+)?)+)<= ({number})\b", text):
        found += [(name, None, high) for name in re.findall(r"`(\w+)`", names)]
    return [(name, None if low is None else _int_of(low), _int_of(high))
            for name, low, high in found]


def _int_of(text):
    base, _, rest = text.partition("**")
    if not rest:
        return int(base)
    exponent, _, minus = rest.partition(" - ")
    return int(base) ** int(exponent) - (int(minus) if minus else 0)


def test_defaults_in_the_user_guide_are_the_defaults():
    rows = docs_table_defaults()
    assert len({name for _, name, _ in rows}) >= 20  # the tables were found
    defaults = init_defaults()
    for page, name, text in rows:
        assert ast.literal_eval(text) == defaults[name], f"docs/{page}: {name}"


def test_ranges_in_the_reliability_guide_are_the_constraints():
    bounds = documented_bounds()
    assert {"hash_bits", "n_tables", "n_threads", "batch_size", "min_active"} <= {
        name for name, _, _ in bounds}
    constraints = SlideClassifier._parameter_constraints
    for name, low, high in bounds:
        interval = constraints[name][0]
        assert interval.right == high, name
        if low is not None:
            assert interval.left == low, name


def test_the_auto_threshold_is_documented_as_it_is():
    n = config.AUTO_EXACT_MAX_LABELS
    assert re.search(rf'"auto" is None\s+up to {n} labels', inspect.getdoc(SlideClassifier))
    assert f"exact up to {n:,} labels" in (DOCS / "parameters.md").read_text()


# ------------------------------------------- every public function's docstring

PUBLIC_MODULES = ["sklearn_slide", "sklearn_slide.metrics", "sklearn_slide.datasets",
                  "sklearn_slide.model_selection", "sklearn_slide.dask"]


def public_callables():
    """(label, function, docstring) of every public function, class (its
    ``__init__`` with the class docstring) and public method."""
    found = []
    for module_name in PUBLIC_MODULES:
        if module_name.endswith(".dask") and importlib.util.find_spec("distributed") is None:
            continue  # the [dask] extra
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module_name]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                found.append((name, obj.__init__, inspect.getdoc(obj)))
                found += [(f"{name}.{key}", value, inspect.getdoc(value))
                          for key, value in vars(obj).items()
                          if inspect.isfunction(value) and not key.startswith("_")]
            elif callable(obj):
                found.append((f"{module_name}.{name}", obj, inspect.getdoc(obj)))
    return found


def documented_defaults(doc):
    """{name: default text} of a numpydoc Parameters section."""
    if "Parameters\n----------\n" not in doc:
        return {}
    section = doc.split("Parameters\n----------\n", 1)[1]
    section = re.split(r"\n[A-Z][a-z]+(?: [A-Z][a-z]+)?\n-{4,}\n", section)[0]
    found = {}
    for match in re.finditer(r"^(\w+) : .*default=(.+)$", section, flags=re.MULTILINE):
        found[match.group(1)] = match.group(2)
    return found


def test_public_functions_document_their_real_defaults():
    checked = 0
    for label, function, doc in public_callables():
        parameters = inspect.signature(function).parameters
        for name, text in documented_defaults(doc or "").items():
            assert name in parameters, f"{label}: documents {name}, which it does not take"
            assert _same(_value_of(text), parameters[name].default), f"{label}: {name}"
            checked += 1
    assert checked > 60  # the docstrings were found


def _value_of(text):
    """A documented default: a literal, or a NumPy constant such as np.nan."""
    try:
        return ast.literal_eval(text)
    except ValueError:
        return eval(text, {"__builtins__": {}, "np": np})


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))

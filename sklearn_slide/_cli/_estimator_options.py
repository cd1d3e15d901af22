"""Constructor parameters of SlideClassifier as command-line options.

Every parameter becomes ``--name value`` (``--name-with-dashes`` works too).
The text is converted by the parameter's own constraints in
``SlideClassifier._parameter_constraints`` (an int for an integer interval,
``none`` for None, ...), so a parameter added to the estimator appears here
without any change; the estimator's own validation then checks ranges and
options, with its own messages.  The help of each option is the first
sentence of the parameter's entry in the class docstring and the default
the command leaves when the option is not given (options are absent from the
namespace then, so the estimator's own default holds; argparse cannot show it).
"""

import argparse
import re
from numbers import Integral, Real

from .._classifier import SlideClassifier
from .._compat import Interval, StrOptions
from ._errors import UsageError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _parse_none(text):
    if text.lower() != "none":
        raise ValueError
    return None


def _parse_bool(text):
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError


def _parse_int_tuple(text):
    return tuple(int(part) for part in text.split(","))


def _converter(constraint):
    """(function text -> value raising ValueError, what it expects), or None
    for a constraint the command line cannot express."""
    if constraint is None:
        return _parse_none, "none"
    if constraint == "boolean":
        return _parse_bool, "true or false"
    if constraint in ("verbose", "random_state"):
        return int, "an integer"
    if constraint == "array-like":
        return _parse_int_tuple, "comma-separated integers (e.g. 256,128)"
    if isinstance(constraint, Interval) and constraint.type is Integral:
        return int, "an integer"
    if isinstance(constraint, Interval) and constraint.type is Real:
        return float, "a number"
    if isinstance(constraint, StrOptions):
        options = sorted(constraint.options)

        def parse_option(text):
            if text not in options:
                raise ValueError
            return text

        return parse_option, "one of " + ", ".join(options)
    return None


def parse_parameter(name, text):
    """The value of constructor parameter ``name`` written as ``text``.

    The first of the parameter's constraints that can read ``text`` wins
    (``random_state`` also takes ``none``).

    Raises
    ------
    UsageError
        If no constraint reads it.
    """
    constraints = list(SlideClassifier._parameter_constraints[name])
    if "random_state" in constraints:
        constraints.append(None)
    expected = []
    for constraint in constraints:
        converter = _converter(constraint)
        if converter is None:
            continue
        parse, description = converter
        try:
            return parse(text.strip())
        except ValueError:
            expected.append(description)
    raise UsageError(f"--{name}: expected {' or '.join(expected)}, got {text!r}")


def format_value(value):
    """``value`` written as :func:`parse_parameter` reads it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)


def parameter_help():
    """``{name: (first sentence of its docstring entry, its type)}`` for every
    parameter; the type is without the docstring's default (the help states
    the one the command really leaves)."""
    doc = SlideClassifier.__doc__
    section = doc.split("Parameters\n    ----------\n", 1)[1].split("\n    Attributes\n", 1)[0]
    entries = re.split(r"^    (\w+) : ", section, flags=re.MULTILINE)[1:]
    helps = {}
    for name, body in zip(entries[::2], entries[1::2]):
        kind, _, description = body.partition("\n")
        text = " ".join(description.replace("``", "").split())
        sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
        kind = re.sub(r",\s*default=.*$", "", kind.strip())
        helps[name] = sentence, kind
    return helps


def add_parameter_options(parser, names, defaults=None):
    """Add ``--name VALUE`` for each constructor parameter in ``names``.

    Values stay strings in the namespace until :func:`estimator_parameters`;
    an option not given is absent from it.  ``defaults`` maps each name to the
    value the command uses when the option is not given, stated in the help;
    None: the command keeps the saved model's value.
    """
    helps = parameter_help()
    for name in names:
        sentence, kind = helps[name]
        default = "the model's" if defaults is None else format_value(defaults[name])
        flags = [f"--{name}"]
        if "_" in name:
            flags.append(f"--{name.replace('_', '-')}")
        parser.add_argument(
            *flags, dest=f"param:{name}", metavar="VALUE", default=argparse.SUPPRESS,
            help=f"{sentence} ({kind}; default: {default})".replace("%", "%%"),
        )


def estimator_parameters(args):
    """``{name: value}`` of the parameter options given on the command line."""
    return {
        key.split(":", 1)[1]: parse_parameter(key.split(":", 1)[1], text)
        for key, text in vars(args).items()
        if key.startswith("param:")
    }


def parameter_defaults():
    """``{name: default}`` of SlideClassifier's constructor parameters, in
    signature order."""
    return SlideClassifier().get_params(deep=False)

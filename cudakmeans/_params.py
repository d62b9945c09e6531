"""Parameter constraints with scikit-learn's semantics and error messages.

scikit-learn validates estimator and function parameters against declared constraints and,
when none is met, raises ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``)
worded ``"The 'n_init' parameter of KMeans must be a str among {'auto'} or an int in the
range [1, inf). Got 0 instead."``. Code and tests written against scikit-learn match on
that wording, so the constraints below describe themselves exactly as scikit-learn's do.
One deliberate difference: a bool never counts as an integer or a real number here
(scikit-learn lets ``n_clusters=True`` through, then fails further in).
"""

import math
import numbers

import numpy as np

from ._validation import InvalidParameterError, is_sparse, sklearn_class

__all__ = [
    "Interval",
    "StrOptions",
    "validate_parameters",
    "is_array_like",
    "is_sparse",
    "BOOLEAN",
    "VERBOSE",
    "RANDOM_STATE",
    "CALLABLE",
    "ARRAY_LIKE",
    "SPARSE",
    "NONE",
]


class _Constraint:
    def __init__(self, test, text):
        self._test = test
        self._text = text

    def is_satisfied_by(self, value):
        return bool(self._test(value))

    def __str__(self):
        return self._text


def _is_number(value, kind):
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Integral if kind == "int" else numbers.Real)


class Interval(_Constraint):
    """Numbers of ``kind`` ('int' or 'real') between ``left`` and ``right`` (None: no
    bound), ``closed`` on 'left', 'right', 'both' or 'neither'."""

    def __init__(self, kind, left, right, *, closed):
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def __contains__(self, value):
        if not isinstance(value, numbers.Integral) and math.isnan(value):
            return False
        left = -math.inf if self.left is None else self.left
        right = math.inf if self.right is None else self.right
        if value < left or (value == left and self.closed not in ("left", "both")):
            return False
        if value > right or (value == right and self.closed not in ("right", "both")):
            return False
        return True

    def is_satisfied_by(self, value):
        return _is_number(value, self.kind) and value in self

    def __str__(self):
        left = "-inf" if self.left is None else self.left
        right = "inf" if self.right is None else self.right
        if self.kind == "real":  # scikit-learn prints real bounds as floats
            left = left if self.left is None else float(left)
            right = right if self.right is None else float(right)
        return (f"{'an int' if self.kind == 'int' else 'a float'} in the range "
                f"{'[' if self.closed in ('left', 'both') else '('}{left}, "
                f"{right}{']' if self.closed in ('right', 'both') else ')'}")


class StrOptions(_Constraint):
    """One of a set of strings."""

    def __init__(self, options):
        self.options = set(options)

    def is_satisfied_by(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        return f"a str among {{{', '.join(repr(o) for o in self.options)}}}"


def is_array_like(value):
    """scikit-learn's ``_is_arraylike_not_scalar``."""
    return (hasattr(value, "__len__") or hasattr(value, "shape")
            or hasattr(value, "__array__")) and not np.isscalar(value)


def _is_instance_of_bool(value):
    return isinstance(value, bool)


def _is_instance_of_np_bool(value):
    return isinstance(value, np.bool_)


_INSTANCE_OF_BOOL = _Constraint(_is_instance_of_bool, "an instance of 'bool'")
_INSTANCE_OF_NP_BOOL = _Constraint(_is_instance_of_np_bool, "an instance of 'numpy.bool'")
BOOLEAN = _Constraint(lambda v: isinstance(v, (bool, np.bool_)),
                      f"{_INSTANCE_OF_BOOL} or {_INSTANCE_OF_NP_BOOL}")
VERBOSE = _Constraint(
    lambda v: isinstance(v, (bool, np.bool_)) or Interval("int", 0, None, closed="left")
    .is_satisfied_by(v),
    f"{Interval('int', 0, None, closed='left')}, {_INSTANCE_OF_BOOL} or "
    f"{_INSTANCE_OF_NP_BOOL}")
RANDOM_STATE = _Constraint(
    lambda v: v is None or isinstance(v, np.random.RandomState)
    or Interval("int", 0, 2**32 - 1, closed="both").is_satisfied_by(v),
    f"{Interval('int', 0, 2**32 - 1, closed='both')}, an instance of "
    "'numpy.random.mtrand.RandomState' or None")
CALLABLE = _Constraint(callable, "a callable")
ARRAY_LIKE = _Constraint(is_array_like, "an array-like")
SPARSE = _Constraint(is_sparse, "a sparse array or matrix")
NONE = _Constraint(lambda v: v is None, "None")


def validate_parameters(constraints, params, caller):
    """Raise scikit-learn's ``InvalidParameterError`` for the first parameter of ``params``
    (in its order) that meets none of its ``constraints[name]``."""
    for name, value in params.items():
        options = constraints.get(name)
        if options is None or any(c.is_satisfied_by(value) for c in options):
            continue
        described = [str(c) for c in options]
        text = described[0] if len(described) == 1 else (
            f"{', '.join(described[:-1])} or {described[-1]}")
        raise sklearn_class(InvalidParameterError)(
            f"The {name!r} parameter of {caller} must be {text}. Got {value!r} instead.")

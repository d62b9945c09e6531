"""A scikit-learn compatible estimator base, without importing scikit-learn.

``__init__`` only stores its arguments; ``get_params``/``set_params`` read them back through
the constructor's signature, exactly the contract ``sklearn.base.clone`` relies on.
Parameters are validated in ``fit`` against ``_parameter_constraints`` with scikit-learn's
messages (:mod:`cudakmeans._params`). ``set_output`` follows scikit-learn's output API:
the configuration lives in ``_sklearn_output_config`` (which ``sklearn.base.clone``
copies) and falls back on scikit-learn's global ``transform_output`` when scikit-learn is
loaded.
"""

import functools
import inspect
import sys

from ._arrays import host, origin, resolve_output_type, to_output
from ._params import validate_parameters

OUTPUTS = ("default", "pandas", "polars")


@functools.cache
def _init_param_names(init):
    """The sorted parameter names of a constructor (``inspect.signature`` is slow enough to
    be a visible part of a small fit, which reads them to validate its parameters)."""
    signature = inspect.signature(init)
    return tuple(sorted(
        name
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ))


class BaseEstimator:
    """Parameters by name (``get_params``/``set_params``) and scikit-learn's tags."""

    _parameter_constraints = {}

    def _validate_params(self):
        """Raise scikit-learn's ``InvalidParameterError`` for the first invalid parameter."""
        validate_parameters(self._parameter_constraints, self.get_params(deep=False),
                            type(self).__name__)

    @classmethod
    def _param_names(cls):
        return list(_init_param_names(cls.__init__))

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility; no parameter is an estimator.

        Returns
        -------
        params : dict
            Parameter names mapped to their values, as passed to ``__init__``.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Parameter names and their new values; an unknown name raises ``ValueError``.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except Exception:
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so it is already loaded: take its classes from
        # sys.modules rather than importing it (the library never imports scikit-learn).
        utils = sys.modules.get("sklearn.utils")
        if utils is None:
            raise AttributeError("__sklearn_tags__ is for scikit-learn, which is not loaded")
        Tags, TargetTags, TransformerTags = utils.Tags, utils.TargetTags, utils.TransformerTags
        tags = Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
        )
        tags.input_tags.sparse = bool(getattr(self, "_accepts_sparse", False))
        return tags


class OutputMixin:
    """``set_output``: transform results as numpy arrays, pandas or polars data frames."""

    def set_output(self, *, transform=None):
        """Set the container of the output of ``transform`` and ``fit_transform``.

        Parameters
        ----------
        transform : {'default', 'pandas', 'polars'} or None, default=None
            'default' returns numpy arrays; 'pandas' and 'polars' return data frames whose
            columns are :meth:`get_feature_names_out` (the library is imported when the
            output is made); None leaves the configuration unchanged.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        if transform is None:
            return self
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _output_container(self):
        config = getattr(self, "_sklearn_output_config", {})
        if "transform" in config:
            container = config["transform"]
        else:
            sklearn_config = sys.modules.get("sklearn._config")
            container = (sklearn_config.get_config().get("transform_output", "default")
                         if sklearn_config is not None else "default")
        if container not in OUTPUTS:
            raise ValueError(f"output config must be in {sorted(OUTPUTS)}, got {container}")
        return container

    def _output(self, data, X):
        """``data`` (a result of a call on ``X``) as the estimator's ``output_type`` asks
        (:mod:`cudakmeans._arrays`): by default the kind of array ``X`` is."""
        return to_output(data, origin(X), resolve_output_type(getattr(self, "output_type",
                                                                          None)))

    def _wrap_output(self, data, X):
        """``data`` (a 2-D array) in the configured container, indexed like ``X``; in the
        default container, as ``output_type`` asks."""
        container = self._output_container()
        if container == "default":
            return self._output(data, X)
        names = self.get_feature_names_out()
        data = host(data)  # a device result: data frames live on the host
        try:
            library = __import__(container)
        except ImportError as exc:
            raise ImportError(
                f"Setting output container to '{container}' requires {container} to be "
                "installed") from exc
        if container == "polars":
            return library.DataFrame(data, schema=names.tolist(), orient="row")
        index = X.index if isinstance(X, (library.DataFrame, library.Series)) else None
        frame = library.DataFrame(data, index=index, copy=False)
        frame.columns = names
        return frame

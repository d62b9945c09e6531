"""A scikit-learn compatible estimator base, without importing scikit-learn.

``__init__`` only stores its arguments; ``get_params``/``set_params`` read them back through
the constructor's signature, exactly the contract ``sklearn.base.clone`` relies on.
"""

import inspect
import sys


class BaseEstimator:
    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep=True):
        """Parameters of this estimator, as passed to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set parameters by name; unknown names raise ``ValueError``."""
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
        return Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
        )

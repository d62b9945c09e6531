"""Pure-numpy reference k-means and silhouette: the oracle every kernel is checked against.

Test-only code, checked itself against scikit-learn in ``tests/reference``; never installed.
Import from the modules, ``reference.kmeans``, ``reference.minibatch`` and
``reference.silhouette``. (The package
re-exports no functions, so ``reference.kmeans`` is always the module, never shadowed by
the function of the same name.)
"""

from reference import kmeans, minibatch, silhouette

__all__ = ["kmeans", "minibatch", "silhouette"]

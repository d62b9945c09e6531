"""Pure-numpy reference k-means and silhouette: the oracle every kernel is checked against.

Test-only code, checked itself against scikit-learn in ``tests/reference``; never installed.
"""

from reference.kmeans import (
    KMeansResult,
    assign,
    check_random_state,
    inertia,
    init_centers,
    is_same_clustering,
    kmeans,
    kmeans_plusplus,
    kmeans_single_lloyd,
    lloyd_iter,
    tolerance,
)
from reference.silhouette import check_number_of_labels, silhouette_samples, silhouette_score

__all__ = [
    "KMeansResult",
    "assign",
    "check_number_of_labels",
    "check_random_state",
    "inertia",
    "init_centers",
    "is_same_clustering",
    "kmeans",
    "kmeans_plusplus",
    "kmeans_single_lloyd",
    "lloyd_iter",
    "silhouette_samples",
    "silhouette_score",
    "tolerance",
]

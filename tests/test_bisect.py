"""BisectingKMeans' tree (the estimator itself is tested against scikit-learn in
tests/test_templates.py)."""

import numpy as np

from cudakmeans._bisect import _BisectingTree


def test_the_first_of_equally_scored_leaves_is_bisected():
    """scikit-learn bisects the first leaf of the highest score (a strict ``>`` over the
    leaves in tree order); equal scores happen with ``bisecting_strategy='largest_cluster'``
    whenever two leaves hold as many rows."""
    root = _BisectingTree(np.zeros(2), np.arange(4), 10.0)
    root.split(np.array([0, 0, 1, 1]), np.array([[-1.0, 0.0], [1.0, 0.0]]), [2.0, 2.0])
    left = root.get_cluster_to_bisect()
    assert left is root.left
    left.split(np.array([0, 1]), np.array([[-1.5, 0.0], [-0.5, 0.0]]), [1.0, 3.0])
    assert root.get_cluster_to_bisect() is left.right  # a strictly higher score wins
    root.right.score = 3.0
    assert root.get_cluster_to_bisect() is left.right  # a tie again: the first in order

"""scikit-learn's own estimator checks on the CPU path.

scikit-learn is imported here, by the tests, and never by ``cudakmeans``. Every check that
cannot pass is listed once, in :data:`EXPECTED_FAILED_CHECKS`, with its reason; the ini
option ``xfail_strict = true`` turns a check that starts passing into a failure, so the
list cannot go stale.
"""

import warnings

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from cudakmeans import CudaKMeans, KMeans, MiniBatchKMeans  # noqa: E402

# Small fits, as scikit-learn configures its own KMeans for these checks.
ESTIMATORS = [
    KMeans(n_clusters=2, n_init=2, max_iter=5, device="cpu"),
    CudaKMeans(n_clusters=2, max_iter=10, n_init=1, device="cpu"),
    MiniBatchKMeans(n_clusters=2, n_init=2, max_iter=5, batch_size=10, device="cpu"),
]

_VALIDATION = "cudakmeans/_validation.py"

# check name -> why it cannot pass. The single list of accepted failures.
EXPECTED_FAILED_CHECKS = {
    "check_estimators_unfitted": (
        "cudakmeans.NotFittedError subclasses ValueError and AttributeError exactly as "
        "scikit-learn's does, but cannot subclass sklearn.exceptions.NotFittedError without "
        "importing scikit-learn into the library."
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "k-means++ seeding (and MiniBatchKMeans' batches) draw different rows for weighted "
        "and repeated data, so the fits differ; scikit-learn's own KMeans fails this check "
        "too. With an explicit init the equivalence holds: tests/test_properties.py."
    ),
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


# Generating the checks warns that our BaseEstimator is not scikit-learn's; that is by
# design (the library never imports scikit-learn), so the warning is silenced here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*does not inherit from", category=UserWarning)
    _parametrize = parametrize_with_checks(
        ESTIMATORS, expected_failed_checks=expected_failed_checks
    )


@_parametrize
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from",
                                category=UserWarning)
        check(estimator)

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

from cudakmeans import BisectingKMeans, CudaKMeans, KMeans, MiniBatchKMeans  # noqa: E402

# Small fits, as scikit-learn configures its own KMeans for these checks.
ESTIMATORS = [
    KMeans(n_clusters=2, n_init=2, max_iter=5, device="cpu"),
    CudaKMeans(n_clusters=2, max_iter=10, n_init=1, device="cpu"),
    MiniBatchKMeans(n_clusters=2, n_init=2, max_iter=5, batch_size=10, device="cpu"),
    BisectingKMeans(n_clusters=2, n_init=2, max_iter=5, device="cpu"),
]

_VALIDATION = "cudakmeans/_validation.py"

# check name -> why it cannot pass. The single list of accepted failures.
_SEEDING = (
    "k-means++ or random seeding (and MiniBatchKMeans' batches) draw different rows for "
    "weighted and repeated data, so the fits differ; scikit-learn's own KMeans fails this "
    "check too. With an explicit init the equivalence holds: tests/test_properties.py."
)
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _SEEDING,
    "check_sample_weight_equivalence_on_sparse_data": _SEEDING,
}

def expected_failed_checks(estimator):
    if not getattr(estimator, "_accepts_sparse", False):  # no sparse checks run for it
        return {k: v for k, v in EXPECTED_FAILED_CHECKS.items() if "sparse" not in k}
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


# Checks scikit-learn runs on its own estimators from its test_common.py, outside
# parametrize_with_checks (which yields clustering checks only for subclasses of its
# ClusterMixin): feature names, set_output and the clustering contract.
def _extra_checks():
    from sklearn.utils import estimator_checks as ec

    names = [
        "check_dataframe_column_names_consistency",
        "check_get_feature_names_out_error",
        "check_transformer_get_feature_names_out",
        "check_transformer_get_feature_names_out_pandas",
        "check_set_output_transform",
        "check_set_output_transform_pandas",
        "check_global_output_transform_pandas",
        "check_set_output_transform_polars",
        "check_global_set_output_transform_polars",
        "check_clustering",
        "check_clusterer_compute_labels_predict",
        "check_estimators_partial_fit_n_features",
    ]
    return [pytest.param(estimator, getattr(ec, name), id=f"{estimator!r}-{name}")
            for estimator in ESTIMATORS for name in names]


@pytest.mark.parametrize(("estimator", "check"), _extra_checks())
def test_scikit_learn_common_checks(estimator, check):
    pytest.importorskip("pandas")
    if "polars" in check.__name__:
        pytest.importorskip("polars")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check(type(estimator).__name__, estimator)
    if check.__name__ == "check_dataframe_column_names_consistency":
        # scikit-learn's own condition on this check: no spurious warning
        for warning in record:
            assert "was fitted without feature names" not in str(warning.message)

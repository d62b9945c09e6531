"""Arrays in and out on the CPU path (cudakmeans._arrays): CPU torch tensors through DLPack
and array-api-strict arrays give NumPy's results bit for bit and come back in the input's
type with ``output_type='input'``; the configuration and its per-call override."""

import pickle

import numpy as np
import pytest

import cudakmeans
from cudakmeans import (
    BisectingKMeans,
    KMeans,
    MiniBatchKMeans,
    _arrays,
    config_context,
    get_config,
    set_config,
    silhouette_samples,
    silhouette_score,
)
from tests.helpers import make_blobs

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_strict")

LIBRARIES = {
    "torch": (lambda a: torch.from_numpy(a.copy()), torch.Tensor, lambda t: t.numpy()),
    "array_api_strict": (lambda a: xp.asarray(a.copy()), type(xp.asarray([1.0])),
                         lambda a: np.from_dlpack(a)),
}


@pytest.fixture(params=sorted(LIBRARIES))
def library(request):
    return LIBRARIES[request.param]


@pytest.fixture
def data(dtype):
    X, _ = make_blobs(120, 3, 4, seed=5, dtype=dtype)
    return X


def test_kmeans_on_a_cpu_array_library_matches_numpy(library, data):
    wrap, kind, unwrap = library
    X_in = wrap(data)
    before = unwrap(X_in).copy()
    ours = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X_in)
    expected = KMeans(4, n_init=2, random_state=0, device="cpu").fit(data)
    for got, want in ((ours.labels_, expected.labels_),
                      (ours.cluster_centers_, expected.cluster_centers_),
                      (ours.predict(X_in), expected.predict(data)),
                      (ours.transform(X_in), expected.transform(data)),
                      (ours.fit_predict(X_in), expected.labels_)):
        assert isinstance(got, kind)
        np.testing.assert_array_equal(unwrap(got), want)
        assert unwrap(got).dtype == want.dtype
    assert isinstance(ours.inertia_, float) and ours.inertia_ == expected.inertia_
    assert isinstance(ours.score(X_in), float)
    np.testing.assert_array_equal(unwrap(X_in), before)  # the input is not modified


def test_the_other_estimators_and_the_silhouette_follow_the_input(library, data):
    wrap, kind, unwrap = library
    X_in = wrap(data)
    for make in (lambda: MiniBatchKMeans(4, batch_size=32, random_state=0, device="cpu"),
                 lambda: BisectingKMeans(4, random_state=0, device="cpu")):
        ours, expected = make().fit(X_in), make().fit(data)
        assert isinstance(ours.labels_, kind) and isinstance(ours.predict(X_in), kind)
        np.testing.assert_array_equal(unwrap(ours.labels_), expected.labels_)
        np.testing.assert_array_equal(unwrap(ours.cluster_centers_), expected.cluster_centers_)
    labels = KMeans(4, random_state=0, device="cpu").fit(data).labels_
    samples = silhouette_samples(X_in, wrap(labels), device="cpu")
    assert isinstance(samples, kind)
    np.testing.assert_array_equal(unwrap(samples), silhouette_samples(data, labels, device="cpu"))
    score = silhouette_score(X_in, wrap(labels), device="cpu")
    assert type(score) is float and score == silhouette_score(data, labels, device="cpu")


def test_sample_weight_and_init_as_tensors(data):
    w = np.linspace(0.5, 2.0, data.shape[0]).astype(data.dtype)
    init = data[[0, 40, 80, 119]]
    ours = KMeans(4, init=torch.from_numpy(init.copy()), device="cpu").fit(
        torch.from_numpy(data.copy()), sample_weight=torch.from_numpy(w))
    expected = KMeans(4, init=init, device="cpu").fit(data, sample_weight=w)
    np.testing.assert_array_equal(ours.cluster_centers_.numpy(), expected.cluster_centers_)


def test_output_type_per_estimator_beats_the_configuration(data):
    model = KMeans(4, random_state=0, device="cpu").fit(data)
    assert isinstance(model.labels_, np.ndarray)
    with config_context(output_type="torch"):
        assert isinstance(model.labels_, torch.Tensor)
        assert isinstance(model.predict(data), torch.Tensor)
        assert isinstance(silhouette_samples(data, model.labels_.numpy(), device="cpu"),
                          torch.Tensor)
        model.set_params(output_type="numpy")
        assert isinstance(model.labels_, np.ndarray)
        assert isinstance(silhouette_samples(data, model.labels_, device="cpu",
                                             output_type="numpy"), np.ndarray)
    model.set_params(output_type=None)
    tensor_fit = KMeans(4, random_state=0, device="cpu", output_type="numpy").fit(
        torch.from_numpy(data.copy()))
    assert isinstance(tensor_fit.labels_, np.ndarray)
    assert isinstance(tensor_fit.transform(torch.from_numpy(data.copy())), np.ndarray)


def test_set_config_is_process_wide_and_config_context_restores(data):
    assert get_config() == {"output_type": "input"}
    try:
        set_config(output_type="torch")
        assert get_config()["output_type"] == "torch"
        with config_context(output_type="numpy"):
            assert get_config()["output_type"] == "numpy"
            with pytest.raises(RuntimeError, match="inside"):
                with config_context(output_type="input"):
                    raise RuntimeError("inside")
            assert get_config()["output_type"] == "numpy"
        labels = KMeans(4, random_state=0, device="cpu").fit(data).labels_
        assert isinstance(labels, torch.Tensor)
    finally:
        set_config(output_type="input")
    assert get_config() == {"output_type": "input"}


@pytest.mark.parametrize(("call", "match"), [
    (lambda: set_config(output_type="jax"), "output_type must be one of"),
    (lambda: config_context(output_type=3).__enter__(), "output_type must be one of"),
    (lambda: KMeans(2, output_type="pandas", device="cpu").fit(np.eye(3)),
     "'output_type' parameter of KMeans must be"),
    (lambda: silhouette_samples(np.eye(3), [0, 0, 1], output_type="list", device="cpu"),
     "output_type must be one of"),
    (lambda: KMeans(2, device="cpu").fit(torch.ones(5, 2, requires_grad=True)),
     "requires grad; pass X.detach"),
    (lambda: KMeans(2, device="cpu").fit(torch.ones(5, 2, dtype=torch.bfloat16)),
     "cannot be read through DLPack"),
    (lambda: KMeans(2, device="cpu").fit(torch.ones(5, 2, dtype=torch.int32) > 0),
     "boolean dtype"),
])
def test_bad_input_and_settings_are_refused(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_float16_and_strided_tensors_are_read_as_numpy_reads_them(data):
    wide = torch.from_numpy(np.ascontiguousarray(np.repeat(data, 2, axis=1)))
    strided = wide[:, ::2]
    assert not strided.is_contiguous()
    expected = KMeans(4, random_state=0, device="cpu").fit(data)
    np.testing.assert_array_equal(KMeans(4, random_state=0, device="cpu").fit(strided)
                                  .labels_.numpy(), expected.labels_)
    half = data.astype(np.float16)
    model = KMeans(4, random_state=0, device="cpu").fit(torch.from_numpy(half))
    np.testing.assert_array_equal(model.cluster_centers_.numpy(), KMeans(
        4, random_state=0, device="cpu").fit(half).cluster_centers_)


def test_a_fitted_estimator_does_not_keep_the_training_tensor(data):
    """Its origin holds the library and the device, never the data (pickle size)."""
    X = torch.from_numpy(np.repeat(data, 50, axis=0))
    model = KMeans(4, n_init=1, random_state=0, device="cpu").fit(X)
    labels_bytes = model.labels_.numpy().nbytes
    assert len(pickle.dumps(model)) < labels_bytes + 10_000 < X.numpy().nbytes
    clone = pickle.loads(pickle.dumps(model))
    assert isinstance(clone.labels_, torch.Tensor)
    np.testing.assert_array_equal(clone.labels_.numpy(), model.labels_.numpy())


def test_host_results_go_to_the_requested_library():
    result = np.arange(6.0).reshape(3, 2)
    assert _arrays.to_output(result, _arrays.HOST, "input") is result
    assert _arrays.to_output(result, _arrays.HOST, "numpy") is result
    tensor = _arrays.to_output(result, _arrays.HOST, "torch")
    assert isinstance(tensor, torch.Tensor)
    tensor[0, 0] = 7.0  # torch.from_numpy: the same memory, no copy
    assert result[0, 0] == 7.0
    origin = _arrays.origin(xp.asarray([[1.0]]))
    assert origin == ("array_api", False, "array_api_strict", origin.device)
    assert _arrays.origin([[1.0]]) is _arrays.HOST
    assert not _arrays.is_device_array(torch.ones(2))


def test_importing_cudakmeans_loads_no_array_library():
    """The recognition is by protocol: torch and cupy stay unimported."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, cudakmeans; "
            "cudakmeans.KMeans(2, device='cpu').fit(np.eye(4)); "
            "print(sorted(m for m in ('torch', 'cupy', 'array_api_strict') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"CUDAKMEANS_DEVICE": "cpu", "PATH": ""})
    assert out.stdout.strip() == "[]"
    assert "set_config" in cudakmeans.__all__

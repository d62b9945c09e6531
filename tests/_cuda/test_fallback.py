"""device='auto' never fails where the CPU would succeed: injected CUDA failures.

For each entry point, each kind of environmental failure (tests/_cuda/faults.py) is
injected at each stage of the CUDA path: the first launch (where a kernel compiles or
loads), a later launch, a device allocation and a copy back to the host. With
device='auto' the call must give the device='cpu' result bit for bit (every attribute of
an estimator, and the RandomState it drew from left where the CPU call leaves it), emit
exactly one CudaFallbackWarning naming the cause, say it ran on the CPU and why, and leave
no device memory allocated; the next call goes straight to the CPU after a persistent
failure and tries CUDA again after an out-of-memory. With device='cuda' the call raises,
naming the cause, and leaves the estimator as it was. A NaN in X is the caller's error:
raised, never absorbed.
"""

import copy
import gc
import json
import warnings

import numpy as np
import pytest

import cudakmeans
from cudakmeans import (
    BisectingKMeans,
    CudaError,
    CudaFallbackWarning,
    CudaKMeans,
    DeviceMemoryError,
    KMeans,
    MiniBatchKMeans,
    cli,
    cuda_silhouette_score,
    kmeans_plusplus,
    silhouette_score,
)
from cudakmeans._cuda import memory
from cudakmeans.data import load_patterns
from cudakmeans.templates import fit_templates
from tests._cuda.faults import FIRST_LAUNCH, KINDS, PERSISTENT, STAGES, Faults
from tests.helpers import make_blobs

pytestmark = pytest.mark.cudasim

SEED = 20261207
X = make_blobs(48, 2, 3, seed=11)[0]
X_NAN = X.copy()
X_NAN[5, 1] = np.nan


# -- comparing results bit for bit -----------------------------------------------------------
IGNORED = {"device", "device_reason_", "device_reason", "times"}


def assert_same(got, expected, where="result"):
    """Every array, number and attribute equal, recursively; RandomStates in equal states."""
    if isinstance(expected, np.random.RandomState):
        got_state, expected_state = got.get_state(), expected.get_state()
        np.testing.assert_array_equal(got_state[1], expected_state[1], err_msg=where)
        assert got_state[2:] == expected_state[2:], where
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype, where
        np.testing.assert_array_equal(got, expected, err_msg=where)
    elif isinstance(expected, dict):
        assert set(got) - IGNORED == set(expected) - IGNORED, where
        for key in set(expected) - IGNORED:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif hasattr(expected, "__dict__") and not callable(expected):
        assert type(got) is type(expected), where
        assert_same(vars(got), vars(expected), where)
    else:
        assert type(got) is type(expected) and (got == expected or got != got), (
            where, got, expected)


# -- the entry points ------------------------------------------------------------------------
class Estimator:
    """An estimator method: ``make`` returns the estimator and the call to run."""

    next_is_fresh = True

    def ran(self, subject, result):
        return subject.device_, subject.device_reason_

    def result(self, subject, result):
        return subject


class KMeansFit(Estimator):
    label = "KMeans.fit"

    def make(self, device, rs):
        model = KMeans(3, n_init=2, max_iter=10, random_state=rs, device=device)
        return model, lambda: model.fit(X)


class CudaKMeansFitPredict(Estimator):
    label = "CudaKMeans.fit"

    def make(self, device, rs):
        model = CudaKMeans(3, 10, 1, rs, device=device)
        return model, lambda: model.fit_predict(X)


class BisectingFit(Estimator):
    label = "BisectingKMeans.fit"

    def make(self, device, rs):
        model = BisectingKMeans(3, n_init=1, max_iter=10, random_state=rs, device=device)
        return model, lambda: model.fit(X)


class MiniBatchFit(Estimator):
    label = "MiniBatchKMeans.fit"

    def make(self, device, rs):
        model = MiniBatchKMeans(3, batch_size=16, max_iter=2, random_state=rs,
                                device=device)
        return model, lambda: model.fit(X)


class PartialFitMidStream(Estimator):
    """The second chunk of a stream whose first chunk ran on CUDA; the next call is the
    third chunk of the same stream."""

    label = "MiniBatchKMeans.partial_fit"
    next_is_fresh = False
    chunks = (X[:16], X[16:32], X[32:])
    _streamed = None

    def streamed(self):
        if PartialFitMidStream._streamed is None:  # one CUDA step shared by every case
            model = MiniBatchKMeans(3, batch_size=16, random_state=SEED, device="auto")
            PartialFitMidStream._streamed = model.partial_fit(self.chunks[0])
            assert model.device_ == "cuda"
        return PartialFitMidStream._streamed

    def make(self, device, rs):
        model = copy.deepcopy(self.streamed())
        model.device = device
        return model, lambda: model.partial_fit(self.chunks[1])

    def next_call(self, subject):
        subject.partial_fit(self.chunks[2])
        return subject, subject


class Function:
    next_is_fresh = True

    def ran(self, subject, result):
        return cudakmeans.last_device()

    def result(self, subject, result):
        return result


class SilhouetteScore(Function):
    label = "silhouette_score"
    labels = np.arange(X.shape[0]) % 3

    def make(self, device, rs):
        return None, lambda: (silhouette_score(X, self.labels, sample_size=30,
                                               random_state=rs, device=device), rs)


class SilhouetteSamples(Function):
    label = "silhouette_samples"

    def make(self, device, rs):
        return None, lambda: cudakmeans.silhouette_samples(X, SilhouetteScore.labels,
                                                           device=device)


class KMeansPlusPlus(Function):
    label = "kmeans_plusplus"

    def make(self, device, rs):
        return None, lambda: (kmeans_plusplus(X, 3, random_state=rs, device=device), rs)


class Predict(Function):
    """predict of a model fitted on CUDA runs where the fit ran, and falls back too."""

    label = "KMeans.predict"
    _fitted = None

    def make(self, device, rs):
        if Predict._fitted is None:
            Predict._fitted = KMeans(3, n_init=1, random_state=SEED, device="auto").fit(X)
            assert Predict._fitted.device_ == "cuda"
        model = copy.deepcopy(Predict._fitted)
        model.device = device
        if device == "cpu":
            model.device_ = "cpu"
        return model, lambda: model.predict(X)



class Templates:
    label = "fit_templates"
    next_is_fresh = True

    @property
    def Z(self):
        return load_patterns()[:60]

    def make(self, device, rs):
        return None, lambda: fit_templates(
            self.Z, 3, split_threshold=1.0, min_size=5, max_depth=1, refine_k=[3], n_init=1,
            random_state=rs, device=device)

    def ran(self, subject, result):
        return result.device, result.device_reason

    def result(self, subject, result):
        return result


FULL = [KMeansFit(), SilhouetteScore(), MiniBatchFit(), PartialFitMidStream(), Templates()]
LIGHT = [CudaKMeansFitPredict(), BisectingFit(), KMeansPlusPlus(), SilhouetteSamples(),
         Predict()]

_references = {}
_launches = {}


def reference(target):
    """The device='cpu' call's result, computed once per entry point."""
    if target.label not in _references:
        subject, run = target.make("cpu", np.random.RandomState(SEED))
        _references[target.label] = target.result(subject, run())
    return _references[target.label]


def later_launch(target, monkeypatch):
    """The third launch of the call, or its last if it makes fewer (found by a CUDA run)."""
    if target.label not in _launches:
        with monkeypatch.context() as patch:
            counter = Faults(patch)
            target.make("auto", np.random.RandomState(SEED))[1]()
        _launches[target.label] = counter.counts["launch"]
    return min(3, _launches[target.label])


@pytest.fixture
def faults(monkeypatch):
    return Faults(monkeypatch)


def _cases(targets, stages, kinds):
    return [pytest.param(t, s, k, id=f"{t.label}-{s}-{k}")
            for t in targets for s in stages for k in kinds]


def _make_exception(kind):
    return (KINDS | FIRST_LAUNCH)[kind]


def _persistent(kind):
    return PERSISTENT[kind.split("-")[0]]


def _arm(faults, target, stage, kind, monkeypatch):
    if stage == "launch":
        nth = later_launch(target, monkeypatch)
        faults.armed = ("launch", faults.counts["launch"] + nth, _make_exception(kind))
    else:
        faults.arm(stage, _make_exception(kind))


TABLE = (_cases(FULL, STAGES, KINDS) + _cases(FULL, ["compile"], FIRST_LAUNCH)
         + _cases(LIGHT, ["compile"], ["compile"]) + _cases(LIGHT, ["alloc"], ["out of memory"]))


@pytest.mark.parametrize("target, stage, kind", TABLE)
def test_auto_reruns_on_the_cpu(target, stage, kind, faults, monkeypatch):
    expected = reference(target)
    persistent = _persistent(kind)
    gc.collect()  # arrays earlier tests left to the collector are not this call's
    before = memory.live_bytes()
    rs = np.random.RandomState(SEED)
    subject, run = target.make("auto", rs)
    _arm(faults, target, stage, kind, monkeypatch)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = run()
        device, reason = target.ran(subject, result)
    assert faults.fired == 1, "the failure was not injected"
    assert memory.live_bytes() == before, "the failed CUDA attempt left device arrays"

    assert [w.category for w in record] == [CudaFallbackWarning], [
        str(w.message) for w in record]
    message = str(record[0].message)
    cause = ("DeviceMemoryError" if (stage, kind) == ("alloc", "out of memory")
             else type(_make_exception(kind)()).__name__)
    assert message.startswith(f"{target.label} ran on the CPU") and cause in message
    assert "To fix:" in message
    assert ("Later device='auto' calls in this process run on the CPU" in message) == persistent
    assert device == "cpu" and reason.startswith("CUDA failed (") and cause in reason
    if isinstance(target, PartialFitMidStream):
        assert "partial_fit stream ran its earlier steps on CUDA" in message
        assert "partial_fit stream ran its earlier steps on CUDA" in reason
    assert_same(target.result(subject, result), expected)

    # The next call: straight to the CPU after a persistent failure, CUDA again otherwise.
    counted = faults.total()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if target.next_is_fresh:
            subject, run = target.make("auto", np.random.RandomState(SEED))
            result = run()
        else:
            subject, result = target.next_call(subject)
        device, reason = target.ran(subject, result)
    assert not [str(w.message) for w in record]
    if persistent:
        assert faults.total() == counted, "CUDA was tried again after a persistent failure"
        assert device == "cpu" and reason.startswith("CUDA is off for device='auto'")
        if target.next_is_fresh:
            assert_same(target.result(subject, result), expected)
    else:
        assert faults.total() > counted and device == "cuda"


@pytest.mark.parametrize("target, stage, kind",
                         _cases(FULL, STAGES, ["compile", "out of memory"])
                         + _cases(FULL, ["copy"], ["driver", "launch"])
                         + _cases(LIGHT, ["compile"], ["link"]))
def test_device_cuda_raises_naming_the_cause(target, stage, kind, faults, monkeypatch):
    gc.collect()
    before = memory.live_bytes()
    subject, run = target.make("cuda", np.random.RandomState(SEED))
    attributes = None if subject is None else copy.deepcopy(vars(subject))
    _arm(faults, target, stage, kind, monkeypatch)
    oom = kind == "out of memory"
    with pytest.raises(DeviceMemoryError if oom and stage == "alloc" else CudaError) as info:
        run()
    assert faults.fired == 1
    if not (oom and stage == "alloc"):  # DeviceMemoryError says what needed how much
        exc = _make_exception(kind)()
        cause = f"{type(exc).__name__}: {' '.join(str(exc).split())}"  # on one line
        assert cause in str(info.value)
        assert "To fix:" in str(info.value) and type(info.value.__cause__) is type(exc)
    # the error's traceback keeps the failed frames' closures until the caller drops it
    del info
    assert memory.live_bytes() == before
    if attributes is not None:  # nothing half-done on the estimator
        assert_same(vars(subject), attributes)
        assert subject.device == "cuda"


@pytest.mark.parametrize("target", FULL + LIGHT, ids=lambda t: t.label)
def test_nan_in_x_is_raised_not_absorbed(target, faults):
    subject, run = _with_nan(target)
    faults.arm("compile", _make_exception("compile"))  # would fire if CUDA were reached
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="NaN"):
            run()
    assert faults.fired == 0 and cudakmeans._fallback.disabled() is None


def _with_nan(target):
    """The target's call with NaN in X (or in the chunk, or the template data)."""
    if isinstance(target, Templates):
        Z = target.Z.copy()
        Z[3, 2] = np.nan
        return None, lambda: fit_templates(Z, 3, refine_k=None, device="auto")
    if isinstance(target, PartialFitMidStream):
        model = copy.deepcopy(target.streamed())
        return model, lambda: model.partial_fit(X_NAN[:16])
    if isinstance(target, Predict):
        model = target.make("auto", None)[0]
        return model, lambda: model.predict(X_NAN)
    calls = {
        "KMeans.fit": lambda: KMeans(3, device="auto").fit(X_NAN),
        "CudaKMeans.fit": lambda: CudaKMeans(3, device="auto").fit(X_NAN),
        "BisectingKMeans.fit": lambda: BisectingKMeans(3, device="auto").fit(X_NAN),
        "MiniBatchKMeans.fit": lambda: MiniBatchKMeans(3, device="auto").fit(X_NAN),
        "silhouette_score": lambda: silhouette_score(X_NAN, SilhouetteScore.labels),
        "silhouette_samples": lambda: cudakmeans.silhouette_samples(
            X_NAN, SilhouetteScore.labels),
        "kmeans_plusplus": lambda: kmeans_plusplus(X_NAN, 3),
    }
    return None, calls[target.label]


def test_a_callable_init_that_raises_is_the_callers_error(faults):
    def init(X, n_clusters, random_state):
        raise TypeError("the caller's init is broken")

    with pytest.raises(TypeError, match="init is broken"):
        KMeans(3, init=init, n_init=1, device="auto").fit(X)
    assert cudakmeans._fallback.disabled() is None


def test_kmeans_out_of_memory_under_the_memory_cap(faults):
    """The backend's own cap (memory.limit) makes the DeviceMemoryError a full GPU makes."""
    expected = reference(KMeansFit())
    gc.collect()
    before = memory.live_bytes()
    model, run = KMeansFit().make("auto", np.random.RandomState(SEED))
    with pytest.warns(CudaFallbackWarning, match="out of device memory.*CUDA out of memory"):
        with memory.limit(X.nbytes + 100):
            run()
    assert memory.live_bytes() == before
    assert model.device_ == "cpu" and "DeviceMemoryError" in model.device_reason_
    assert_same(model, expected)
    assert KMeans(3, n_init=1, random_state=0).fit(X).device_ == "cuda"  # tried again


def test_device_arrays_held_in_a_reference_cycle_are_freed_before_the_rerun(faults):
    """A failure whose exception is in a cycle (a frame that keeps its own error, say)
    outlives the except block until the cycle collector runs; the rerun must not wait."""

    def failure_in_a_cycle():
        exc = _make_exception("launch")()
        exc.held = memory.to_device(np.ones(1000), stream=0, what="a test")
        exc.cycle = exc
        return exc

    gc.collect()
    before = memory.live_bytes()
    gc.disable()  # no automatic collection may free it for the code under test
    try:
        faults.arm("compile", failure_in_a_cycle)
        with pytest.warns(CudaFallbackWarning):
            model = KMeans(3, n_init=1, random_state=0, device="auto").fit(X)
        assert memory.live_bytes() == before
    finally:
        gc.enable()
    assert model.device_ == "cpu"


def test_cli_says_which_device_ran_and_why(faults, tmp_path, capsys):
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",")
    fit = ["fit", str(data), "-k", "3", "--n-init", "1", "--out", str(tmp_path / "fit")]
    faults.arm("compile", _make_exception("compile"))
    with pytest.warns(CudaFallbackWarning, match="NvvmError"):
        assert cli.main(fit) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "device: cpu (CUDA failed (compile error: NvvmError: Failed to compile" in out
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert summary["device"] == "cpu" and "NvvmError" in summary["device_reason"]

    # the workflow after it: CUDA is off for 'auto', and the output says since when
    templates = ["templates", str(data), "--k", "3", "--n-init", "1", "--refine-k", "none",
                 "--out", str(tmp_path / "templates")]
    counted = faults.total()
    assert cli.main(templates) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert faults.total() == counted
    assert "device: cpu (CUDA is off for device='auto' in this process since an earlier " \
           "call failed (compile error: NvvmError" in out

    # --device cuda: exit 1, the cause in the one line on stderr
    faults.arm("launch", _make_exception("launch"))
    assert cli.main([*fit, "--device", "cuda"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device='cuda' failed: launch error: CudaAPIError" in err


def test_cuda_silhouette_score_falls_back_with_one_warning(faults, monkeypatch):
    monkeypatch.delenv("CUDAKMEANS_DEVICE", raising=False)
    labels = SilhouetteScore.labels
    expected = silhouette_score(X, labels, device="cpu")
    faults.arm("compile", _make_exception("compile"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = cuda_silhouette_score(X, labels)
    assert [w.category for w in record] == [CudaFallbackWarning]
    assert got == expected and cudakmeans.last_device().device == "cpu"
    # CUDA is now off: the function's own warning says so, each call
    with pytest.warns(RuntimeWarning, match="runs on the CPU: CUDA is off for device='auto'"):
        assert cuda_silhouette_score(X, labels) == expected

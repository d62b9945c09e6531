"""The device='auto' fallback rule (cudakmeans/_fallback.py), without the simulator.

Which failures are environmental (numba-cuda's own exception classes, as the real driver
raises them), and the rule on a stand-in for a CUDA path: a function that fails the way a
kernel launch would when the device resolves to CUDA. The same rule on the real entry
points, with failures injected into the simulator, is in tests/_cuda/test_fallback.py.
"""

import pickle
import warnings

import numpy as np
import pytest

import cudakmeans
from cudakmeans import CudaError, CudaFallbackWarning, DeviceMemoryError, KMeans, _device, _fallback
from cudakmeans._fallback import classify, guarded_function
from cudakmeans._validation import check_random_state
from tests.numba_errors import (
    CCSupportError,
    CudaDriverError,
    CudaSupportError,
    LinkerError,
    LoweringError,
    NvrtcCompilationError,
    NvrtcError,
    NvrtcSupportError,
    NvvmError,
    NvvmSupportError,
    TypingError,
    api_error,
)

ENVIRONMENTAL = [
    # (exception, kind, persistent)
    (CudaSupportError("Error at driver init: CUDA driver library cannot be found"), "driver",
     True),
    (CudaDriverError("CUDA initialized before forking"), "driver", True),
    (api_error(201, "CUDA_ERROR_INVALID_CONTEXT"), "driver", True),
    (api_error(35, "CUDA_ERROR_INSUFFICIENT_DRIVER"), "driver", True),
    (api_error(999, "CUDA_ERROR_UNKNOWN"), "driver", True),
    (api_error(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"), "toolkit", True),
    (api_error(209, "CUDA_ERROR_NO_BINARY_FOR_GPU"), "toolkit", True),
    (NvvmSupportError("libNVVM cannot be found"), "toolkit", True),
    (NvrtcSupportError("NVRTC cannot be found"), "toolkit", True),
    (CCSupportError("GPU compute capability 3.5 is not supported"), "toolkit", True),
    (NvvmError("Failed to compile", "<unnamed> (37, 19): parse expected type"), "compile",
     True),
    (NvrtcError("NVRTC_ERROR_INVALID_OPTION"), "compile", True),
    (NvrtcCompilationError("NVRTC Compilation failure"), "compile", True),
    (TypingError("No implementation of function"), "compile", True),
    (LoweringError("Failed in cuda mode pipeline"), "compile", True),
    (LinkerError("cuLinkAddData failed: ptxas fatal"), "link", True),
    (RuntimeError("Cannot pickle CUDACodeLibrary with linking files"), "cache", True),
    (RuntimeError("Cannot pickle unfinalized CUDACodeLibrary"), "cache", True),
    (pickle.PicklingError("Cannot serialize kernels referencing global device arrays"),
     "cache", True),
    (pickle.UnpicklingError("invalid load key, '\\x00'."), "cache", True),
    (api_error(701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"), "launch", True),
    (api_error(702, "CUDA_ERROR_LAUNCH_TIMEOUT"), "launch", True),
    (api_error(719, "CUDA_ERROR_LAUNCH_FAILED"), "launch", True),
    (api_error(700, "CUDA_ERROR_ILLEGAL_ADDRESS"), "launch", True),
    (api_error(2, "CUDA_ERROR_OUT_OF_MEMORY"), "out of memory", False),
    (DeviceMemoryError("CUDA out of memory: KMeans needs 1.0 GiB more"), "out of memory",
     False),
]
IDS = [f"{type(e).__name__}{getattr(e, 'code', '')}-{i}" for i, (e, _, _) in
       enumerate(ENVIRONMENTAL)]


@pytest.mark.parametrize("exc, kind, persistent", ENVIRONMENTAL, ids=IDS)
def test_environmental_failures_are_classified(exc, kind, persistent):
    failure = classify(exc)
    assert failure is not None
    assert (failure.kind, failure.persistent) == (kind, persistent)
    assert failure.cause.startswith(type(exc).__name__)
    assert failure.fix


# A class of numba's name defined outside numba (as tests/_cuda/test_memory.py does).
ForeignCudaAPIError = type("CudaAPIError", (RuntimeError,), {"code": 2})

NOT_ENVIRONMENTAL = [
    ValueError("X contains NaN; remove or impute non-finite values first."),
    TypeError("n_clusters must be an integer"),
    RuntimeError("something else"),
    MemoryError("host memory"),
    KeyError("labels"),
    ForeignCudaAPIError("only numba's classes count"),
]


@pytest.mark.parametrize("exc", NOT_ENVIRONMENTAL,
                         ids=["ValueError", "TypeError", "RuntimeError", "MemoryError",
                              "KeyError", "foreign-CudaAPIError"])
def test_other_errors_are_not_classified(exc):
    assert classify(exc) is None


def test_any_error_raised_in_numbas_cache_module_is_a_cache_failure():
    namespace = {"__name__": "numba.cuda.core.caching"}
    exec("def load():\n    raise EOFError('Ran out of input')", namespace)
    try:
        namespace["load"]()
    except EOFError as exc:
        failure = classify(exc)
    assert failure is not None and failure.kind == "cache" and failure.persistent


def test_fixes_name_what_to_do():
    assert "cu12" in classify(NvvmSupportError("x")).fix
    assert "driver" in classify(api_error(222, "x")).fix
    assert "NUMBA_CACHE_DIR" in classify(pickle.UnpicklingError("x")).fix
    assert "upgrade cudakmeans" in classify(
        RuntimeError("Cannot pickle CUDACodeLibrary with linking files")).fix
    assert "watchdog" in classify(api_error(702, "x")).fix


# -- the rule, on a stand-in for a CUDA path ------------------------------------------------

class Path:
    """A CUDA path that fails with ``error`` (when set), after drawing from the RNG."""

    def __init__(self):
        self.error = None
        self.cuda_attempts = 0

    def run(self, x, *, random_state=None, device="auto"):
        rs = check_random_state(random_state)
        draws = rs.randint(0, 2**31, size=3)
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN")
        if _device.resolve_device(device) == "cuda":
            self.cuda_attempts += 1
            if self.error is not None:
                raise self.error
            return "cuda", draws
        return "cpu", draws


@pytest.fixture
def path(monkeypatch):
    monkeypatch.delenv("CUDAKMEANS_DEVICE", raising=False)
    monkeypatch.setattr(_device, "cuda_status", lambda: (True, "Fake GPU (compute capability 8.6)"))
    p = Path()
    return p, guarded_function(p.run)


def _one_warning(record):
    assert len(record) == 1, [str(w.message) for w in record]
    assert record[0].category is CudaFallbackWarning
    return str(record[0].message)


@pytest.mark.parametrize("exc, kind, persistent", ENVIRONMENTAL, ids=IDS)
def test_auto_reruns_on_the_cpu_from_the_same_random_state(path, exc, kind, persistent):
    p, call = path
    p.error = exc
    rs, rs_cpu = np.random.RandomState(7), np.random.RandomState(7)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        device, draws = call(np.ones(3), random_state=rs)
    message = _one_warning(record)
    assert type(exc).__name__ in message and "To fix:" in message
    assert ("Later device='auto' calls" in message) == persistent
    assert cudakmeans.last_device().device == "cpu"
    assert "reran on the CPU" in cudakmeans.last_device().reason
    expected_device, expected_draws = call(np.ones(3), random_state=rs_cpu, device="cpu")
    assert device == expected_device == "cpu"
    np.testing.assert_array_equal(draws, expected_draws)
    np.testing.assert_array_equal(rs.randint(0, 2**31, 5), rs_cpu.randint(0, 2**31, 5))

    # the next call: straight to the CPU after a persistent failure, CUDA again otherwise
    p.error = None
    attempts = p.cuda_attempts
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        device, _ = call(np.ones(3), random_state=0)
    assert not record
    assert device == ("cpu" if persistent else "cuda")
    assert p.cuda_attempts == attempts + (not persistent)
    if persistent:
        assert "CUDA is off for device='auto'" in cudakmeans.last_device().reason


def test_the_global_random_state_is_rewound_too(path):
    p, call = path
    p.error = NvvmError("Failed to compile")
    global_rs = np.random.mtrand._rand  # what random_state=None draws from
    state = global_rs.get_state()  # put back after the test: other tests never see it
    try:
        with pytest.warns(CudaFallbackWarning):
            _, draws = call(np.ones(3))
        global_rs.set_state(state)
        _, expected = call(np.ones(3), device="cpu")
    finally:
        global_rs.set_state(state)
    np.testing.assert_array_equal(draws, expected)


@pytest.mark.parametrize("exc, kind, persistent", ENVIRONMENTAL, ids=IDS)
def test_device_cuda_raises_naming_the_cause(path, exc, kind, persistent):
    p, call = path
    p.error = exc
    expected = DeviceMemoryError if isinstance(exc, DeviceMemoryError) else CudaError
    with pytest.raises(expected) as info:
        call(np.ones(3), device="cuda")
    if expected is CudaError:
        assert type(exc).__name__ in str(info.value) and "To fix:" in str(info.value)
        assert info.value.__cause__ is exc and info.value.failure.kind == kind
    # a persistent failure found by device='cuda' also keeps later 'auto' calls off CUDA
    p.error = None
    assert call(np.ones(3))[0] == ("cpu" if persistent else "cuda")


def test_user_errors_are_raised_not_absorbed(path):
    p, call = path
    p.error = NvvmError("never reached")
    with pytest.raises(ValueError, match="NaN"):
        call(np.array([1.0, np.nan]))
    assert _fallback.disabled() is None


def test_other_errors_of_the_cuda_path_are_raised(path):
    p, call = path
    p.error = RuntimeError("a bug, not the environment")
    with pytest.raises(RuntimeError, match="a bug"):
        call(np.ones(3))
    assert _fallback.disabled() is None
    p.error = None
    assert call(np.ones(3))[0] == "cuda"


def test_a_nested_device_cuda_failure_makes_the_outer_auto_call_fall_back(path):
    """The template workflow resolves once and passes device='cuda' down."""
    p, inner = path

    @guarded_function
    def outer(x, *, random_state=None, device="auto"):
        return inner(x, random_state=random_state, device=_device.resolve_device(device))

    p.error = LinkerError("cuLinkAddData failed")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        device, draws = outer(np.ones(3), random_state=3)
    assert "LinkerError" in _one_warning(record)
    assert device == "cpu"
    np.testing.assert_array_equal(draws, inner(np.ones(3), random_state=3, device="cpu")[1])


def test_guarded_functions_read_device_and_random_state_by_keyword_only():
    """The guard reads ``device`` and ``random_state`` from the call's keywords (not by
    binding every argument): a function taking either positionally is refused where it
    is decorated, and a call with a wrong argument raises Python's own error."""
    def positional(x, random_state=None, *, device="auto"):
        return x

    with pytest.raises(TypeError, match="keyword-only"):
        guarded_function(positional)
    with pytest.raises(TypeError, match="unexpected keyword argument 'devices'"):
        cudakmeans.kmeans_plusplus(np.ones((4, 2)), 2, devices="cpu")
    with pytest.raises(TypeError, match="positional"):
        cudakmeans.kmeans_plusplus(np.ones((4, 2)), 2, None)


def test_reset_lets_auto_try_cuda_again(path):
    p, call = path
    p.error = NvvmError("Failed to compile")
    with pytest.warns(CudaFallbackWarning):
        call(np.ones(3))
    assert _fallback.disabled() is not None
    _fallback.reset()
    p.error = None
    assert call(np.ones(3))[0] == "cuda"


def test_no_state_leaks_between_tests():
    # the autouse fixture of tests/conftest.py resets what the tests above switched off
    assert _fallback.disabled() is None


def test_the_reason_attribute_of_a_cpu_fit(monkeypatch):
    monkeypatch.delenv("CUDAKMEANS_DEVICE", raising=False)
    X = np.random.RandomState(0).rand(20, 2)
    assert KMeans(2, device="cpu").fit(X).device_reason_ == "device='cpu' was requested"
    monkeypatch.setattr(_device, "cuda_status", lambda: (False, "no usable NVIDIA driver"))
    model = KMeans(2, device="auto").fit(X)
    assert model.device_ == "cpu"
    assert model.device_reason_ == "CUDA cannot run here: no usable NVIDIA driver"
    monkeypatch.setenv("CUDAKMEANS_DEVICE", "cpu")
    assert KMeans(2).fit(X).device_reason_ == "CUDAKMEANS_DEVICE=cpu"


def test_out_of_memory_warning_says_how_much_of_the_gpu_others_hold(path, monkeypatch):
    import numba.cuda

    class Context:
        def get_memory_info(self):
            return 2 * 2**30, 12 * 2**30  # (free, total)

    monkeypatch.setattr(numba.cuda, "current_context", lambda: Context())
    p, call = path
    p.error = api_error(2, "CUDA_ERROR_OUT_OF_MEMORY")
    with pytest.warns(CudaFallbackWarning, match=r"10\.0 of 12\.0 GiB are held by other"):
        call(np.ones(3))


def test_every_public_function_with_a_device_is_guarded_or_calls_only_guarded_ones():
    """A public function that runs kernels on ``device`` reruns on the CPU when CUDA
    fails (``guarded_function``); the exceptions run none of their own: ``which_device``
    only resolves, ``create_templates`` fits a (guarded) KMeans, ``warm_up`` calls
    guarded functions. A decorator moved onto the wrong function shows here."""
    import inspect

    import cudakmeans.templates

    unguarded = set()
    for module in (cudakmeans, cudakmeans.templates):
        for name in module.__all__:
            func = getattr(module, name)
            if inspect.isfunction(func) and "device" in inspect.signature(func).parameters \
                    and not hasattr(func, "__wrapped__"):
                unguarded.add(name)
    assert unguarded == {"which_device", "create_templates", "warm_up"}

"""Sessions for cudakmeans.

``nox`` with no arguments runs the GPU-less pre-merge gate: lint, tests, cudasim, ptx.
"""

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "cudasim", "ptx"]
nox.options.reuse_existing_virtualenvs = True

# The extra that brings NVVM/NVRTC as wheels; cu12 works with older drivers.
GPU_EXTRA = os.environ.get("CUDAKMEANS_CUDA_EXTRA", "cu12")


# The modules whose docstrings hold the public API's examples (run as doctests).
PUBLIC_MODULES = [
    "cudakmeans/_arrays.py",
    "cudakmeans/_bisect.py",
    "cudakmeans/dask.py",
    "cudakmeans/_device.py",
    "cudakmeans/_fallback.py",
    "cudakmeans/_kmeans.py",
    "cudakmeans/_minibatch.py",
    "cudakmeans/_silhouette.py",
    "cudakmeans/_threads.py",
    "cudakmeans/_validation.py",
    "cudakmeans/templates.py",
]


@nox.session
def lint(session):
    """ruff over the whole tree, and numpydoc validation of every public docstring."""
    session.install("ruff>=0.6", "numpydoc>=1.6", "-e", ".[dask]")  # dask: cudakmeans.dask
    session.run("ruff", "check", ".")
    session.run("python", "scripts/check_docstrings.py")


# Array libraries for the arrays-in-and-out tests (tests/test_arrays.py and scikit-learn's
# array-API estimator checks); never dependencies of the library. torch is pinned and
# installed with pip, not uv: pip's configuration here finds the ~200 MB CPU wheel, where
# uv would resolve the multi-GB CUDA build.
CPU_TORCH = "torch==2.13.0"
ARRAY_API_STRICT = "array-api-strict>=2.3"


def install_cpu_torch(session):
    session.install("pip")
    session.run("python", "-m", "pip", "install", "-q", CPU_TORCH, ARRAY_API_STRICT)


@nox.session
def tests(session):
    """Everything that needs neither a GPU nor the CUDA simulator (CPU path, oracle, CLI),
    the array-API estimator checks (SCIPY_ARRAY_API=1 must be set before scipy loads: a
    run of their own), and the examples of the public docstrings."""
    session.install("-e", ".[test]", "pytest-xdist>=3.5")
    install_cpu_torch(session)
    # One pytest process per core, whole files each (a file's tests keep their order): most
    # of this session is numba compiling on one core at a time.
    session.run(
        "pytest", "-m", "not cudasim and not gpu and not ptx", "-p", "no:cacheprovider",
        "-n", str(os.cpu_count() or 1), "--dist", "loadfile", *session.posargs,
    )
    session.run("pytest", "tests/test_estimator_checks.py", "-k", "array_api",
                "-p", "no:cacheprovider", env={"SCIPY_ARRAY_API": "1"})
    session.run("pytest", "--doctest-modules", "-p", "no:cacheprovider", *PUBLIC_MODULES,
                env={"CUDAKMEANS_DEVICE": "cpu"})


@nox.session
def cudasim(session):
    """The CUDA kernels under NUMBA_ENABLE_CUDASIM=1, on small inputs.

    The simulator runs kernels as Python threads under one GIL: a single pytest process
    keeps one core busy, so the files are spread over one process per core (pytest-xdist,
    whole files per process, so a file's tests keep their order)."""
    session.install("-e", ".[test]", "pytest-xdist>=3.5")
    session.run(
        "pytest", "-m", "cudasim", "-p", "no:cacheprovider", "-n", str(os.cpu_count() or 1),
        "--dist", "loadfile", *session.posargs,
        env={"NUMBA_ENABLE_CUDASIM": "1"},
    )


# ptxas and nvdisasm from the package index, never a system toolkit (they must read the
# PTX of the NVVM that the cu13 extra brings).
SASS_TOOLS = ("nvidia-cuda-nvcc>=13", "nvidia-cuda-nvdisasm>=13")


@nox.session
def ptx(session):
    """Every registered CUDA kernel, each dtype, for sm_75/86/89/90, without a GPU: built
    through numba-cuda's dispatcher as a first launch would (compile, link, cache save and
    load), then its SASS checked (registers, spills, occupancy, hot loops, no float atomics).
    """
    session.install("-e", ".[test,cu13]", *SASS_TOOLS)
    session.run("pytest", "-m", "ptx", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def sass(session):
    """Write bench/results/sass-<date>.md: the offline SASS report of every kernel."""
    session.install("-e", ".[test,cu13]", *SASS_TOOLS)
    session.run("python", "scripts/sass_report.py", *session.posargs)


# CUDA builds of the array libraries for tests/_cuda/test_gpu_arrays.py: CuPy for the CUDA
# major version of the extra, PyTorch's default Linux wheel (CUDA 12 runtime, which a CUDA
# 13 driver also runs).
GPU_ARRAY_LIBRARIES = {"cu12": ("cupy-cuda12x>=13", "torch"),
                       "cu13": ("cupy-cuda13x>=13.6", "torch")}


@nox.session
def gpu(session):
    """Real hardware: kernel tests, full-size parity, GPU arrays in and out (CuPy, torch)
    and the hang-timeout gate."""
    session.install("-e", f".[test,{GPU_EXTRA}]", *GPU_ARRAY_LIBRARIES[GPU_EXTRA])
    session.run(
        "python", "-c",
        "import sys; from cudakmeans._device import cuda_status; ok, why = cuda_status(); "
        "print('cuda:', why); sys.exit(0 if ok else 'nox -s gpu needs a CUDA GPU: ' + why)",
    )
    session.run(
        "pytest", "-m", "gpu or cudasim", "-p", "no:cacheprovider", *session.posargs,
        env={"CUDAKMEANS_REQUIRE_GPU": "1"},
    )
    # The GPU's own figures, with its name, next to the CPU's.
    session.run("python", "bench/bench_gpu.py", "--out", "bench/results")


# The libraries bench/bench_peers.py times beside scikit-learn.
BENCH_PEERS = ("scikit-learn-intelex", "faiss-cpu")


@nox.session
def bench(session):
    """Benchmarks against scikit-learn, ratios measured in the same run; bench_peers adds
    scikit-learn-intelex and faiss-cpu where they install."""
    session.install("-e", ".[test]")
    # Optional peers: a platform without their wheels still runs every benchmark, and
    # bench_peers reports each missing one as not installed.
    for peer in BENCH_PEERS:
        session.install(peer, success_codes=[0, 1, 2])
    # A second environment with only what `pip install cudakmeans` brings, for the
    # fresh-process timing a user without scikit-learn (and scipy) sees.
    plain = os.path.abspath(os.path.join(session.create_tmp(), "plain"))
    session.run("python", "-m", "venv", "--clear", plain)
    plain_python = os.path.join(plain, "bin", "python")
    session.run(plain_python, "-m", "pip", "install", "-q", ".", external=True)
    session.run("python", "-m", "bench", *session.posargs,
                env={"CUDAKMEANS_PLAIN_PYTHON": plain_python})


@nox.session
def demo(session):
    """The template workflow on the embedded default data."""
    session.install("-e", ".")
    session.run("cudakmeans", "demo", *session.posargs)


@nox.session
def golden(session):
    """Regenerate tests/data/golden on purpose, printing what changed."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "tests.golden", "--regenerate", *session.posargs)


@nox.session
def coverage(session):
    """Branch coverage of the jitted kernels' Python source, NUMBA_DISABLE_JIT=1 (not in the
    gate); ``-- --cuda`` adds cudakmeans/_cuda/ under the simulator."""
    session.install("-e", ".[test]", "coverage>=7")
    session.run("python", "scripts/jit_coverage.py", *session.posargs)


@nox.session
def mutation(session):
    """Mutation testing over kernels and drivers (slow; not part of the gate)."""
    session.install("-e", ".[test]", "mutmut>=3")
    session.run("python", "scripts/mutation.py", *session.posargs)

"""Every backend provides what ``cudakmeans._backend`` declares, and the drivers use
nothing else.

A backend module that lacks a declared name or method, renames one, or renames, reorders
or drops a parameter fails here; a backend may add parameters only with defaults. The
attributes a protocol declares are checked on real instances (the CUDA ones under the
simulator).
"""

import ast
import inspect
import pathlib
import typing

import numpy as np
import pytest

import cudakmeans
from cudakmeans import _backend
from cudakmeans._device import get_backend
from cudakmeans._sparse import from_scipy

BACKENDS = ("cpu", "cuda")
# Beyond _backend.MODULES: how each dense k-means workspace takes several runs at once.
RUNS = {"cpu": _backend.ForkingRuns, "cuda": _backend.BatchedRuns}
PROTOCOLS = (_backend.KMeansWorkspace, _backend.ForkingRuns, _backend.BatchedRuns,
             _backend.WholeRuns,
             _backend.MiniBatchWorkspace, _backend.SilhouetteBackend, _backend.ArrayBackend)


def declared_methods(protocol):
    """``{name: function}`` of the methods ``protocol`` declares, its bases' included."""
    methods = {}
    for cls in reversed(protocol.__mro__):
        if cls in (object, typing.Protocol, typing.Generic):
            continue
        for name, value in vars(cls).items():
            value = value.__func__ if isinstance(value, staticmethod) else value
            if not name.startswith("_") and inspect.isfunction(value):
                methods[name] = value
    return methods


def declared_attributes(protocol):
    names = set()
    for cls in protocol.__mro__:
        names |= {n for n in vars(cls).get("__annotations__", {}) if not n.startswith("_")}
    return names


def signature_problems(name, declared, actual):
    """Why ``actual`` cannot stand for ``declared`` (empty if it can)."""
    want = list(inspect.signature(declared).parameters.values())
    got = list(inspect.signature(actual).parameters.values())
    problems = []
    for i, p in enumerate(want):
        if i >= len(got) or got[i].name != p.name:
            problems.append(f"{name}: parameter {i} must be {p.name!r}, the backend has "
                            f"{[q.name for q in got]}")
            break
        if p.default is not p.empty and got[i].default is got[i].empty:
            problems.append(f"{name}: parameter {p.name!r} must have a default")
    for p in got[len(want):]:
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(f"{name}: extra parameter {p.name!r} has no default")
    return problems


def problems(obj, protocol):
    """Why the class or function ``obj`` does not provide ``protocol``'s methods."""
    found = []
    for name, declared in declared_methods(protocol).items():
        if inspect.isfunction(obj):  # a module function, not a method
            if name != obj.__name__:
                continue
            actual = obj
        else:
            actual = getattr(obj, name, None)
        if not callable(actual):
            found.append(f"{name}: missing")
            continue
        found += signature_problems(name, declared, actual)
    return found


def expected():
    """``(backend, module, name, protocol)`` for everything a backend must provide."""
    for backend in BACKENDS:
        for module, names in _backend.MODULES.items():
            for name, protocol in names.items():
                yield backend, module, name, protocol
        yield backend, "kmeans", "Workspace", RUNS[backend]


@pytest.mark.parametrize("backend, module, name, protocol", list(expected()),
                         ids=lambda v: getattr(v, "__name__", v))
def test_backend_provides_the_declared_protocol(backend, module, name, protocol):
    obj = getattr(get_backend(backend, module), name, None)
    assert obj is not None, f"cudakmeans._{backend}.{module} has no {name}"
    assert problems(obj, protocol) == []


def test_the_check_catches_a_missing_renamed_or_changed_method():
    """The conformance check can fail: a workspace with a method renamed, a parameter
    renamed and a parameter added without a default is refused, naming each."""
    good = get_backend("cpu", "kmeans").Workspace

    class Broken(good):
        lloyd_iter = None  # gone

        def lloyd_step(self, centers_old, centers_new):  # renamed
            pass

        def assign(self, centres):  # parameter renamed
            pass

        def rows(self, indices, out):  # parameter added without a default
            pass

    found = problems(Broken, _backend.KMeansWorkspace)
    assert problems(good, _backend.KMeansWorkspace) == []
    assert [p.split(":")[0] for p in found] == ["rows", "lloyd_iter", "assign"]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_each_declared_method_has_a_one_line_docstring(protocol):
    for name, method in declared_methods(protocol).items():
        doc = (method.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{protocol.__name__}.{name}"


def _instances(backend):
    """One instance of every workspace class of ``backend``, over a tiny problem."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    w = np.ones(40)
    sparse = from_scipy(scipy.sparse.random(40, 3, density=0.5, format="csr", random_state=0))
    kmeans, minibatch, csr = (get_backend(backend, m) for m in ("kmeans", "minibatch",
                                                                 "sparse"))
    return [
        (kmeans.Workspace(X, w, 3), _backend.KMeansWorkspace),
        (csr.Workspace(sparse, w, 3), _backend.KMeansWorkspace),
        (minibatch.Workspace(3, 3, np.float64, 16), _backend.MiniBatchWorkspace),
        (csr.MiniBatchWorkspace(3, 3, np.float64, 16), _backend.MiniBatchWorkspace),
    ]


def _check_attributes(backend):
    for ws, protocol in _instances(backend):
        missing = sorted(n for n in declared_attributes(protocol) if not hasattr(ws, n))
        assert missing == [], f"{type(ws).__module__}.{type(ws).__name__} lacks {missing}"
        assert ws.device == backend


def test_cpu_workspaces_have_the_declared_attributes():
    _check_attributes("cpu")


@pytest.mark.cudasim
def test_cuda_workspaces_have_the_declared_attributes():
    _check_attributes("cuda")


DRIVERS = pathlib.Path(cudakmeans.__file__).parent / "_drivers"
WORKSPACE_NAMES = {"ws", "run_ws", "ws_valid"}


def test_drivers_use_only_declared_members():
    """Every ``ws.<name>`` (and ``backend.<name>``) in the drivers is declared."""
    declared = {"silhouette_samples"}
    for protocol in PROTOCOLS:
        declared |= set(declared_methods(protocol)) | declared_attributes(protocol)
    used = {}
    for path in sorted(DRIVERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in WORKSPACE_NAMES | {"backend"}):
                used.setdefault(node.attr, set()).add(path.name)
    assert len(used) > 10  # the walk found the drivers' calls
    assert {name: sorted(files) for name, files in used.items() if name not in declared} == {}


def test_the_cpu_workspace_runs_whole_lloyd_runs_as_declared():
    """``drivers.lloyd`` calls ``lloyd_run`` where a workspace has one: it must be the
    declared one."""
    from cudakmeans._cpu.kmeans import Workspace

    assert problems(Workspace, _backend.WholeRuns) == []

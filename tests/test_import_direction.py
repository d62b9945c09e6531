"""Imports run one way: public layer -> drivers -> backends -> kernels' math, never upward.

Every module of the package belongs to one room (``ROOMS``; a new module must be placed
there, or this test fails). A module may import its own room and the rooms below it in
``ORDER``, and the shared support modules, with these limits:

* the command-line tool uses the library only through its public API: the package itself
  (``from cudakmeans import KMeans``), ``cudakmeans.templates`` and ``cudakmeans.data``;
* the public layer and the drivers never import a backend: a backend is looked up by
  device, ``_device.get_backend``, and handed down;
* one backend never imports another;
* the support modules import only each other, the math only itself.

Imports inside functions count as much as those at the top of a module.
"""

import ast
import pathlib

import pytest

import cudakmeans

PACKAGE = pathlib.Path(cudakmeans.__file__).parent

# room -> module names (a trailing "." is every module of that package)
ROOMS = {
    "cli": ["cudakmeans.cli", "cudakmeans.__main__", "cudakmeans._io"],
    "public": ["cudakmeans", "cudakmeans._kmeans", "cudakmeans._minibatch",
               "cudakmeans._silhouette", "cudakmeans._bisect", "cudakmeans.templates",
               "cudakmeans._base", "cudakmeans._params", "cudakmeans.data", "cudakmeans.dask"],
    "drivers": ["cudakmeans._drivers."],
    "backends": ["cudakmeans._cpu.", "cudakmeans._cuda."],
    "math": ["cudakmeans._math", "cudakmeans._silhouette_math", "cudakmeans._sparse_math",
             "cudakmeans._minibatch_math"],
    "support": ["cudakmeans._validation", "cudakmeans._sparse", "cudakmeans._device",
                "cudakmeans._fallback", "cudakmeans._threads", "cudakmeans._backend",
                "cudakmeans._arrays"],
}
ORDER = ["cli", "public", "drivers", "backends", "math"]
PUBLIC_API = {"cudakmeans", "cudakmeans.templates", "cudakmeans.data"}


def module_names():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def room_of(module):
    for room, members in ROOMS.items():
        for member in members:
            if module == member or (member.endswith(".") and (
                    module.startswith(member) or module == member[:-1])):
                return room
    return None


def is_module(name):
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(module, path):
    """The package modules that ``module`` imports, anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            for alias in node.names:  # `from . import x`: a submodule, or a name of source
                sub = f"{source}.{alias.name}"
                found.add(sub if is_module(sub) else source)
    return {name for name in found if name == "cudakmeans" or name.startswith("cudakmeans.")}


def allowed(source, target):
    """None if ``source`` may import ``target``, else why not."""
    a, b = room_of(source), room_of(target)
    if a == "cli":
        return None if b == "cli" or target in PUBLIC_API else "the CLI goes through the public API"
    if b == "support":
        return None
    if a == "support":
        return "support modules import only each other"
    if a == "math":
        return None if b == "math" else "the math imports only the math"
    if b == "backends":
        if a != "backends":
            return "backends are looked up with _device.get_backend, never imported"
        if source.split(".")[1] != target.split(".")[1]:
            return "one backend never imports another"
        return None
    if ORDER.index(b) < ORDER.index(a):
        return f"{a} must not import {b} (upward)"
    return None


MODULES = dict(module_names())


def test_every_module_has_a_room():
    assert {m: None for m in MODULES if room_of(m) is None} == {}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    wrong = {}
    for target in sorted(imports(module, MODULES[module])):
        why = allowed(module, target)
        if why is not None:
            wrong[target] = why
    assert wrong == {}


def test_the_rules_catch_what_they_forbid():
    """The check can fail: each forbidden direction is refused."""
    forbidden = [
        ("cudakmeans._drivers.runs", "cudakmeans._kmeans"),  # upward
        ("cudakmeans._kmeans", "cudakmeans._cpu.kmeans"),  # around get_backend
        ("cudakmeans._cuda.sparse", "cudakmeans._cpu.sparse"),  # across backends
        ("cudakmeans.cli", "cudakmeans._device"),  # the CLI past the public API
        ("cudakmeans._cpu.kmeans", "cudakmeans._drivers.lloyd"),  # a backend upward
        ("cudakmeans._math", "cudakmeans._cpu.math"),
        ("cudakmeans._validation", "cudakmeans._kmeans"),
    ]
    assert [pair for pair in forbidden if allowed(*pair) is None] == []
    assert allowed("cudakmeans.cli", "cudakmeans.templates") is None
    assert allowed("cudakmeans._kmeans", "cudakmeans._drivers.runs") is None


def test_the_public_names_load_from_the_public_layer():
    for name, module in cudakmeans._PUBLIC.items():
        assert room_of(f"cudakmeans{module}") in ("public", "support"), name


def test_relative_imports_are_resolved():
    """A sanity check of :func:`imports` on modules whose imports are known."""
    assert "cudakmeans._drivers.lloyd" in imports("cudakmeans._kmeans",
                                                  MODULES["cudakmeans._kmeans"])
    assert "cudakmeans" in imports("cudakmeans.cli", MODULES["cudakmeans.cli"])
    assert "cudakmeans._cuda.launch" in imports("cudakmeans._cuda.sparse",
                                                MODULES["cudakmeans._cuda.sparse"])

"""Every device allocation of the CUDA backend goes through ``cudakmeans/_cuda/memory.py``,
which counts it, caps it in tests and turns an out-of-memory into a DeviceMemoryError that
leaves nothing allocated (tests/_cuda/test_memory.py). Read from the source: no device."""

import ast
import pathlib

import cudakmeans

CUDA = pathlib.Path(cudakmeans.__file__).parent / "_cuda"
ALLOCATORS = {"device_array", "device_array_like", "to_device", "pinned_array",
              "pinned_array_like", "mapped_array", "mapped_array_like", "managed_array"}


def allocations(path):
    """``[(line, name)]`` of numba-cuda allocator calls and imports in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr in ALLOCATORS
                and isinstance(node.value, ast.Name) and node.value.id == "cuda"):
            found.append((node.lineno, node.attr))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numba"):
            found += [(node.lineno, a.name) for a in node.names if a.name in ALLOCATORS]
    return found


def test_only_memory_py_allocates_device_memory():
    assert allocations(CUDA / "memory.py")  # the walk sees the allocator calls there
    elsewhere = {path.name: allocations(path) for path in sorted(CUDA.glob("*.py"))
                 if path.name != "memory.py"}
    assert {name: found for name, found in elsewhere.items() if found} == {}

"""bench/perf_kernels.py's perf map: every function of a kernel compiled in the process,
at the address the JIT put it, and nothing for a kernel loaded from the cache.

Each check runs in a fresh process with its own empty numba cache, so what it compiles is
its own; nothing here starts ``perf``.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
import numpy as np
from bench.perf_kernels import write_perf_map
from tests._cpu import cached_kernels as m
m.later(np.float64(3.0))
m.linked(np.float64(3.0))
path, count = write_perf_map([m], path=sys.argv[1])
entries = {}
for d in (m.half, m.later):
    for cres in d.overloads.values():
        entries[d.__name__] = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
print(json.dumps({"count": count, "entries": entries}))
"""


def _run(cache, map_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(map_path)], env=env,
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_the_map_names_each_compiled_kernel_at_its_address(tmp_path):
    result = _run(tmp_path / "cache", tmp_path / "first.map")
    lines = (tmp_path / "first.map").read_text().splitlines()
    assert result["count"] == len(lines) > 0
    ranges = {}
    for line in lines:
        start, size, name = line.split(" ", 2)
        kernel = name.split(":", 1)[0]
        ranges.setdefault(kernel, []).append((int(start, 16), int(size, 16)))
    assert set(ranges) == {"half", "later", "linked"}
    # the overload linked's library links (compiled apart, at an address of its own) is
    # named under linked, not left a bare address
    assert any(name.startswith("linked:") and "_twice_body" in name
               for _, _, name in (line.split(" ", 2) for line in lines))
    for kernel, address in result["entries"].items():  # the entry lies in a named range
        assert any(start <= address < start + size for start, size in ranges[kernel]), kernel
    # the same kernels again, now loaded from the cache: numba keeps no object code
    again = _run(tmp_path / "cache", tmp_path / "second.map")
    assert again["count"] == 0
    assert (tmp_path / "second.map").read_text() == ""

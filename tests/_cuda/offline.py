"""What a GPU launch does between compiling a kernel and running it, done without a GPU.

On the first launch of a new signature, numba-cuda's dispatcher (``Dispatcher.compile``)
builds the kernel (typing, lowering, NVVM to PTX), binds it (links the PTX and any linked
files into a cubin with nvJitLink and loads the module into the current context) and saves
it to the on-disk cache (``self._cache.save_overload``). Only two steps ask the device
anything: the compute capability, which picks the target, and the context, which loads the
module. :func:`fixed_device` answers those two with a stated compute capability, so
everything else (NVVM, the link, the cache's pickling and its index) runs for real. A kernel
that links extra files (``reshape_funcs.cu`` for an in-kernel ``reshape``) fails here
exactly as it would at its first launch on a GPU.

Run as a module, it is the worker of the offline checks (a fresh process per target, with
its own ``NUMBA_CACHE_DIR``)::

    python -m tests._cuda.offline compile --cc 8.6 --out DIR   # compile, link, save
    python -m tests._cuda.offline load --cc 8.6 --out DIR      # load back in a new process

``compile`` writes ``DIR/manifest-sm_86.json`` and each kernel's PTX and cubin; ``load``
writes ``DIR/loaded-sm_86.json`` with what came back from the cache.
"""

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]


class _Module:
    """A loaded module as the dispatcher sees it: already initialised, functions by name."""

    initialized = True

    def __init__(self, image):
        self.image = image

    def get_function(self, name):
        return types.SimpleNamespace(module=self, name=name)

    def setup(self):  # pragma: no cover - initialized is True
        pass


class _Context:
    """The one device query the code library makes (``devices.get_context()``)."""

    def __init__(self, cc):
        self.device = types.SimpleNamespace(compute_capability=cc, id=0, name="offline")
        self.images = []

    def create_module_image(self, image, setup=None, teardown=None):
        self.images.append(image)
        return _Module(image)


@contextlib.contextmanager
def fixed_device(cc):
    """Answer numba-cuda's device queries with compute capability ``cc``; yield the context.

    The dispatcher asks ``get_current_device().compute_capability`` for the target, and the
    code library asks ``devices.get_context()`` for the target (again), the cache key
    (``magic_tuple``) and the module load. Nothing else in the path needs a device.
    """
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda.cudadrv import devices

    context = _Context(tuple(cc))
    with mock.patch.object(dispatcher, "get_current_device", lambda: context.device), \
            mock.patch.object(devices, "get_context", lambda *args, **kwargs: context):
        yield context


def fresh_dispatcher(kernel):
    """A new dispatcher for ``kernel``'s Python function, with its options and its cache."""
    from numba.cuda.dispatcher import CUDACache, CUDADispatcher

    fresh = CUDADispatcher(kernel.py_func, targetoptions=dict(kernel.targetoptions))
    if isinstance(kernel._cache, CUDACache):
        fresh.enable_caching()
    return fresh


def cached(kernel):
    """True if ``kernel`` was declared with ``cache=True``."""
    from numba.cuda.dispatcher import CUDACache

    return isinstance(kernel._cache, CUDACache)


def _image_bytes(image):
    code = getattr(image, "code", image)
    return bytes(code)


def compile_as_launch(kernel, signature, cc):
    """Compile ``kernel`` for ``signature`` as its first launch on a ``cc`` device would.

    Returns a dict: the entry name, the files linked into it, the PTX, the cubin bytes, the
    seconds spent, and ``error`` (the exception's text) if any step failed.
    """
    result = {"error": None, "linked": [], "ptx": "", "cubin": b"", "seconds": 0.0}
    start = time.perf_counter()
    dispatcher = fresh_dispatcher(kernel)
    with fixed_device(cc) as context:
        try:
            compiled = dispatcher.compile(signature)
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            if context.images:  # linked and loaded, then failed (e.g. the cache save)
                result["cubin"] = _image_bytes(context.images[-1])
            return result
        finally:
            result["seconds"] = time.perf_counter() - start
        library = compiled._codelibrary
        result["entry"] = compiled.entry_name
        result["linked"] = sorted(str(p) for p in library._linking_files)
        result["ptx"] = library.get_asm_str(cc=_library_cc(cc))
        result["cubin"] = _image_bytes(context.images[-1])
    return result


def _library_cc(cc):
    # The code library's own spelling of a target (the dispatcher path adds the 'a' suffix
    # of architecture-specific features from sm_90 on).
    return (cc[0], cc[1], "a" if tuple(cc) >= (9, 0) else "")


def load_from_cache(kernel, signature, cc):
    """The kernel that a new process's first launch would load from the on-disk cache.

    Returns ``(sha256 of its cubin, None)``, or ``(None, why)`` when nothing is found.
    """
    dispatcher = fresh_dispatcher(kernel)
    with fixed_device(cc):
        loaded = dispatcher._cache.load_overload(signature, dispatcher.targetctx)
        if loaded is None:
            return None, "not in the cache"
        cubin = loaded._codelibrary.get_cubin(cc=_library_cc(cc))
    return hashlib.sha256(_image_bytes(cubin)).hexdigest(), None


def _cases():
    from cudakmeans._cuda import registry

    for module, name, kernel, signatures in registry.registered():
        short = module.__name__.rsplit(".", 1)[-1]
        for index, signature in enumerate(signatures):
            yield f"{short}.{name}-{index}", name, kernel, signature


def _tag(cc):
    return f"sm_{cc[0]}{cc[1]}"


def _compile_all(cc, out):
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for key, name, kernel, signature in _cases():
        result = compile_as_launch(kernel, signature, cc)
        entry = {
            "kernel": name,
            "signature": str(signature),
            "cache": cached(kernel),
            "linked": result["linked"],
            "error": result["error"],
            "seconds": round(result["seconds"], 3),
        }
        if result["error"] is None:
            ptx = out / f"{key}-{_tag(cc)}.ptx"
            ptx.write_text(result["ptx"])
            entry["ptx"] = ptx.name
        if result["cubin"]:
            cubin = out / f"{key}-{_tag(cc)}.cubin"
            cubin.write_bytes(result["cubin"])
            entry["cubin"] = cubin.name
            entry["sha256"] = hashlib.sha256(result["cubin"]).hexdigest()
        manifest[key] = entry
    (out / f"manifest-{_tag(cc)}.json").write_text(json.dumps(manifest, indent=1))


def _load_all(cc, out):
    loaded = {}
    for key, _, kernel, signature in _cases():
        sha, why = load_from_cache(kernel, signature, cc)
        loaded[key] = {"sha256": sha, "error": why}
    (out / f"loaded-{_tag(cc)}.json").write_text(json.dumps(loaded, indent=1))


def build(cc, root):
    """Compile every kernel for ``cc`` in one worker process, load it back in another.

    Returns ``{"dir", "manifest", "loaded"}``; raises if a worker fails outright.
    """
    root = Path(root)
    tag = _tag(cc)
    out, cache = root / tag, root / f"cache-{tag}"
    for step in ("compile", "load"):
        command = [sys.executable, "-m", "tests._cuda.offline", step, "--cc",
                   f"{cc[0]}.{cc[1]}", "--out", str(out)]
        run = subprocess.run(command, cwd=ROOT, env=worker_env(cache), capture_output=True,
                             text=True, timeout=1200, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")
    return {"dir": out,
            "manifest": json.loads((out / f"manifest-{tag}.json").read_text()),
            "loaded": json.loads((out / f"loaded-{tag}.json").read_text())}


def build_all(targets, root, jobs=2):
    """:func:`build` for every target, ``jobs`` at a time: ``{cc: build}``."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(targets, pool.map(lambda cc: build(cc, root), targets), strict=True))


def worker_env(cache_dir):
    """The environment of a worker process: its own cache, no simulator."""
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("compile", "load"))
    parser.add_argument("--cc", required=True, help="compute capability, e.g. 8.6")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    cc = tuple(int(part) for part in args.cc.split("."))
    if args.step == "compile":
        _compile_all(cc, args.out)
    else:
        _load_all(cc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

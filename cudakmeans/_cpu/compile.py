"""Compile, before a call runs them, the CPU kernels numba's disk cache lacks, and say so.

The first call of a CPU kernel in a fresh environment compiles it (seconds: numba types it
and LLVM optimises it), and a first run that prints nothing for that long looks like the
hang our users came here to escape. A workspace passes the entry points a call is about
to run, each with the arguments it will be called with, to :func:`ensure_compiled`.
Entry points already compiled in this process or found in numba's on-disk cache are left
to the call (which loads them: no compile); the others are compiled here, one line on
stderr saying so before it starts, with a count as each finishes. Nothing else is
compiled: a call pays only for the kernels it runs.

The compile runs on a thread of its own while the caller waits for it: a Ctrl-C then
interrupts the wait, not numba halfway through a compile (which leaves that function
broken for the rest of the process); the compile finishes in the background and the
next call uses it.

The cache check is an index lookup, the one ``Dispatcher.compile`` makes before it loads
a cached overload (``dispatcher._cache._index_key`` in ``_cache._cache_file``'s index):
no code is loaded twice. Where numba's internals differ from that, the entry point is
compiled here, with the notice, as if nothing were cached.

numba compiles one function at a time per process (a global lock), so a caller that knows
what it will run next (k-means++ seeding, then the Lloyd run) passes that as ``soon``: while
this process compiles what it needs now, a second Python process compiles those into
numba's disk cache, on another core; the later call waits for that process and loads its
result from the cache. If the second process cannot start or fails, the later call compiles
as if nothing had been started.

The two processes' shares are rarely equal (the demo's seeding compiles in ~3 s, its Lloyd
kernel in ~10 s), so ``soon`` may also name kernels that its entry points call without
inlining them (compiled apart, linked in, cached apart): this process compiles those first,
before its own, and the second process, which gets to them seconds later while typing the
entry point that calls them, loads them from the disk cache instead of compiling them too.
If it gets there first, both compile them: time lost here, never a wrong result.

Both processes compile inside :func:`_compiling`: Python's cyclic garbage collector off,
and numba's inliner copying each inlined callee's IR in one go rather than block by block
(a quadratic copy); the machine code is the same. A first demo (fresh venv, empty cache)
took 8.6-9.2 s against 9.4-10.6 s before (4 runs each, alternating, this 2-core AVX2
VM).
"""

import atexit
import contextlib
import functools
import gc
import importlib
import os
import pickle
import subprocess
import sys
import threading
import time

__all__ = ["ensure_compiled", "expect", "missing"]

# Concurrent first calls (the n_init runs start on threads) print one notice; numba
# compiles under its own global lock anyway.
_lock = threading.RLock()
# Held while a notice line is open (from its first word to its newline): a thread that
# waits for a second process says so between lines, never inside another thread's line.
_line_lock = threading.Lock()
_ready = set()  # (id(dispatcher), key): known to be compiled or cached in this process
# (id(dispatcher), argtypes) -> (process compiling it into the disk cache, what, start time)
_pending = {}
_announced = set()  # the processes whose wait a thread has said it waits for
# (calls, what, leaves) from expect(): joined to the next second process started
_expected = []


def _argtypes(dispatcher, args):
    """The argument types a call of ``dispatcher`` with ``args`` dispatches on."""
    return tuple(dispatcher.typeof_pyval(arg) for arg in args)


def _in_disk_cache(dispatcher, argtypes):
    """True when numba's on-disk cache holds ``dispatcher`` compiled for ``argtypes``."""
    try:
        cache = dispatcher._cache
        if not getattr(cache, "_enabled", False):
            return False
        context = dispatcher.targetctx
        context.refresh()  # what load_overload does first; cheap after the first time
        key = cache._index_key(argtypes, context.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # another numba's internals (or no cache at all): assume a compile
        return False


def missing(calls):
    """The ``(dispatcher, argtypes)`` pairs of ``calls`` that a call would compile.

    ``calls`` holds ``(dispatcher, args, key)``: ``key`` names the argument types (for
    example the dtype) so that a repeated check costs a set lookup, not a typing pass.
    """
    todo = []
    for dispatcher, args, key in calls:
        ready_key = (id(dispatcher), key)
        if ready_key in _ready or not hasattr(dispatcher, "typeof_pyval"):
            continue  # known, or not a numba dispatcher (nothing to compile)
        argtypes = _argtypes(dispatcher, args)
        if argtypes in dispatcher.overloads or _in_disk_cache(dispatcher, argtypes):
            _ready.add(ready_key)
        elif (dispatcher, argtypes) not in todo:
            todo.append((dispatcher, argtypes))
    return todo


def ensure_compiled(calls, what, *, stream=None, soon=None):
    """Compile what :func:`missing` finds, with one progress line on ``stream``.

    Parameters
    ----------
    calls : list of (dispatcher, args, key)
        The ``numba.njit`` entry points a call is about to run, each with arguments of
        the types it will be called with, and a hashable ``key`` naming those types.
    what : str
        What the kernels compute, for the line (for example ``"k-means (float64)"``).
    stream : file-like, default ``sys.stderr``
    soon : (list of (dispatcher, args, key), str[, list of (dispatcher, args, key)]), optional
        What the caller will run next and its name: compiled meanwhile in a second
        process, if anything is compiled here at all; and optionally kernels those entry
        points call (not inlined) that this process compiles first, once it has started
        that second process, to share the work between the two. Or a function of no
        arguments returning that, called only when something is compiled here: building
        the next call's arguments cost a warm k-means++ seeding of 2,634 x 7 ~5% of its
        time.

    Returns
    -------
    int
        How many entry points were compiled (0: nothing printed).
    """
    if not _pending and all((id(dispatcher), key) in _ready for dispatcher, _, key in calls):
        # the steady state, what the loop below finds too, without its lock (the set only
        # grows): a warm 2,634 x 7 fit checks six times, 1.7 us each (with the
        # workspace's key) against 3.7 through the lock
        return 0
    stream = sys.stderr if stream is None else stream
    while True:
        _await_pending(calls, stream)
        with _lock:
            if _pending_entries(calls):  # started by another thread while this one queued
                continue
            todo = missing(calls)
            if not todo:
                return 0
            if callable(soon):
                soon = soon()
            leaves = [*(soon[2] if soon is not None and len(soon) > 2 else ()),
                      *(job for _, _, expected_leaves in _expected
                        for job in expected_leaves)]
            elsewhere = _start_elsewhere(soon, todo)
            if elsewhere and leaves:  # the leaves first: it types their callers first
                todo = [job for job in missing(leaves) if job not in todo] + todo
            failure = []
            worker = threading.Thread(target=_compile, args=(todo, stream, failure),
                                      name="cudakmeans-compile", daemon=True)
            with _line_lock:
                stream.write(f"cudakmeans: compiling CPU kernels for this machine, first "
                             f"run only: {what}{elsewhere} ...")
                stream.flush()
                worker.start()
                worker.join()
            if failure:
                raise failure[0]
            for dispatcher, _, key in calls:
                _ready.add((id(dispatcher), key))
            return len(todo)


def expect(calls, what, leaves=()):
    """Say that this process will call ``calls`` later, after a call that may start a
    second process (a first seeding): that process then compiles them too, after what it
    was started for, and the later call waits for it and loads them from the disk cache.
    ``leaves`` (as in ``soon``, :func:`ensure_compiled`): kernels ``calls`` call without
    inlining them, compiled in this process first if that second process starts.

    For a caller that knows more of its future than the seeding does: the command line's
    first run seeds, then computes a silhouette, then fits, and the silhouette's compile
    queued here behind the seeding's while the second process had finished its own
    share. Starts nothing; without a second process (or where these are compiled or
    cached already) the later call compiles as ever. ``calls`` and ``what`` as in
    :func:`ensure_compiled`.
    """
    with _lock:
        _expected.append((list(calls), what, list(leaves)))


def _compile(todo, stream, failure):
    """Compile ``todo``, writing the count as each finishes and ending the line."""
    start = time.perf_counter()
    done = 0
    try:
        with _compiling():
            for dispatcher, argtypes in todo:
                dispatcher.compile(argtypes)
                done += 1
                stream.write(f" {done}/{len(todo)}")
                stream.flush()
    except BaseException as exc:  # handed to the waiting caller, raised there
        failure.append(exc)
    finally:
        # The line is ended even when a compile fails: the error is printed after it.
        outcome = "done" if done == len(todo) else "failed"
        stream.write(f" {outcome} ({time.perf_counter() - start:.1f} s)\n")
        stream.flush()


def _key(dispatcher, argtypes):
    return id(dispatcher), argtypes


def _await_pending(calls, stream):
    """Wait for the second processes compiling any of ``calls`` (their result is then in
    the disk cache, where :func:`missing` finds it), saying so if one is still at work.

    The wait holds no lock: meanwhile another thread of this process may compile what it
    needs (a silhouette or a second estimator's kernels on a thread of the caller's)."""
    with _lock:
        processes = [(entry, entry[0] not in _announced)  # one thread says so
                     for entry in _pending_entries(calls)]
        _announced.update(entry[0] for entry, _ in processes)
    for (process, what, start), announce in processes:
        if process.poll() is not None or not announce:
            process.wait()
        else:
            with _line_lock:
                stream.write(f"cudakmeans: waiting for the second process compiling {what}"
                             f" ...\n")
                stream.flush()
            try:
                process.wait()
            except BaseException:  # Ctrl-C: the next waiter says it waits, not this one
                _announced.discard(process)
                raise
            with _line_lock:
                stream.write(f"cudakmeans: {what} compiled by the second process "
                             f"({time.perf_counter() - start:.1f} s)\n")
                stream.flush()
        with _lock:  # every kernel that process compiled is in the disk cache now
            for key, other in list(_pending.items()):
                if other[0] is process:
                    del _pending[key]


def _pending_entries(calls):
    """The distinct ``_pending`` entries (process, what, start) of ``calls``' kernels; the
    caller holds ``_lock`` (the lookup types the arguments, which must not run beside a
    compile)."""
    # A finished process's kernels are in the disk cache: forget it, or every later call
    # of a kernel it did not compile (a seeding whose Lloyd run never came) would type
    # its arguments here once more (~0.3 ms for k-means++'s 15 arrays).
    for key, entry in list(_pending.items()):
        if entry[0].poll() is not None:
            del _pending[key]
    entries = []
    for dispatcher, args, _ in calls:
        if not _pending or not hasattr(dispatcher, "typeof_pyval"):
            break
        entry = _pending.get(_key(dispatcher, _argtypes(dispatcher, args)))
        if entry is not None and all(entry[0] is not other[0] for other in entries):
            entries.append(entry)
    return entries


def _importable(dispatcher):
    """``(module, name)`` under which a second process finds ``dispatcher``, or None."""
    func = getattr(dispatcher, "py_func", None)
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    name = getattr(func, "__name__", None)
    if module is None or getattr(module, name or "", None) is not dispatcher:
        return None
    if not getattr(getattr(dispatcher, "_cache", None), "_enabled", False):
        return None  # no disk cache: a second process could not hand the result back
    return module.__name__, name


def _start_elsewhere(soon, todo):
    """Start a second process compiling what ``soon`` lists and :func:`expect` was told
    and is missing (besides ``todo``); returns the words the notice adds ('' when nothing
    was started)."""
    if soon is None or getattr(sys, "frozen", False):
        return ""
    wanted = [tuple(soon[:2]), *((calls, what) for calls, what, _ in _expected)]
    _expected.clear()  # started with this process, or nothing of them is missing
    jobs, keys, names = [], {}, []
    for calls, what in wanted:
        for dispatcher, argtypes in missing(calls):
            place = _importable(dispatcher)
            key = _key(dispatcher, argtypes)
            if place is None or key in _pending or key in keys \
                    or (dispatcher, argtypes) in todo:
                continue
            jobs.append((*place, argtypes))
            keys[key] = what
            if what not in names:
                names.append(what)
    if not jobs:
        return ""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cudakmeans._cpu.compile"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        process.stdin.write(pickle.dumps(jobs))
        process.stdin.close()
    except (OSError, pickle.PicklingError):
        return ""  # the later call compiles here, as without a second process
    start = time.perf_counter()
    for key, what in keys.items():
        _pending[key] = (process, what, start)
    return f", and {', '.join(names)} in a second process"


def _stop_pending():
    """At exit, stop second processes nobody waited for (a seeding with no Lloyd run after
    it): their kernels would not be used, and numba writes its cache files whole or not at
    all."""
    for process, _, _ in set(_pending.values()):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - terminate is not refused
            process.kill()
    _pending.clear()


atexit.register(_stop_pending)


@functools.cache
def _inline_ir_copying_once():
    """numba's ``InlineWorker.inline_ir`` with its callee copied in one ``deepcopy``, not
    one per block; None where numba's source is not the one expected (made once).

    Each ``deepcopy`` of a block copies the function's whole scope (every variable) with
    it, so a callee of B blocks and V variables cost B x V copies, twice per inlined call
    (numba issue 8989): the largest ``inline="always"`` helpers took 0.2-0.3 s each of a
    first compile. One ``deepcopy`` of all blocks copies the scope once, and the blocks
    share it, as they share it in the callee."""
    import inspect
    import textwrap

    from numba.core import inline_closurecall

    worker = inline_closurecall.InlineWorker
    if "inline_ir" not in vars(worker):
        return None
    try:
        lines, first_line = inspect.getsourcelines(worker.inline_ir)
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    per_block = ("        kernel_copy.blocks = {}\n"
                 "        for block_label, block in the_ir.blocks.items():\n"
                 "            new_block = copy.deepcopy(the_ir.blocks[block_label])\n"
                 "            kernel_copy.blocks[block_label] = new_block\n")
    if source.count(per_block) != 1:
        return None
    source = source.replace(per_block,
                            "        kernel_copy.blocks = copy.deepcopy(the_ir.blocks)\n")
    source = "\n" * (first_line - 1) + source  # numba's line numbers in a traceback
    namespace = {}
    exec(compile(source, inspect.getsourcefile(worker), "exec"),  # noqa: S102
         vars(inline_closurecall), namespace)
    return namespace["inline_ir"]


def _target_config_values():
    """``(values, __hash__)`` for numba's ``TargetConfig`` (the compile flags) that give
    what its own give, without a property call per option; None where numba's class is
    not the one expected.

    numba's overload templates look each implementation up in a cache keyed by the
    flags, so every typed call of an overload hashes and compares a ``Flags`` (22
    options, each read through its property into a new dict): 40,000 lookups in a first
    demo's compiles, 0.71 s of its ~16 s of CPU, and 0.09 s this way (one process, empty
    cache, this 2-core AVX2 VM). ``values`` is the options' defaults updated with the
    values set (only options can be set); ``__hash__`` hashes the sorted option names,
    which is what numba's hash of the sorted dict of values comes to."""
    from numba.core.targetconfig import TargetConfig

    if not all(name in vars(TargetConfig) for name in ("values", "__hash__", "__eq__")):
        return None
    defaults, names = {}, {}

    def values(self):
        cls = type(self)
        base = defaults.get(cls)
        if base is None:
            base = defaults[cls] = {k: option.default for k, option in cls.options.items()}
        out = base.copy()
        for k, v in self._values.items():
            if k in out:
                out[k] = v
        return out

    def hash_names(self):
        cls = type(self)
        found = names.get(cls)
        if found is None:
            found = names[cls] = hash(tuple(sorted(cls.options)))
        return found

    return values, hash_names


@contextlib.contextmanager
def _compiling():
    """The compiles in this block (and only those) inline callees with
    :func:`_inline_ir_copying_once`, read the compile flags with
    :func:`_target_config_values`, and run with Python's cyclic garbage collector off.

    A compile makes millions of short-lived IR objects, and the collections they set off
    scan them again and again: with the collector off, a first fit's kernels (2,634 x 7,
    float64) compiled in 7.5-7.7 s against 8.4-8.7 s (3 each, empty cache, this 2-core
    AVX2 VM), for ~80 MB more at the peak. The collector is on again (unless it was off
    already) when the block ends, and frees that garbage at its next collection.

    Holds numba's global compiler lock throughout, which every compile takes: no other
    thread's compile runs, or sees the changed inliner and flags, before they are undone."""
    from numba.core import inline_closurecall
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.targetconfig import TargetConfig

    worker = inline_closurecall.InlineWorker
    with global_compiler_lock:
        copying_once = _inline_ir_copying_once()  # None: numba's inliner as it is
        saved = vars(worker).get("inline_ir")
        flags = _target_config_values()  # None: numba's flags as they are
        collecting = gc.isenabled()
        if copying_once is not None:
            worker.inline_ir = copying_once
        if flags is not None:
            saved_flags = vars(TargetConfig)["values"], vars(TargetConfig)["__hash__"]
            TargetConfig.values, TargetConfig.__hash__ = flags
        gc.disable()
        try:
            yield
        finally:
            if copying_once is not None:
                worker.inline_ir = saved
            if flags is not None:
                TargetConfig.values, TargetConfig.__hash__ = saved_flags
            if collecting:
                gc.enable()


def _compile_jobs(jobs):
    """The second process: compile each ``(module, name, argtypes)`` into the disk cache."""
    with _compiling():
        for module, name, argtypes in jobs:
            getattr(importlib.import_module(module), name).compile(argtypes)


if __name__ == "__main__":
    _compile_jobs(pickle.loads(sys.stdin.buffer.read()))
    # The kernels are in the disk cache now (numba writes each file whole as it compiles):
    # the caller waits for this exit, and the interpreter's teardown of all numba built
    # took 0.3-0.4 s of the first demo's wall time.
    sys.stdout.flush()
    os._exit(0)

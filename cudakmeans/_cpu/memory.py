"""Host memory for the CPU backend's large scratch arrays: in ordinary pages.

numpy advises transparent huge pages (``madvise(MADV_HUGEPAGE)``) for every allocation of
4 MiB or more. On the development VM (a Firecracker guest that reports its free memory to
the host) the first touch of such memory cost 1.3-1.8 s per 256 MB, against 0.15 s in
4 KiB pages (bench/results/cpu-experiments-2026-12-05e.md): a fit of 1,000,000 x 64
float32 spent 0.41-1.17 s building its workspace (X centred, its transpose), 0.29-0.39 s
with these. The workspace is written once, on the threads, and then streamed through in
tiles, so huge pages saved nothing measurable in the Lloyd steps that followed. Here such
buffers are anonymous memory maps that nobody advises: the kernel's own policy decides.

Only from ``MAPPED_FROM_BYTES`` up: a fresh map is faulted in page by page at every call
(~0.6 ms per MB here), where smaller buffers come back warm from the allocator's free
memory when calls follow each other (a k-means++ seeding of 200,000 x 32 float32, its
buffers 4.8-25.6 MB, took 1.32x as long in maps, back to back).
"""

import mmap

import numpy as np

# glibc's largest dynamic mmap threshold on 64-bit: from here up, its malloc maps every
# allocation afresh and unmaps it when freed (nothing stays warm), and numpy advises huge
# pages for it
MAPPED_FROM_BYTES = 32 << 20


def empty(shape, dtype):
    """``np.empty(shape, dtype)``, in an anonymous map of its own from ``MAPPED_FROM_BYTES``
    up."""
    # numpy reads the shape and dtype (0.4 us a call, against 1.5 parsing them here); a
    # large one's allocation is never touched, so it costs only its system calls
    out = np.empty(shape, dtype=dtype)
    if out.nbytes < MAPPED_FROM_BYTES:
        return out
    # the map is unmapped when the last array over it goes: the array holds it as its base
    return np.frombuffer(_anonymous_map(out.nbytes), dtype=out.dtype,
                         count=out.size).reshape(out.shape)


def _anonymous_map(n_bytes):
    """n_bytes of private anonymous memory: a forked child's writes stay its own (Python's
    default map is shared, and its first touch took 210-270 ms per 256 MB, against
    150-190 ms private); Windows' ``mmap`` has no flags (its maps are private)."""
    if hasattr(mmap, "MAP_PRIVATE"):
        return mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return mmap.mmap(-1, n_bytes)

"""Launch geometry of every CUDA kernel, and the device helpers the kernels share.

**One planner, pure functions of the problem.** :func:`row_plan`, :func:`seeding_plan` and
:func:`silhouette_plan` take the problem's shape and dtype and nothing about the GPU. The
geometry fixes the order of every floating-point reduction, so results are bit-for-bit the
same on any GPU: a larger one only runs more of the same blocks at once.

**Reductions in a fixed order, never floating-point atomics.** A block writes its partial
sums to its own *slot* of a device buffer (inside the block a halving tree over threads, or
a loop in row order); the slots are then reduced in index order, by a later kernel or by
the last block of the same launch (:func:`is_last_block`, an integer ticket). Integer
atomics are exact and only count.

**The watchdog.** Windows resets a GPU that drives a display when one kernel runs longer
than 2 s (TDR). Work per launch is bounded with a throughput model of the slowest GPU this
library targets, an RTX 3060 (GA106: 28 SMs at 1.78 GHz):

* float32: 28 SMs x 128 lanes x 1.78e9 = 6.4e12 instructions/s; a distance term (one row,
  one centre, one feature) is a subtract and an FMA, 3.2e12 terms/s at peak;
* float64 runs at 1/64 of that rate on GA106: 5.0e10 terms/s at peak.

Assuming only 10% of peak (memory stalls, a busy display, other work), a launch may hold
:data:`MAX_TERMS_PER_LAUNCH` terms: 2**35 in float32 and 2**30 in float64, about 0.1 s and
0.2 s, an order of magnitude under the watchdog.
"""

import math
from typing import NamedTuple

from numba import config, cuda, float64

from .math import first_max

SIMULATOR = bool(config.ENABLE_CUDASIM)

# The assignment's register tile: each of THREADS_Y x THREADS_X threads computes TILE_M
# rows x TILE_N[itemsize] centres, so a block covers BLOCK_ROWS rows x block_centers()
# centres, with TILE_K features of each staged in shared memory at a time. float64 values
# take two registers, so their tile is narrower. Under the simulator every CUDA thread is
# a Python thread: the same code runs with a smaller block.
if SIMULATOR:
    THREADS_Y, THREADS_X, TILE_M, TILE_K = 4, 4, 4, 2
    TILE_N = {4: 2, 8: 2}
else:
    THREADS_Y, THREADS_X, TILE_M, TILE_K = 16, 16, 4, 8
    TILE_N = {4: 4, 8: 2}
THREADS = THREADS_Y * THREADS_X
BLOCK_ROWS = THREADS_Y * TILE_M
# Staging a tile of rows and one of centres (TILE_K features each) takes each thread the
# same number of steps: block_centers() <= BLOCK_ROWS and TILE_K * BLOCK_ROWS % THREADS == 0
# (tests/_cuda/test_launch.py checks both).
STAGE_STEPS = TILE_K * BLOCK_ROWS // THREADS


def block_centers(itemsize):
    """Centres per block tile of the assignment, for data of ``itemsize`` bytes."""
    return THREADS_X * TILE_N[itemsize]


# k-means++ sums w * D(x)^2 over chunks of SEED_CHUNK rows, CHUNKS_PER_BLOCK chunks per
# block of SEED_ROWS rows, the same on every device and under the simulator (where a
# thread takes several chunks): a candidate picked near a boundary of the cumulative sum
# must not depend on where the sum ran.
SEED_CHUNK = 4
CHUNKS_PER_BLOCK = 256
SEED_ROWS = SEED_CHUNK * CHUNKS_PER_BLOCK

# Shared memory per block: three 256-thread blocks fit an sm_86 SM (100 KiB, 1 KiB of each
# block reserved), which is 50% occupancy there; static shared memory is capped at 48 KiB.
SHARED_BYTES = 32 * 1024
STATIC_SHARED_LIMIT = 48 * 1024
# All per-slot partial sums of one step together.
SLOT_BYTES = 64 * 1024 * 1024
# Per-run buffers of the independent runs that one batch of launches serves together.
BATCH_BYTES = 256 * 1024 * 1024

MAX_TERMS_PER_LAUNCH = {4: 1 << 35, 8: 1 << 30}
# The model behind it: distance terms per second on an RTX 3060 at 10% of peak.
MODEL_TERMS_PER_SECOND = {4: 0.1 * 28 * 128 * 1.78e9 / 2, 8: 0.1 * 28 * 128 * 1.78e9 / 2 / 64}


def modelled_seconds(terms, itemsize):
    """Seconds the watchdog model gives ``terms`` distance terms on an RTX 3060."""
    return terms / MODEL_TERMS_PER_SECOND[itemsize]

# The per-sample kernels promise ptxas four resident blocks of THREADS threads per SM, so it
# keeps them within 64 registers per thread: 50% occupancy on sm_90, 67% on sm_86.
MIN_BLOCKS_PER_SM = 4


def kernel(*, bounded=False):
    """``cuda.jit(cache=True)``; ``bounded`` kernels also declare launch bounds (THREADS
    threads, MIN_BLOCKS_PER_SM blocks per SM). The simulator has no launch bounds."""
    options = {"cache": True}
    if bounded and not SIMULATOR:
        options["launch_bounds"] = (THREADS, MIN_BLOCKS_PER_SM)
    return cuda.jit(**options)


def ceil_div(a, b):
    return -(-a // b)


def grid(n_items, threads=THREADS):
    """Blocks of ``threads`` threads covering ``n_items`` items, one each (at least one)."""
    return max(1, ceil_div(n_items, threads))


# Device-resident input (_cuda/arrays.py): element-wise kernels stride over at most
# ELEMENTWISE_BLOCKS blocks; reductions write one partial per block, at most REDUCE_BLOCKS
# (the last block adds them serially); column sums add COLUMN_ROWS rows per block, one
# thread per feature. Under the simulator a block is a set of Python threads: few blocks.
ELEMENTWISE_BLOCKS = 2 if SIMULATOR else 4096
REDUCE_BLOCKS = 2 if SIMULATOR else 1024
COLUMN_ROWS = 128 if SIMULATOR else 256
COLUMN_THREADS = 4 if SIMULATOR else 32


# Integer labels grouped on the device (_cuda/arrays.py: a counting sort over the labels'
# value range): one thread walks the LABEL_CHUNK_ROWS rows of a chunk in order; the
# (chunks, values) table of counts holds at most LABEL_TABLE_ENTRIES int32 (16 MiB), so a
# wide range gets fewer, longer chunks.
LABEL_CHUNK_ROWS = 8 if SIMULATOR else 1024
LABEL_TABLE_ENTRIES = 1 << 22
# Wider ranges are sorted by a radix sort, RADIX_BITS of the value per counting-sort pass,
# up to RADIX_SPAN values (``value - low`` stays an int64); wider still: on the host.
RADIX_BITS = 8 if SIMULATOR else 16
RADIX_SPAN = 1 << 62


def label_plan(n_rows, n_values):
    """``(chunk_rows, n_chunks)`` of the counting sort of ``n_rows`` labels spanning
    ``n_values`` values; None when the table could not hold one chunk's counts."""
    if n_values > LABEL_TABLE_ENTRIES:
        return None
    n_chunks = max(1, min(ceil_div(n_rows, LABEL_CHUNK_ROWS),
                          LABEL_TABLE_ENTRIES // n_values))
    chunk_rows = ceil_div(n_rows, n_chunks)
    return chunk_rows, ceil_div(n_rows, chunk_rows)


def elementwise_blocks(n_items):
    """Blocks of THREADS threads for a grid-stride loop over ``n_items`` items."""
    return min(grid(n_items), ELEMENTWISE_BLOCKS)


def reduce_blocks(n_items):
    """Blocks of a grid-stride reduction over ``n_items`` items, one partial each."""
    return min(grid(n_items), REDUCE_BLOCKS)


def _align(nbytes, to=16):
    return ceil_div(nbytes, to) * to


def max_terms(itemsize):
    """Distance terms one launch may hold (see the watchdog model above)."""
    return MAX_TERMS_PER_LAUNCH[itemsize]


def split(n_items, per_launch):
    """``[(start, stop)]`` covering ``range(n_items)`` in launches of ``per_launch``."""
    per_launch = max(1, int(per_launch))
    return [(s, min(s + per_launch, n_items)) for s in range(0, n_items, per_launch)]


class RowPlan(NamedTuple):
    """How one assignment step over ``n_rows`` rows runs.

    * tiles of :data:`BLOCK_ROWS` rows, one block each (:func:`block_centers` centres at
      a time), launched in ``tile_launches``;
    * ``fused``: each block also sums its rows per cluster in shared memory, in ``groups``
      interleaved row groups, and writes them to slot ``tile``; otherwise a second kernel
      sums ``rows_per_slot`` consecutive rows per block into ``n_slots`` slots;
    * a slot holds ``slot_width = n_clusters * (n_features + 1)`` float64: per cluster the
      weighted coordinate sums, then the weight.
    """

    n_rows: int
    n_tiles: int
    tile_launches: list
    fused: bool
    groups: int
    n_slots: int
    rows_per_slot: int
    slot_width: int
    assign_shared: int  # dynamic shared bytes of the assignment kernel
    row_base: int  # byte offset of its per-row state (after the tiles and the exchange)
    acc_base: int  # byte offset of its per-cluster accumulators (fused)
    accumulate_threads: int  # threads per block of the separate accumulation kernel


def assign_tile_bytes(itemsize):
    """Shared bytes of the staged tiles, which the argmin exchange reuses afterwards."""
    tiles = TILE_K * (BLOCK_ROWS + 1 + block_centers(itemsize) + 1) * itemsize
    exchange = BLOCK_ROWS * THREADS_X * (itemsize + 4)
    return _align(max(tiles, exchange))


def assign_row_bytes(itemsize):
    """Shared bytes of the per-row state: best distance and label, two float64 partials."""
    return _align(BLOCK_ROWS * (itemsize + 4 + 8 + 8))


def fused_groups(n_features, n_clusters, itemsize):
    """Interleaved row groups of the fused accumulation: as many copies of the per-cluster
    sums as the threads and the shared memory beside the tiles hold (< 1: none fit). It
    depends on K, not on the rows, and it fixes the order of the sums."""
    free = SHARED_BYTES - assign_tile_bytes(itemsize) - assign_row_bytes(itemsize)
    return min(THREADS // (n_features + 1), free // (8 * n_clusters * (n_features + 1)))


def row_plan(n_rows, n_features, n_clusters, itemsize):
    """The :class:`RowPlan` of an assignment over ``n_rows`` rows (a pure function)."""
    n_tiles = max(1, ceil_div(n_rows, BLOCK_ROWS))
    padded_k = ceil_div(n_clusters, block_centers(itemsize)) * block_centers(itemsize)
    tile_terms = BLOCK_ROWS * padded_k * n_features
    tiles_per_launch = max(1, max_terms(itemsize) // max(1, tile_terms))
    slot_width = n_clusters * (n_features + 1)
    tile_shared, row_shared = assign_tile_bytes(itemsize), assign_row_bytes(itemsize)
    groups = fused_groups(n_features, n_clusters, itemsize)
    fused = groups >= 1 and n_tiles * slot_width * 8 <= SLOT_BYTES
    if fused:
        n_slots, rows_per_slot = n_tiles, BLOCK_ROWS
        acc = groups * slot_width * 8
    else:
        groups = 0
        n_slots = max(1, min(n_tiles, SLOT_BYTES // (8 * slot_width)))
        rows_per_slot = ceil_div(n_rows, n_slots)
        n_slots = max(1, ceil_div(n_rows, rows_per_slot))
        acc = 0
    return RowPlan(
        n_rows=n_rows, n_tiles=n_tiles, tile_launches=split(n_tiles, tiles_per_launch),
        fused=fused, groups=groups, n_slots=n_slots, rows_per_slot=rows_per_slot,
        slot_width=slot_width, assign_shared=tile_shared + row_shared + acc,
        row_base=tile_shared, acc_base=tile_shared + row_shared,
        accumulate_threads=min(THREADS, ceil_div(n_features + 1, 32) * 32),
    )


class SeedingPlan(NamedTuple):
    """k-means++ and the other row-parallel passes: blocks of :data:`SEED_ROWS` rows."""

    n_blocks: int
    launches: list  # [(first block, stop block)] per launch


def seeding_plan(n_rows, n_features, n_trials, itemsize):
    """Blocks of :data:`SEED_ROWS` rows; launches bounded by the candidates' distance terms."""
    n_blocks = max(1, ceil_div(n_rows, SEED_ROWS))
    block_terms = SEED_ROWS * max(1, n_trials) * n_features
    return SeedingPlan(n_blocks, split(n_blocks, max_terms(itemsize) // max(1, block_terms)))


class SilhouettePlan(NamedTuple):
    """The silhouette: a row per thread; each launch folds one range of sorted columns."""

    threads: int
    tile_rows: int  # sorted rows per shared-memory tile (0: read from global memory)
    shared_bytes: int
    row_launches: list  # [(row start, row stop)]
    column_launches: list  # [(column start, column stop)], each inside every row launch


def silhouette_plan(n_samples, n_features, itemsize, tile_rows=None):
    """Launches of the silhouette over ``n_samples`` rows (a pure function of the shape).

    A launch folds ``rows x columns x n_features`` pair terms; the column range is split so
    that no launch exceeds :data:`MAX_TERMS_PER_LAUNCH` (the walk state of each row is kept
    on the device between launches). ``tile_rows`` overrides the tile height (tests use it
    to cross many tiles on small inputs); it must fit the static shared-memory limit.
    """
    threads = THREADS
    row_bytes = n_features * itemsize
    if tile_rows is None:
        tile_rows = 0 if row_bytes > SHARED_BYTES else max(1, min(n_samples,
                                                                   SHARED_BYTES // row_bytes))
    elif tile_rows < 0 or tile_rows * row_bytes > STATIC_SHARED_LIMIT:
        raise ValueError(
            f"tile_rows={tile_rows} needs {tile_rows * row_bytes:,} bytes of shared memory; "
            f"the limit without an opt-in is {STATIC_SHARED_LIMIT:,}."
        )
    shared_bytes = tile_rows * row_bytes
    budget = max_terms(itemsize)
    # All rows in one launch whenever a launch can hold one column for each: the GPU is
    # filled by rows; the columns are what gets split.
    rows_per_launch = max(threads, budget // max(1, n_features) // threads * threads)
    row_launches = split(n_samples, rows_per_launch)
    rows = min(n_samples, rows_per_launch)
    columns = max(1, budget // max(1, rows * n_features))
    if tile_rows and columns >= tile_rows:
        columns = columns // tile_rows * tile_rows
    return SilhouettePlan(threads, tile_rows, shared_bytes, row_launches,
                          split(n_samples, columns))


# -- CSR kernels (cudakmeans._cuda.sparse) ------------------------------------------------
# One row (centre, coordinate or feature) per thread, in blocks of CSR_THREADS threads. A
# block's partial sums are added by its thread 0 in thread order, so CSR_THREADS is part of
# every CSR reduction's order. Under the simulator every CUDA thread is a Python thread:
# smaller blocks there.
CSR_THREADS = 32 if SIMULATOR else 256
CSR_ROWS_PER_LAUNCH = 1 << 20  # rows per assignment launch (4,096 blocks of 256)
CSR_PAIR_WORK = 1 << 30  # stored values walked per silhouette launch


def csr_blocks(n_items):
    """Blocks of :data:`CSR_THREADS` threads covering ``n_items`` items (at least one)."""
    return grid(n_items, CSR_THREADS)


class CsrRowPlan(NamedTuple):
    """A per-row pass over CSR rows: launches of at most :data:`CSR_ROWS_PER_LAUNCH` rows,
    each writing its blocks' partials to the slots from ``slot0`` on."""

    launches: list  # [(start, stop, slot0)]
    n_slots: int  # slots of all launches together


def csr_row_plan(n_rows):
    """The :class:`CsrRowPlan` of ``n_rows`` rows (a pure function)."""
    launches = []
    slot = 0
    for start in range(0, n_rows, CSR_ROWS_PER_LAUNCH):
        stop = min(start + CSR_ROWS_PER_LAUNCH, n_rows)
        launches.append((start, stop, slot))
        slot += csr_blocks(stop - start)
    return CsrRowPlan(launches, slot)


def csr_silhouette_launches(n_rows, nnz):
    """``[(row start, row stop)]`` of the CSR silhouette. Each row walks all ``nnz`` stored
    values and ``n_rows`` row bounds, so a launch takes as many whole blocks of rows as
    keep it within :data:`CSR_PAIR_WORK` of those steps (one block at least)."""
    per_row = max(1, nnz + n_rows)
    rows = max(CSR_THREADS, CSR_PAIR_WORK // per_row // CSR_THREADS * CSR_THREADS)
    return split(n_rows, rows)


# -- occupancy -------------------------------------------------------------------------------
class Arch(NamedTuple):
    registers: int  # per SM
    threads: int  # resident threads per SM
    blocks: int  # resident blocks per SM
    shared: int  # shared memory per SM (largest carveout)
    shared_per_block: int  # largest per block (with an opt-in past 48 KiB)
    reserved: int  # shared memory the system reserves per block


# NVIDIA's occupancy tables (CUDA Occupancy Calculator), per compute capability.
ARCH = {
    (7, 5): Arch(65536, 1024, 16, 64 * 1024, 64 * 1024, 0),
    (8, 6): Arch(65536, 1536, 16, 100 * 1024, 99 * 1024, 1024),
    (8, 9): Arch(65536, 1536, 24, 100 * 1024, 99 * 1024, 1024),
    (9, 0): Arch(65536, 2048, 32, 228 * 1024, 227 * 1024, 1024),
}
REGISTER_UNIT = 256  # registers are allocated per warp in units of 256
WARP_GRANULARITY = 4  # and warps in groups of 4 for the register limit
SHARED_UNIT = 128


def blocks_per_sm(cc, registers, threads, shared_bytes):
    """Resident blocks per SM for a kernel using ``registers`` per thread and
    ``shared_bytes`` (static + dynamic) per block, launched with ``threads`` threads."""
    arch = ARCH[tuple(cc)]
    warps = ceil_div(threads, 32)
    by_threads = arch.threads // (warps * 32)
    if registers:
        per_warp = ceil_div(registers * 32, REGISTER_UNIT) * REGISTER_UNIT
        warps_by_regs = arch.registers // per_warp // WARP_GRANULARITY * WARP_GRANULARITY
        by_registers = warps_by_regs // warps
    else:
        by_registers = arch.blocks
    block_shared = ceil_div(shared_bytes + arch.reserved, SHARED_UNIT) * SHARED_UNIT
    if shared_bytes > arch.shared_per_block:
        return 0
    by_shared = arch.shared // block_shared if block_shared else arch.blocks
    return max(0, min(arch.blocks, by_threads, by_registers, by_shared))


def occupancy(cc, registers, threads, shared_bytes):
    """Theoretical occupancy: resident warps over the SM's maximum, in [0, 1]."""
    arch = ARCH[tuple(cc)]
    blocks = blocks_per_sm(cc, registers, threads, shared_bytes)
    return blocks * ceil_div(threads, 32) * 32 / arch.threads


# -- device helpers ------------------------------------------------------------------------
@cuda.jit(device=True, inline=True)
def tree_sum(values, n, tid):
    """Sum ``values[:n]`` (float64, shared, ``n`` a power of two) in place by halving:
    level by level ``values[i] += values[i + h]``; every thread gets the total.

    The order depends only on ``n``: tests/_cuda/order.py reproduces it with numpy.
    """
    h = n // 2
    while h > 0:
        cuda.syncthreads()
        if tid < h:
            values[tid] = values[tid] + values[tid + h]
        h //= 2
    cuda.syncthreads()
    total = values[0]
    cuda.syncthreads()  # everyone has read it before the caller reuses ``values``
    return total


@cuda.jit(device=True, inline=True)
def block_first_max(values, n, tid, part, index):
    """``(index, value)`` of the first maximum of ``values[:n]``, found by the whole block.

    Each thread scans a strided share, then a halving tree combines the candidates with
    :func:`~cudakmeans._math.first_max`, whose answer does not depend on the order: the row
    a serial scan would pick. ``part`` (float64) and ``index`` (int64) are shared arrays of
    :data:`THREADS` entries.
    """
    best = -math.inf
    at = n
    for i in range(tid, n, THREADS):
        value = float64(values[i])
        if first_max(best, at, value, i):
            best = value
            at = i
    part[tid] = best
    index[tid] = at
    h = THREADS // 2
    while h > 0:
        cuda.syncthreads()
        if tid < h and first_max(part[tid], index[tid], part[tid + h], index[tid + h]):
            part[tid] = part[tid + h]
            index[tid] = index[tid + h]
        h //= 2
    cuda.syncthreads()
    at, best = index[0], part[0]
    cuda.syncthreads()
    return at, best


@cuda.jit(device=True, inline=True)
def is_last_block(ticket, n_blocks, flag):
    """True in every thread of the block that finishes last among ``n_blocks`` blocks.

    Each block makes its global writes visible (``threadfence``), then takes a ticket from
    the integer counter ``ticket[0]``; the block with the last ticket may read every other
    block's slots and resets the counter for the next use. ``flag`` is a 1-element shared
    int32 array. Blocks may span several launches on one stream.
    """
    cuda.threadfence()
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        taken = cuda.atomic.add(ticket, 0, 1)
        last = taken == n_blocks - 1
        flag[0] = 1 if last else 0
        if last:
            ticket[0] = 0
    cuda.syncthreads()
    return flag[0] == 1


"""Array views that numba does not reference-count, for a kernel's own arguments.

numba counts references to every array it passes on or takes a view of: an atomic
increment when a compiled function's argument or a slice comes into being, a decrement
when it goes. Inside a kernel whose caller holds its arrays for the whole call, those
counts change nothing, and they are not free: in the request's Lloyd steps (2,634 x 7,
K=26) a tenth of ``perf``'s samples sat on the two atomic instructions of numba's
``NRT_incref``/``NRT_decref``, called from ``assign_rows`` for the slices of each tile and
in the prologues of the kernels it calls per tile (each increments every array argument
it is given, and decrements it on return). A :func:`borrowed` view carries no memory
record (numba's ``meminfo``, the counter's home): the views taken of it and the kernels
it is passed to skip the count (a null check), and its memory is never freed through it.
Fits of the request's shape took 0.95-0.97x the time (one thread, alternating; 2.9% of
the samples left on the counts, those of arrays the kernel allocates itself).

Only for arrays that outlive every use of the view: a kernel's arguments (its caller
holds them), never an array the kernel allocates itself (numba frees that after its last
use, which may be the call that made the view).
"""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def borrowed(arr):
    """``arr`` itself, as a view whose references numba does not count (see the module);
    anything that is not an array (None, a scalar) unchanged. Plain Python (and
    ``NUMBA_DISABLE_JIT``): ``arr`` as given."""
    return arr


@intrinsic
def _uncounted(typingctx, arr):
    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        return view._getvalue()

    return arr(arr), codegen


@overload(borrowed, inline="always")
def _borrowed_overload(arr):
    if isinstance(arr, types.Array):
        return lambda arr: _uncounted(arr)
    return lambda arr: arr

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

from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic


def _as_given(arr):
    return arr


@intrinsic
def _uncounted(typingctx, arr):
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        return view._getvalue()

    return arr(arr), codegen


# ``borrowed(arr)``: the array ``arr`` itself, as a view whose references numba does not
# count; plain Python (NUMBA_DISABLE_JIT) takes ``arr`` as given. An intrinsic, not an
# overload inlined into each call: the sixteen calls of assign_rows, typed one by one,
# took up to a second of a first fit's compile (10.3-11.7 s against 10.7-11.0).
borrowed = _as_given if config.DISABLE_JIT else _uncounted

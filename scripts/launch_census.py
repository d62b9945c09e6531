"""Count the CUDA launches and synchronising copies of a call, under the simulator.

    NUMBA_ENABLE_CUDASIM=1 python scripts/launch_census.py            # the request's fit
    NUMBA_ENABLE_CUDASIM=1 python scripts/launch_census.py --templates
    NUMBA_ENABLE_CUDASIM=1 python scripts/launch_census.py --templates --every 20 --k 6

The request's workload is 2,634 x 7 (the embedded patterns), K=26, n_init=3, random_state
42 (``CudaKMeans(26)``); ``--templates`` runs the demo's template workflow instead
(``fit_templates(X, 26)``, as ``python -m cudakmeans demo``). ``--every N`` keeps every
N-th row of the data and ``--k`` sets the number of clusters (templates), for a census the
simulator can afford: the same code path, whose launch counts follow the iteration counts
and the batching, not the number of rows. The counts are what a GPU run makes (the
simulator runs the same launcher code; see ``tests/_cuda/census.py``); the simulator is
slow at full size (an hour for the request's fit). ``--phases`` prints the counts per
workflow phase.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# The phase that follows each phase of the template workflow (its progress calls).
NEXT = {"create": "split", "split": "score and refine"}


class _Patch:
    """The part of pytest's monkeypatch that :func:`tests._cuda.census.counting` uses."""

    def __init__(self):
        self.undo = []

    def setattr(self, owner, name, value):
        self.undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def restore(self):
        for owner, name, value in reversed(self.undo):
            setattr(owner, name, value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", action="store_true")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th row")
    parser.add_argument("--k", type=int, default=26, help="clusters (templates)")
    parser.add_argument("--phases", action="store_true", help="counts per phase")
    args = parser.parse_args(argv)
    from numba import config

    if not config.ENABLE_CUDASIM:
        parser.error("run it with NUMBA_ENABLE_CUDASIM=1")
    from cudakmeans import CudaKMeans, templates
    from cudakmeans.data import load_patterns
    from tests._cuda import census

    X = load_patterns()
    X = getattr(X, "values", X)[::args.every]
    data = f"{X.shape[0]:,} x {X.shape[1]} (every {args.every}. row of the embedded data)"
    patch = _Patch()
    start = time.perf_counter()
    try:
        with census.counting(patch) as counted:
            if args.templates:
                counted.phase = "standardize and create"

                def progress(phase, done, total):  # called after each unit of work
                    if phase == "create" or (phase == "split" and done == total):
                        counted.phase = NEXT[phase]

                result = templates.fit_templates(X, args.k, device="cuda",
                                                 progress=progress if args.phases else None)
                what = (f"template workflow fit_templates(X, {args.k}) on {data}: "
                        f"{result.n_templates} templates, refine K "
                        f"{result.refinement.k_values.tolist()}")
            else:
                model = CudaKMeans(args.k, device="cuda").fit(X)
                what = (f"CudaKMeans({args.k}) on {data} (n_init=3): "
                        f"n_iter_={model.n_iter_}")
    finally:
        patch.restore()
    if args.phases:
        for phase, row in counted.summary().items():
            print(f"  {phase}: launches {row['launches']}, synchronising copies to the "
                  f"host {row['downloads']}, copies to the device {row['uploads']}")
    launches = counted.count(kind="launch")
    downloads = counted.count(kind="d2h")
    uploads = counted.count(kind="h2d")
    print(f"{what}\nlaunches {launches}, synchronising copies to the host {downloads}, "
          f"copies to the device {uploads} ({time.perf_counter() - start:.0f} s under the "
          "simulator)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

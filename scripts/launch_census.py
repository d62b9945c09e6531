"""Count the CUDA launches and synchronising copies of a call, under the simulator.

    NUMBA_ENABLE_CUDASIM=1 python scripts/launch_census.py            # the request's fit
    NUMBA_ENABLE_CUDASIM=1 python scripts/launch_census.py --templates

The request's workload is 2,634 x 7 (the embedded patterns), K=26, n_init=3, random_state
42 (``CudaKMeans(26)``); ``--templates`` runs the demo's template workflow instead. The
counts are what a GPU run makes (the simulator runs the same launcher code; see
``tests/_cuda/census.py``); the simulator is slow at this size (minutes).
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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
    args = parser.parse_args(argv)
    from numba import config

    if not config.ENABLE_CUDASIM:
        parser.error("run it with NUMBA_ENABLE_CUDASIM=1")
    from cudakmeans import CudaKMeans, templates
    from cudakmeans.data import load_patterns
    from tests._cuda import census

    X = load_patterns()
    X = getattr(X, "values", X)
    patch = _Patch()
    start = time.perf_counter()
    try:
        with census.counting(patch) as counted:
            if args.templates:
                templates.fit_templates(X, device="cuda")
                what = "template workflow (fit_templates) on the embedded data"
            else:
                model = CudaKMeans(26, device="cuda").fit(X)
                what = (f"CudaKMeans(26) on {X.shape[0]:,} x {X.shape[1]} (n_init=3): "
                        f"n_iter_={model.n_iter_}")
    finally:
        patch.restore()
    launches = counted.count(kind="launch")
    downloads = counted.count(kind="d2h")
    uploads = counted.count(kind="h2d")
    print(f"{what}\nlaunches {launches}, synchronising copies to the host {downloads}, "
          f"copies to the device {uploads} ({time.perf_counter() - start:.0f} s under the "
          "simulator)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

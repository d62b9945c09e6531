"""Regenerate ``cudakmeans/data/patterns.csv``, the embedded default data set.

Run from the repository root::

    python scripts/make_default_data.py          # rewrites the file
    python scripts/make_default_data.py --check  # exit 1 if the shipped file differs

The data are synthetic and fully determined by ``SEED``: 2,634 rows x 7 features shaped
like the trading patterns of the original request (see :mod:`cudakmeans.data` for the
exact recipe). :func:`make_patterns` also returns the true template of each row (-1 for
the outliers), which the shipped file does not contain.
"""

import argparse
import io
import pathlib
import sys

import numpy as np

SEED = 20261125
N_SAMPLES = 2634
N_TEMPLATES = 26
N_OUTLIERS = 34
MIN_TEMPLATE_SIZE = 15
# (name, location, scale): latent unit -> feature units, so the features have very
# different scales, as real pattern descriptors do.
FEATURES = (
    ("length_bars", 60.0, 25.0),
    ("return_pct", 0.0, 2.5),
    ("volatility_pct", 1.5, 0.4),
    ("volume_ratio", 1.0, 0.3),
    ("slope_bps", 0.0, 15.0),
    ("r_squared", 0.5, 0.15),
    ("retracement", 0.4, 0.12),
)
PATH = pathlib.Path(__file__).resolve().parents[1] / "cudakmeans" / "data" / "patterns.csv"


def make_patterns(seed=SEED):
    """Return ``(X, templates)``: the (2634, 7) data in feature units and the true template
    of each row (0..25, or -1 for an outlier), rows in shuffled order."""
    rng = np.random.default_rng(seed)
    n_features = len(FEATURES)
    centers = rng.uniform(-2.5, 2.5, size=(N_TEMPLATES, n_features))
    # varied spreads: per-template isotropic sd, and a few elongated along one axis
    spreads = rng.uniform(0.12, 0.55, size=N_TEMPLATES)
    stretch = np.ones((N_TEMPLATES, n_features))
    elongated = rng.choice(N_TEMPLATES, size=4, replace=False)
    stretch[elongated, rng.integers(0, n_features, size=4)] = 3.0
    # varied sizes: Dirichlet shares on top of a floor of MIN_TEMPLATE_SIZE each
    n_inliers = N_SAMPLES - N_OUTLIERS
    extra = rng.multinomial(n_inliers - N_TEMPLATES * MIN_TEMPLATE_SIZE,
                            rng.dirichlet(np.full(N_TEMPLATES, 1.5)))
    sizes = extra + MIN_TEMPLATE_SIZE
    templates = np.repeat(np.arange(N_TEMPLATES), sizes)
    latent = centers[templates] + (spreads[templates, None] * stretch[templates]
                                   * rng.standard_normal((n_inliers, n_features)))
    outliers = rng.uniform(-5.0, 5.0, size=(N_OUTLIERS, n_features))
    latent = np.vstack([latent, outliers])
    templates = np.concatenate([templates, np.full(N_OUTLIERS, -1)])
    order = rng.permutation(N_SAMPLES)
    loc = np.array([f[1] for f in FEATURES])
    scale = np.array([f[2] for f in FEATURES])
    return loc + scale * latent[order], templates[order]


def to_csv(X):
    """The CSV text: a header of feature names, then six significant digits per value."""
    buf = io.StringIO()
    np.savetxt(buf, X, fmt="%.6g", delimiter=",", header=",".join(f[0] for f in FEATURES),
               comments="")
    return buf.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the shipped file instead of writing it")
    args = parser.parse_args(argv)
    text = to_csv(make_patterns()[0])
    if args.check:
        same = PATH.read_text() == text
        print(f"{PATH}: {'up to date' if same else 'DIFFERS from the generator'}")
        return 0 if same else 1
    PATH.write_text(text)
    print(f"wrote {PATH} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The embedded default data set: 2,634 synthetic trading patterns x 7 features.

:func:`load_patterns` reads ``patterns.csv``, shipped in the package and written by
``scripts/make_default_data.py`` (seed 20261125; ``--check`` verifies the shipped file).
The data are synthetic, made to have the shape of the trading-pattern problem the template
workflow was built for, not taken from any market:

* 2,600 rows drawn from 26 underlying templates: centres uniform in [-2.5, 2.5]^7 in a
  latent space; sizes of 15 plus Dirichlet(1.5) shares of the rest (from 15 to a few
  hundred rows); isotropic Gaussian spreads with standard deviations from 0.12 to 0.55,
  four templates stretched three-fold along one feature;
* 34 outliers (1.3%) uniform in [-5, 5]^7;
* rows shuffled, then each latent coordinate mapped linearly to a feature with its own
  location and scale, so the columns differ in scale by two orders of magnitude:

  ==============  ========  =====
  feature         location  scale
  ==============  ========  =====
  length_bars         60.0   25.0
  return_pct           0.0    2.5
  volatility_pct       1.5    0.4
  volume_ratio         1.0    0.3
  slope_bps            0.0   15.0
  r_squared            0.5   0.15
  retracement          0.4   0.12
  ==============  ========  =====

The names are illustrative: values are not clipped to physical ranges (a few volatilities
are negative). Values are stored with six significant digits. The true template of each
row is not shipped; ``make_patterns()`` in the script returns it.
"""

import pathlib

import numpy as np

__all__ = ["load_patterns", "FEATURE_NAMES", "PATTERNS_PATH"]

PATTERNS_PATH = pathlib.Path(__file__).with_name("patterns.csv")
FEATURE_NAMES = ("length_bars", "return_pct", "volatility_pct", "volume_ratio", "slope_bps",
                 "r_squared", "retracement")


def load_patterns():
    """Return the embedded patterns as a new (2634, 7) float64 array.

    Columns are in the order of ``FEATURE_NAMES``. Each call reads the file again, so the
    caller owns the array.

    Examples
    --------
    >>> from cudakmeans.data import load_patterns
    >>> load_patterns().shape
    (2634, 7)
    """
    return np.loadtxt(PATTERNS_PATH, delimiter=",", skiprows=1, dtype=np.float64)

"""Turn an LR range-test curve ``(lrs, losses)`` into a suggested learning rate. Pure numpy; never imports Keras.

Everything here works in ``x = log10(lr)``. The raw curve is first *prepared*:

1. Validation: ``lrs`` and ``losses`` are 1-D, of equal length, with at least :data:`MIN_POINTS` points; ``lrs``
   are finite, positive and strictly increasing. Anything else raises :class:`~lrsearch.errors.ConfigError`.
2. The curve is cut just before the first non-finite loss (NaN/inf); at least :data:`MIN_POINTS` finite points
   must remain.
3. Past divergence (:func:`divergence_index`) the curve is cut after the first diverged point, and losses above
   the divergence threshold are clipped to it, so one exploding batch cannot drag the smoother.

It is then smoothed without lag by :func:`smooth` (local polynomial regression with a centred Gaussian kernel in
log-LR space, see there for the formula; the kernel width follows the sampling density, :func:`auto_width`: 0.2
decade at 25 points per decade), which also gives the slope ``s(x) = d loss / d log10(lr)``. The
methods (``i*`` = index of the smoothed minimum, ``S`` = smoothed curve):

* ``steepest``: the most negative slope on the descending branch before the smoothed minimum. With
  ``j = argmin_{i <= i*} s_i``, take the contiguous run ``[a, b]`` of points around ``j`` (``b <= i*``) where
  ``s_i <= s_j / 2`` (the lower half of the slope trough) and return the vertex of the least-squares parabola
  ``s ~ c2·x^2 + c1·x + c0`` fitted to it, ``x = -c1 / (2·c2)`` clipped to ``[x_a, x_b]``. Fitting the whole
  lower half of the trough instead of taking the single argmin (or a 3-point vertex) cuts the median location
  error by 20-35 % at realistic batch noise (``scripts/bench_range_test.py``). With fewer than 3 points in the
  run, the 3-point vertex at ``j``; if no slope is negative, ``lrs[0]``. ``j`` is searched away from the ends,
  on ``x_0 + h <= x <= x_end - h`` (``h`` the smoother's bandwidth) when that leaves any point: a local line fitted
  at the very ends sees one side only, and its slope there is several times noisier than inside -- on real,
  noisy curves a spurious "steepest" point at ``start_lr`` was the most common failure.
* ``valley``: fastai's "valley" done on the smoothed curve. The longest (not necessarily contiguous) strictly
  decreasing subsequence of ``S`` spans ``[i0, i1]``; the suggestion is where ``S`` first falls to
  ``S[i0] - (2/3)·(S[i0] - S[i1])`` -- two thirds of the way down the valley *in loss*, linearly interpolated in
  ``x``. (fastai takes the midpoint of the span in index; measuring the fraction in loss makes the result
  independent of how long the flat plateau before the descent is, i.e. of ``start_lr``.)
* ``minimum``: ``lr(i*) / 10``, ``i*`` refined by the vertex of the parabola through ``S`` at ``i*-1, i*, i*+1``;
  clipped to ``[lrs[0], lrs[-1]]``. (Smoothing moves the minimum left of a sharp divergence wall, by ~0.3
  decade on the benchmark curves, so this is on the conservative side of the usual "minimum / 10".)
* ``auto``: the median of the three in ``log10(lr)`` (the geometric median). Each method has its own failure
  mode -- ``steepest`` can lock onto a short noisy dip, ``valley`` depends on where the descent is judged to
  start, ``minimum`` on how abruptly the loss diverges -- and the median of three ignores any single one that
  fails; on a clean curve it lands between ``steepest`` and ``valley``, at or just above the steepest point.

Every step is equivariant under ``loss -> a·loss + b`` (``a > 0``): the smoother is linear and reproduces
constants, argmins and level-crossing fractions are unchanged, and the divergence rule uses only differences of
losses divided by differences of losses. So suggestions do not depend on the loss' scale or offset.

Example:
    >>> import numpy as np
    >>> lrs = np.logspace(-7, 1, 160)
    >>> x = np.log10(lrs)
    >>> losses = 1.0 - np.tanh((x + 3.0) / 0.4) + np.where(x > -1.5, (x + 1.5) ** 2 * 8, 0.0)
    >>> round(float(np.log10(suggest_lr(lrs, losses, method="steepest"))), 1)
    -3.0
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from lrsearch.errors import ConfigError

Method = Literal["auto", "steepest", "valley", "minimum"]
METHODS: tuple[str, ...] = ("steepest", "valley", "minimum", "auto")

MIN_POINTS = 5
WIDTH_REF = 0.2
"""Gaussian kernel standard deviation of the smoother, in decades of LR, at :data:`DENSITY_REF` points per decade."""
DENSITY_REF = 25.0
WIDTH_MIN, WIDTH_MAX = 0.1, 0.5
DEFAULT_WIDTH = None  # None: auto_width()
DEFAULT_DEGREE = 1
DEFAULT_DIVERGENCE_K = 4.0
VALLEY_FRACTION = 2.0 / 3.0
STEEPEST_FRACTION = 0.5

_N_INITIAL = 5  # losses whose median is the "initial" loss of the divergence rule
_NOISE_FLOOR = 3.0  # the divergence gap is at least this many noise standard deviations


# ----------------------------------------------------------------------------------------------------------------
# validation and preparation


def _validate(lrs: npt.ArrayLike, losses: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        lrs_a = np.asarray(lrs, dtype=float)
        losses_a = np.asarray(losses, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"range-test curve must be numeric arrays: {exc}") from None
    if lrs_a.ndim != 1 or losses_a.ndim != 1:
        raise ConfigError(
            f"range-test curve must be 1-D arrays, got lrs of shape {lrs_a.shape} and losses of shape "
            f"{losses_a.shape}"
        )
    if lrs_a.shape != losses_a.shape:
        raise ConfigError(
            f"range-test curve: lrs and losses must have equal lengths, got {lrs_a.size} and {losses_a.size}"
        )
    if lrs_a.size < MIN_POINTS:
        raise ConfigError(f"range-test curve needs at least {MIN_POINTS} points, got {lrs_a.size}")
    if not np.all(np.isfinite(lrs_a)) or np.any(lrs_a <= 0):
        raise ConfigError("range-test curve: every learning rate must be finite and > 0")
    if np.any(np.diff(lrs_a) <= 0):
        raise ConfigError("range-test curve: learning rates must be strictly increasing")
    return lrs_a, losses_a


def _cut_nonfinite(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        cut = int(bad[0])
        if cut < MIN_POINTS:
            raise ConfigError(
                f"range-test curve has only {cut} finite losses before the first NaN/inf (at lr={lrs[cut]:.3g}); "
                f"need at least {MIN_POINTS}: lower start_lr or end_lr, or check the model and data"
            )
        return lrs[:cut], losses[:cut]
    return lrs, losses


def _running_median3(y: np.ndarray) -> np.ndarray:
    m = y.copy()
    if y.size >= 2:
        m[1] = 0.5 * (y[0] + y[1])
    if y.size >= 3:
        m[2:] = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
    return m


def _divergence_state(losses: np.ndarray, k: float, n_initial: int = _N_INITIAL):
    """Per-index arrays (running median m, running best, gap, threshold) of the rule of divergence_index."""
    y = np.asarray(losses, dtype=float)
    n = y.size
    m = _running_median3(y)
    best = np.minimum.accumulate(m)
    initial = float(np.median(y[: min(n_initial, n)]))
    d = np.abs(np.diff(y))
    noise = np.zeros(n)
    for i in range(2, n):  # running robust noise sd from first differences (trend-free)
        noise[i] = np.median(d[:i])
    noise /= 0.6745 * math.sqrt(2.0)
    gap = np.maximum(initial - best, _NOISE_FLOOR * noise)
    return m, best, gap, best + k * gap


def diverged_now(losses: npt.ArrayLike, k: float = DEFAULT_DIVERGENCE_K, *, n_initial: int = _N_INITIAL) -> bool:
    """Whether the rule of :func:`divergence_index` fires at the *last* point of ``losses`` (O(n), for online use).

    Assumes it did not fire earlier (as when called after every step of a range test).
    """
    y = np.asarray(losses, dtype=float).ravel()
    i = y.size - 1
    if i < 0:
        return False
    if not np.isfinite(y[i]):
        return True
    if i < n_initial:
        return False
    m = _running_median3(y)
    best = float(np.min(m))
    initial = float(np.median(y[:n_initial]))
    noise = float(np.median(np.abs(np.diff(y)))) / (0.6745 * math.sqrt(2.0))
    gap = max(initial - best, _NOISE_FLOOR * noise)
    return bool(m[i] > best + k * gap or y[i] > best + 2.0 * k * gap)


def divergence_index(losses: npt.ArrayLike, k: float = DEFAULT_DIVERGENCE_K, *, n_initial: int = _N_INITIAL) -> int | None:
    """Index of the first point at which a range test has diverged, or ``None``.

    The rule, evaluated at each ``i`` using only ``losses[:i+1]`` (so it can run online):

    * a non-finite ``losses[i]`` is divergence;
    * ``m_i = median(losses[i-2 : i+1])`` (median of the last three raw losses: one noisy batch cannot trigger);
    * ``initial = median(losses[:n_initial])``; ``best_i = min_{j<=i} m_j``;
    * ``noise_i = median(|diff(losses[:i+1])|) / (0.6745·sqrt 2)`` (robust batch-noise sd, trend-free);
    * ``gap_i = max(initial - best_i, 3·noise_i)`` (how far the loss has come down, at least the noise);
    * diverged at ``i >= n_initial`` if ``m_i > best_i + k·gap_i``, or if the single raw loss
      ``losses[i] > best_i + 2k·gap_i`` (an explosion stops one step earlier).

    Only differences of losses appear, divided by differences of losses, so the rule does not depend on the
    loss' sign convention, scale or offset.

    Example:
        >>> divergence_index([1.0, 1.0, 1.0, 1.0, 0.9, 0.5, 0.2, 0.1, 0.4, 3.0, 9.0])
        10
    """
    if k <= 0:
        raise ConfigError(f"divergence_k must be > 0, but got divergence_k={k!r}")
    y = np.asarray(losses, dtype=float).ravel()
    if y.size == 0:
        return None
    bad = np.flatnonzero(~np.isfinite(y))
    first_bad = int(bad[0]) if bad.size else None
    finite = y[:first_bad] if first_bad is not None else y
    if finite.size > n_initial:
        m, best, gap, threshold = _divergence_state(finite, k, n_initial)
        idx = np.arange(finite.size)
        hit = (idx >= n_initial) & ((m > threshold) | (finite > best + 2.0 * k * gap))
        if hit.any():
            return int(np.flatnonzero(hit)[0])
    return first_bad


def _prepare(lrs: npt.ArrayLike, losses: npt.ArrayLike, k: float = DEFAULT_DIVERGENCE_K) -> tuple[np.ndarray, np.ndarray]:
    lrs_a, losses_a = _validate(lrs, losses)
    lrs_a, losses_a = _cut_nonfinite(lrs_a, losses_a)
    div = divergence_index(losses_a, k)
    if div is not None and div + 1 >= MIN_POINTS:
        _, _, _, threshold = _divergence_state(losses_a[: div + 1], k)
        lrs_a = lrs_a[: div + 1]
        losses_a = np.minimum(losses_a[: div + 1], threshold[-1])
    return lrs_a, losses_a


# ----------------------------------------------------------------------------------------------------------------
# smoothing


def auto_width(lrs: npt.ArrayLike) -> float:
    """The default smoothing width (decades) for a curve sampled at ``lrs``: ``0.2·(25/rho)^(1/3)`` in [0.1, 0.5].

    ``rho = (n - 1) / log10(lrs[-1] / lrs[0])`` is the sampling density in points per decade. The variance of the
    local-linear slope estimate scales as ``noise² / (rho · h³)``; ``h ∝ rho^(-1/3)`` keeps it constant, so a
    short (sparse) range test is smoothed more than a long one. The reference, 0.2 decade at 25 points per decade
    (200 steps over 1e-7..10), is the best fixed width on the synthetic benchmark
    (``scripts/bench_range_test.py``); on real, sparser curves (ionosphere, 100 steps) it widens to ~0.25.
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    span = float(x[-1] - x[0])
    rho = (x.size - 1) / span if span > 0 else DENSITY_REF
    return float(np.clip(WIDTH_REF * (DENSITY_REF / rho) ** (1.0 / 3.0), WIDTH_MIN, WIDTH_MAX))


def _bandwidth(x: np.ndarray, width: float | None) -> float:
    if width is None:
        width = auto_width(10.0**x)
    # never narrower than 1.5 grid steps, or the local fit is under-determined
    return max(float(width), 1.5 * float(np.median(np.diff(x))))


def _local_poly(x: np.ndarray, y: np.ndarray, width: float, degree: int) -> tuple[np.ndarray, np.ndarray]:
    h = _bandwidth(x, width)
    u = (x[None, :] - x[:, None]) / h  # u[j, i] = (x_i - x_j) / h
    w = np.exp(-0.5 * u * u)
    p = degree + 1
    powers = np.stack([u**q for q in range(p)], axis=-1)  # (n, n, p)
    a = np.einsum("ji,jiq,jir->jqr", w, powers, powers)
    b = np.einsum("ji,jiq,i->jq", w, powers, y)
    a = a + 1e-12 * np.eye(p)[None] * a[:, :1, :1]
    beta = np.linalg.solve(a, b[..., None])[..., 0]
    return beta[:, 0], beta[:, 1] / h


def _smooth_xy(x: np.ndarray, y: np.ndarray, width: float | None, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """(values of the degree-``degree`` local fit, slopes of the local-linear fit)."""
    values, slopes = _local_poly(x, y, width, 1)
    if degree != 1:
        values = _local_poly(x, y, width, degree)[0]
    return values, slopes


def smooth(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    width: float | None = DEFAULT_WIDTH,
    degree: int = DEFAULT_DEGREE,
    slope: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Zero-phase (lag-free) smoothing of a loss curve in log-LR space.

    With ``x_i = log10(lrs_i)``, ``y_i = losses_i`` and ``h = max(width, 1.5·median(diff(x)))`` (decades;
    ``width=None``: :func:`auto_width`), at every
    ``x_j`` fit by weighted least squares a polynomial of degree ``p``::

        minimise_beta  sum_i  w_ij · (y_i - sum_{q=0..p} beta_q · ((x_i - x_j)/h)^q)^2,
        w_ij = exp(-((x_i - x_j) / h)^2 / 2)

    ``smoothed_j = beta_0`` of the fit with ``p = degree`` (default 1; 2 halves the left shift of the smoothed
    minimum next to a sharp divergence wall, ~0.35 -> ~0.18 decade on the benchmark curves, but doubles the
    variance of the values: on real ionosphere curves the std of the ``auto`` suggestion went from 0.10 to 0.15
    decade, so the default is 1); with ``slope=True`` also
    ``slope_j = beta_1 / h`` of the fit with ``p = 1``, the local estimate of ``d loss / d log10(lr)`` (inside a
    uniform grid the slopes of the local line and the local parabola are identical -- the symmetric kernel makes
    the quadratic term orthogonal to the linear one -- and at the ends the line's is much less noisy).

    The kernel is centred, so there is no lag; at the ends the kernel is one-sided but the local polynomial
    follows the trend, so the ends are not pulled towards the interior as with a plain moving average or an EMA
    (local polynomial regression is first-order unbiased at boundaries: a straight line is reproduced exactly,
    ends included). Inside a uniform grid the degree-1 value is exactly a Gaussian filter and its slope a
    derivative-of-Gaussian filter. Non-uniform grids need no special handling. Linear in ``y`` and exact for
    constants, hence ``smooth(a·y + b) = a·smooth(y) + b``.

    Non-finite losses are not allowed here (use :func:`suggest_lr`, which cuts the curve first).
    """
    if degree not in (1, 2):
        raise ConfigError(f"degree must be 1 or 2 (the smoothing polynomial), but got degree={degree!r}")
    if width is not None and not width > 0:
        raise ConfigError(f"width must be > 0 decades (or None: auto), but got width={width!r}")
    lrs_a, losses_a = _validate(lrs, losses)
    if not np.all(np.isfinite(losses_a)):
        raise ConfigError("smooth: losses must be finite (suggest_lr cuts the curve at the first NaN/inf)")
    values, slopes = _smooth_xy(np.log10(lrs_a), losses_a, width, degree)
    return (values, slopes) if slope else values


def smoothed_curve(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    width: float | None = DEFAULT_WIDTH,
    degree: int = DEFAULT_DEGREE,
    divergence_k: float = DEFAULT_DIVERGENCE_K,
) -> np.ndarray:
    """The smoothed curve the suggestions are computed from, aligned with ``lrs``.

    It is :func:`smooth` of the prepared curve (cut at the first NaN/inf and after divergence, clipped at the
    divergence threshold); points past the cut are NaN.
    """
    lrs_a, losses_a = _validate(lrs, losses)
    p_lrs, p_losses = _prepare(lrs_a, losses_a, divergence_k)
    out = np.full(lrs_a.size, np.nan)
    out[: p_lrs.size] = _smooth_xy(np.log10(p_lrs), p_losses, width, degree)[0]
    return out


# ----------------------------------------------------------------------------------------------------------------
# methods


def _vertex(x: np.ndarray, f: np.ndarray, i: int) -> float:
    """x of the vertex of the parabola through (x, f) at i-1, i, i+1 (clipped to [x[i-1], x[i+1]]); x[i] at ends."""
    if i <= 0 or i >= x.size - 1:
        return float(x[i])
    x0, x1, x2 = x[i - 1], x[i], x[i + 1]
    f0, f1, f2 = f[i - 1], f[i], f[i + 1]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    if den == 0:
        return float(x1)
    a = (x2 * (f1 - f0) + x1 * (f0 - f2) + x0 * (f2 - f1)) / den
    b = (x2 * x2 * (f0 - f1) + x1 * x1 * (f2 - f0) + x0 * x0 * (f1 - f2)) / den
    if a <= 0:
        return float(x1)
    return float(np.clip(-b / (2 * a), x0, x2))


def _steepest_x(x: np.ndarray, ds: np.ndarray, i_min: int, h: float) -> float:
    """Vertex of the least-squares parabola through the slope trough's lower half, on ``[0, i_min]``."""
    inner = np.flatnonzero((x[: i_min + 1] >= x[0] + h) & (x[: i_min + 1] <= x[-1] - h))
    if inner.size:
        i = int(inner[0] + np.argmin(ds[inner[0] : inner[-1] + 1]))
    else:
        i = int(np.argmin(ds[: i_min + 1]))
    if ds[i] >= 0:  # no descent at all: the first point
        return float(x[i])
    half = STEEPEST_FRACTION * ds[i]
    lo = i
    while lo > 0 and ds[lo - 1] <= half:
        lo -= 1
    hi = i
    while hi < i_min and ds[hi + 1] <= half:
        hi += 1
    if hi - lo >= 2:
        c2, c1, _ = np.polyfit(x[lo : hi + 1] - x[i], ds[lo : hi + 1], 2)
        if c2 > 0:
            return float(np.clip(x[i] - c1 / (2.0 * c2), x[lo], x[hi]))
    return _vertex(x, ds, i) if 0 < i < i_min else float(x[i])


def _longest_decreasing(s: np.ndarray) -> tuple[int, int]:
    """(first, last) index of the longest strictly decreasing subsequence of s (earliest-ending on ties)."""
    n = s.size
    length = np.ones(n, dtype=int)
    start = np.arange(n)
    for i in range(1, n):
        prev = np.flatnonzero(s[:i] > s[i])
        if prev.size:
            j = prev[np.argmax(length[prev])]
            length[i] = length[j] + 1
            start[i] = start[j]
    end = int(np.argmax(length))
    return int(start[end]), end


def _methods_x(x: np.ndarray, s: np.ndarray, ds: np.ndarray, h: float) -> dict[str, float]:
    i_min = int(np.argmin(s))
    # steepest, on [0, i_min]
    x_st = _steepest_x(x, ds, i_min, h)
    # minimum / 10
    x_min = _vertex(x, s, i_min)
    x_mn = min(max(x_min - 1.0, float(x[0])), float(x[-1]))
    # valley
    i0, i1 = _longest_decreasing(s)
    if i1 > i0:
        level = s[i0] - VALLEY_FRACTION * (s[i0] - s[i1])
        k = i0 + int(np.flatnonzero(s[i0 : i1 + 1] <= level)[0])
        if k > i0 and s[k - 1] != s[k]:
            t = (s[k - 1] - level) / (s[k - 1] - s[k])
            x_va = float(x[k - 1] + t * (x[k] - x[k - 1]))
        else:
            x_va = float(x[k])
    else:
        x_va = float(x[i0])
    x_auto = float(np.median([x_st, x_va, x_mn]))
    return {"steepest": x_st, "valley": x_va, "minimum": x_mn, "auto": x_auto}


def suggest_all(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    width: float | None = DEFAULT_WIDTH,
    degree: int = DEFAULT_DEGREE,
    divergence_k: float = DEFAULT_DIVERGENCE_K,
) -> dict[str, float]:
    """Every method's suggestion, ``{"steepest", "valley", "minimum", "auto"} -> lr`` (see the module docstring).

    Args:
        lrs: The learning rates of the range test, increasing.
        losses: The loss at each of them (NaN or inf where training diverged).
        width: The smoother's kernel width in decades of LR (None: :func:`auto_width`).
        degree: The degree of the local polynomial the smoother fits.
        divergence_k: How far above its best the loss must rise to count as diverged (:func:`divergence_index`).

    Returns:
        Each method's suggested learning rate, by method name.

    Raises:
        ConfigError: invalid curve (lengths, fewer than 5 points, non-positive or non-increasing LRs, fewer than
            5 finite losses before the first NaN/inf).
    """
    lrs_a, losses_a = _prepare(lrs, losses, divergence_k)
    x = np.log10(lrs_a)
    s, ds = _smooth_xy(x, losses_a, width, degree)
    lo, hi = float(lrs_a[0]), float(lrs_a[-1])
    h = _bandwidth(x, width)
    return {m: float(min(max(10.0**v, lo), hi)) for m, v in _methods_x(x, s, ds, h).items()}


def suggest_lr(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    method: Method = "auto",
    *,
    width: float | None = DEFAULT_WIDTH,
    degree: int = DEFAULT_DEGREE,
    divergence_k: float = DEFAULT_DIVERGENCE_K,
) -> float:
    """The suggested learning rate of one method (``"auto"``, ``"steepest"``, ``"valley"`` or ``"minimum"``).

    The result always lies within ``[lrs[0], lrs[-1]]`` of the usable (finite, pre-divergence) part of the curve.

    Args:
        lrs: The learning rates of the range test, increasing.
        losses: The loss at each of them (NaN or inf where training diverged).
        method: The rule: ``"auto"`` (the median of the three others), ``"steepest"``, ``"valley"`` or ``"minimum"``.
        width: The smoother's kernel width in decades of LR (None: :func:`auto_width`).
        degree: The degree of the local polynomial the smoother fits.
        divergence_k: How far above its best the loss must rise to count as diverged (:func:`divergence_index`).

    Returns:
        The suggested learning rate.

    Raises:
        ConfigError: unknown method, or an invalid curve (see :func:`suggest_all`).

    Example:
        >>> import numpy as np
        >>> lrs = np.logspace(-5, 0, 100)
        >>> losses = 1.0 - 0.5 * np.tanh(2 * (np.log10(lrs) + 3)) + np.where(lrs > 0.1, 10 * (lrs - 0.1), 0)
        >>> lr = suggest_lr(lrs, losses, "steepest")
        >>> 3e-4 < lr < 3e-3  # the steepest descent, near 1e-3
        True
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, but got method={method!r}")
    return suggest_all(lrs, losses, width=width, degree=degree, divergence_k=divergence_k)[method]

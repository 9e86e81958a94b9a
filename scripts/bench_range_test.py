"""Benchmark of the range-test suggestion: lrsearch's lag-free smoother vs the common EMA approach.

Synthetic mode (default): realistic range-test curves with a known steepest point. Each curve is sampled like a
real range test -- ``n ~ U{100..300}`` points log-uniform over ``[1e-7, 10]`` -- and is::

    L(x) = B + A·(1 - tanh((x - x0)/w))/2 + A·c·(exp((x - x_div)/s) - 1)·[x > x_div],   x = log10(lr)

with the descent centre ``x0 ~ U[-5, -1.5]``, half-width ``w ~ U[0.25, 0.75]`` (the descent, ~4w, spans 1-3
decades), divergence onset ``x_div = x0 + U[0.5, 1.5]`` decades, ``s ~ U[0.1, 0.3]``, ``c ~ U[0.5, 2]``,
``A ~ U[0.2, 3]``, ``B ~ U[0, 2]``, plus Gaussian batch noise of sd ``level·A``. The curve stops like a range
test does (:func:`lrsearch.suggest.divergence_index` with k=4, or at lr=10). The truth is the steepest point of
the noise-free curve before its minimum (fine grid). Errors are ``|log10(suggested / true)|`` in decades.

Baseline: EMA(beta=0.98) with bias correction ``avg_i = beta·avg_{i-1} + (1-beta)·loss_i``,
``smoothed_i = avg_i / (1 - beta^(i+1))`` (fastai, torch-lr-finder), then the argmin of ``np.gradient`` of the
smoothed curve (as torch-lr-finder's ``suggestion``, skip_start=10, skip_end=5), searched up to the smoothed
minimum like lrsearch (which only helps the baseline).

``--ionosphere``: the range test on the ionosphere MLP (Dense(34, relu) -> Dense(1, sigmoid), binary
crossentropy, Adam, batch 32) over 10 seeds; prints the std of log10(suggestion).

Run: ``.venv/bin/python scripts/bench_range_test.py [--seeds 200] [--width W] [--ionosphere]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lrsearch import suggest as S  # noqa: E402

LEVELS = (0.05, 0.1, 0.2)


def make_curve(rng: np.random.Generator, level: float):
    """One synthetic range test: (lrs, noisy losses, true steepest log10 lr)."""
    n = int(rng.integers(100, 301))
    x_all = np.linspace(-7.0, 1.0, n)
    x0 = rng.uniform(-5.0, -1.5)
    w = rng.uniform(0.25, 0.75)
    x_div = x0 + rng.uniform(0.5, 1.5)
    s = rng.uniform(0.1, 0.3)
    c = rng.uniform(0.5, 2.0)
    a = rng.uniform(0.2, 3.0)
    b = rng.uniform(0.0, 2.0)

    def clean(x):
        z = np.clip((x - x_div) / s, None, 50.0)
        return b + a * (1 - np.tanh((x - x0) / w)) / 2 + a * c * np.where(x > x_div, np.expm1(z), 0.0)

    fine = np.linspace(-7.0, 1.0, 80001)
    lf = clean(fine)
    i_min = int(np.argmin(lf))
    true_x = float(fine[int(np.argmin(np.gradient(lf, fine)[: i_min + 1]))])
    y = clean(x_all) + rng.normal(0.0, level * a, n)
    div = S.divergence_index(y, 4.0)
    end = n if div is None else div + 1
    return 10.0 ** x_all[:end], y[:end], true_x


def ema_steepest(lrs: np.ndarray, losses: np.ndarray, beta: float = 0.98, skip_start: int = 10, skip_end: int = 5):
    """The common approach: bias-corrected EMA, then the steepest np.gradient point before the EMA minimum."""
    avg = 0.0
    sm = np.empty_like(losses)
    for i, v in enumerate(losses):
        avg = beta * avg + (1 - beta) * v
        sm[i] = avg / (1 - beta ** (i + 1))
    lo, hi = skip_start, max(skip_start + 2, len(losses) - skip_end)
    lr_w, sm_w = lrs[lo:hi], sm[lo:hi]
    i_min = int(np.argmin(sm_w))
    g = np.gradient(sm_w)
    return float(lr_w[int(np.argmin(g[: i_min + 1]))])


def run_synthetic(seeds: int, width: float, degree: int) -> bool:
    wlabel = "auto (lrsearch.suggest.auto_width)" if width is None else f"{width} decades"
    print(f"synthetic: {seeds} seeds x {len(LEVELS)} noise levels, smoothing width {wlabel}, degree {degree}")
    header = f"{'noise sd/A':>10} | {'lrsearch median':>15} {'IQR':>15} | {'EMA median':>10} {'IQR':>15} | {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ok = True
    all_ours, all_ema = [], []
    t0 = time.perf_counter()
    for level in LEVELS:
        ours, ema = [], []
        for seed in range(seeds):
            rng = np.random.default_rng([seed, int(level * 1000)])
            lrs, y, tx = make_curve(rng, level)
            ours.append(abs(math.log10(S.suggest_lr(lrs, y, "steepest", width=width, degree=degree)) - tx))
            ema.append(abs(math.log10(ema_steepest(lrs, y)) - tx))
        ours_a, ema_a = np.array(ours), np.array(ema)
        all_ours.append(ours_a)
        all_ema.append(ema_a)
        q_o, q_e = np.percentile(ours_a, [25, 50, 75]), np.percentile(ema_a, [25, 50, 75])
        ratio = q_e[1] / q_o[1]
        print(
            f"{level:>10.2f} | {q_o[1]:>15.3f} {f'[{q_o[0]:.3f}, {q_o[2]:.3f}]':>15} | {q_e[1]:>10.3f} "
            f"{f'[{q_e[0]:.3f}, {q_e[2]:.3f}]':>15} | {ratio:>6.1f}"
        )
        ok_med = q_o[1] < 0.1
        ok_ratio = ratio >= 5
        ok = ok and ok_med and ok_ratio
    o, e = np.concatenate(all_ours), np.concatenate(all_ema)
    print(f"{'all':>10} | {np.median(o):>15.3f} {'':>15} | {np.median(e):>10.3f} {'':>15} | {np.median(e) / np.median(o):>6.1f}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    for level, oa, ea in zip(LEVELS, all_ours, all_ema):
        med, r = float(np.median(oa)), float(np.median(ea) / np.median(oa))
        print(f"verdict noise {level:.2f}: lrsearch median {med:.3f} < 0.1 decade: {'PASS' if med < 0.1 else 'FAIL'}; "
              f"EMA/lrsearch = {r:.1f} >= 5: {'PASS' if r >= 5 else 'FAIL'}")
    return ok


def load_ionosphere(path: str) -> tuple[np.ndarray, np.ndarray]:
    raw = np.genfromtxt(path, delimiter=",", dtype=str)
    x = raw[:, :-1].astype(np.float32)
    y = (raw[:, -1] == "g").astype(np.float32)[:, None]
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return x.astype(np.float32), y


def run_ionosphere(seeds: int, data: str) -> bool:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from lrsearch.rangetest import range_test

    x, y = load_ionosphere(data)
    print(f"ionosphere: {x.shape[0]} rows, MLP 34-34-1, Adam, batch 32, backend {keras.backend.backend()}, {seeds} seeds")
    sugg, times, reasons, steps = [], [], [], []
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((x.shape[1],)), keras.layers.Dense(34, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
        )
        t0 = time.perf_counter()
        res = range_test(model, x, y, loss="binary_crossentropy", seed=seed)
        times.append(time.perf_counter() - t0)
        sugg.append(res.suggestion)
        reasons.append(res.stop_reason)
        steps.append(len(res.lrs))
        s = res.suggestions
        print(
            f"  seed {seed}: suggestion {res.suggestion:.3g} (steepest {s['steepest']:.3g}, valley {s['valley']:.3g}, "
            f"minimum {s['minimum']:.3g}), {len(res.lrs)} steps, {res.stop_reason}, {times[-1]:.2f} s"
        )
    lg = np.log10(sugg)
    std = float(np.std(lg, ddof=1))
    print(f"median suggestion {10 ** np.median(lg):.3g}; std of log10(suggestion) = {std:.3f} decades; "
          f"median time {np.median(times):.2f} s")
    print(f"verdict ionosphere: std {std:.3f} < 0.15 decade: {'PASS' if std < 0.15 else 'FAIL'}")
    return std < 0.15


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="noise seeds per level (synthetic, default 200) or "
                   "model seeds (ionosphere, default 10)")
    p.add_argument("--width", type=float, default=S.DEFAULT_WIDTH, help="fixed smoothing width in decades (default: auto)")
    p.add_argument("--degree", type=int, default=S.DEFAULT_DEGREE, choices=(1, 2))
    p.add_argument("--ionosphere", action="store_true", help="range test on the ionosphere MLP instead")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "lrsearch" / "datasets" / "ionosphere.csv"))
    args = p.parse_args(argv)
    print("$ " + " ".join([os.path.basename(sys.executable), *sys.argv]))
    if args.ionosphere:
        ok = run_ionosphere(args.seeds or 10, args.data)
    else:
        ok = run_synthetic(args.seeds or 200, args.width, args.degree)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

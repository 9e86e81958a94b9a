"""Benchmark: one epoch of the MNIST CNN on a TensorFlow CPU, three ways, side by side in one process.

* ``graph``: lrsearch's trial program as one TensorFlow graph (``tf.function`` without XLA): what the engine now
  runs for a model with convolutions on a CPU (``lrsearch.engine._tf.use_xla``);
* ``xla``: the same program compiled by XLA (``jit_compile=True``): what the engine ran before, and still runs for
  dense networks and on GPUs;
* ``fit``: ``model.fit`` for one epoch with validation on a newly built model (as a per-trial loop does, so its
  first and steady calls both trace), what users write today (Keras's default ``jit_compile``).

Workload: the bundled MNIST t10k set as 8000 train / 1800 validation rows (the issue's split), the default
Conv16/32/64 CNN, Adam, batch 128. Rounds alternate the three; each round clears the engine's caches, so every
``graph``/``xla`` first call pays its compile. Printed per variant: the median first call (compile + one epoch)
and the median steady epoch (a second training from cached weights), and the ratios of the steady epochs.

Run: ``TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python scripts/bench_cpu_conv.py [--rounds 3]`` (~2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the three variants (default 3)")
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    from lrsearch import engine
    from lrsearch.data import load_dataset
    from lrsearch.engine import _tf
    from lrsearch.engine.fit import compile_for_task
    from lrsearch.models import ModelSpec, make_factory
    from lrsearch.optimizers import make_optimizer, optimizer_spec
    from lrsearch.schedules import schedule_from_config

    if keras.backend.backend() != "tensorflow" or tf.config.list_logical_devices("GPU"):
        print("bench_cpu_conv: needs the TensorFlow backend on a CPU", file=sys.stderr)
        return 2
    ds = load_dataset("mnist", seed=0, split=(0.8, 0.18, 0.02))
    factory = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
    opt = optimizer_spec("adam")
    schedule = schedule_from_config({"type": "constant", "initial_lr": 1e-3})
    print(f"cores: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}; "
          f"tensorflow {tf.__version__}, keras {keras.__version__}")
    print(f"workload: MNIST CNN, {len(ds.x_train)} train / {len(ds.x_val)} val rows, Adam, batch 128, one epoch\n",
          flush=True)

    original = _tf.use_xla
    first: dict[str, list[float]] = {"graph": [], "xla": [], "fit": []}
    steady: dict[str, list[float]] = {"graph": [], "xla": [], "fit": []}
    losses: dict[str, float] = {}
    for r in range(args.rounds):
        for variant in ("graph", "xla", "fit"):
            engine.clear_caches()
            times = []
            for _ in range(2):
                began = time.perf_counter()
                if variant == "fit":
                    model = factory(0)
                    compile_for_task(model, make_optimizer(opt, 1e-3), ds.task)
                    h = model.fit(ds.x_train, ds.y_train, batch_size=128, epochs=1, verbose=0,
                                  validation_data=(ds.x_val, ds.y_val), shuffle=False)
                    losses[variant] = h.history["val_loss"][-1]
                else:
                    _tf.use_xla = lambda model, x, v=variant: v == "xla"
                    try:
                        res = engine.train(factory, ds, schedule, optimizer=opt, epochs=1, batch_size=128, seed=0,
                                           shuffle=False, engine="fast")
                    finally:
                        _tf.use_xla = original
                    losses[variant] = res.history["val_loss"][-1]
                times.append(time.perf_counter() - began)
            first[variant].append(times[0])
            steady[variant].append(times[1])
            print(f"round {r + 1} {variant:<5}: first call {times[0]:6.2f} s, steady epoch {times[1]:6.2f} s, "
                  f"val_loss {losses[variant]:.5f}", flush=True)
    med = {v: statistics.median(steady[v]) for v in steady}
    print("\n| variant | first call s (median) | steady epoch s (median) |\n| --- | --- | --- |")
    for v in ("graph", "xla", "fit"):
        print(f"| {v} | {statistics.median(first[v]):.2f} | {med[v]:.2f} |")
    print(f"\nsteady epoch: graph is {med['xla'] / med['graph']:.1f}x faster than xla and "
          f"{med['fit'] / med['graph']:.1f}x faster than model.fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the trial engine on a TensorFlow CPU across model types, as it chooses / forced XLA / forced graph /
``model.fit``, side by side in one process; each variant's first run is also its equivalence check against fit.

Models (real data: MNIST rows as 28-step sequences, MNIST pixels quantised to 16 tokens, ionosphere): LSTM(32),
GRU(32), Conv1D x2 + GlobalMaxPooling1D, Embedding + GlobalAveragePooling1D, an ionosphere MLP with BatchNormalization
and Dropout, a Dense 512-512 MLP on 784 pixels, the default CNN. 2000 train / 500 validation rows, batch 64
(ionosphere: 245 / 53, batch 32), Adam, cosine from 0.01, shuffle=False. Per variant: the steady epoch (a second
call, program cached), the compile (first epoch minus steady), and the largest relative difference from fit in
per-epoch losses. Rounds rotate the order of the variants. This is what ``lrsearch.engine._tf.use_xla`` rests on
(docs/benchmarks.md, "Convolutions and random layers on a CPU").

Run: ``TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python scripts/bench_cpu_models.py [--models lstm,...] [--rounds 3]
[--warm-epochs lstm=10,...] [--out results.jsonl]`` (~25 minutes on 2 cores for all models, 3 rounds).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

import lrsearch.engine._tf as tfeng  # noqa: E402
from lrsearch import engine  # noqa: E402
from lrsearch.data import load_dataset  # noqa: E402
from lrsearch.models import ModelSpec, make_factory  # noqa: E402
from lrsearch.optimizers import optimizer_spec  # noqa: E402
from lrsearch.schedules import schedule_from_config  # noqa: E402

ORIGINAL_USE_XLA = tfeng.use_xla
RTOL = 2e-4
N_TRAIN, N_VAL = 2000, 500


def sliced(ds, f=lambda a: a):
    return dataclasses.replace(ds, x_train=f(ds.x_train[:N_TRAIN]), y_train=ds.y_train[:N_TRAIN],
                               x_val=f(ds.x_val[:N_VAL]), y_val=ds.y_val[:N_VAL],
                               x_test=f(ds.x_test[:N_VAL]), y_test=ds.y_test[:N_VAL])


def tokens(a):  # MNIST pixels in [0, 1] -> integer tokens 0..15, a 784-token sequence per image
    return np.minimum((a.reshape(len(a), 784) * 16).astype(np.int32), 15)


def factory_of(build):
    def factory(seed):
        keras.utils.set_random_seed(seed)
        return build()
    return factory


def make_cases():
    mnist = load_dataset("mnist", seed=0)
    seq = sliced(mnist, lambda a: a.reshape(len(a), 28, 28))
    flat = sliced(mnist, lambda a: a.reshape(len(a), 784))
    tok = sliced(mnist, tokens)
    img = sliced(mnist)
    iono = load_dataset("ionosphere", seed=0)

    def seq_model(*body):
        return lambda: keras.Sequential([keras.Input((28, 28)), *[b() for b in body],
                                         layers.Dense(10, activation="softmax")])

    cases = {
        "lstm": (seq, seq_model(lambda: layers.LSTM(32)), 64, 2),
        "gru": (seq, seq_model(lambda: layers.GRU(32)), 64, 2),
        "conv1d": (seq, seq_model(lambda: layers.Conv1D(32, 5, activation="relu"),
                                  lambda: layers.Conv1D(64, 5, activation="relu"),
                                  lambda: layers.GlobalMaxPooling1D()), 64, 2),
        "embedding": (tok, lambda: keras.Sequential([keras.Input((784,), dtype="int32"), layers.Embedding(16, 16),
                                                     layers.GlobalAveragePooling1D(),
                                                     layers.Dense(10, activation="softmax")]), 64, 2),
        "mlp_bn_dropout": (iono, lambda: keras.Sequential([
            keras.Input((34,)), layers.Dense(64), layers.BatchNormalization(), layers.Activation("relu"),
            layers.Dropout(0.3), layers.Dense(32), layers.BatchNormalization(), layers.Activation("relu"),
            layers.Dropout(0.3), layers.Dense(1, activation="sigmoid")]), 32, 10),
        "mlp_512": (flat, lambda: keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                                                    layers.Dense(512, activation="relu"),
                                                    layers.Dense(10, activation="softmax")]), 64, 2),
        "default_cnn": (img, None, 64, 2),
    }
    out = {}
    for name, (ds, build, bs, epochs) in cases.items():
        if build is None:
            fac = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
        else:
            fac = factory_of(build)
        out[name] = (ds, fac, bs, epochs)
    return out


SCHEDULE = schedule_from_config({"type": "cosine", "initial_lr": 0.01, "decay_epochs": 6, "alpha": 0.1})
OPT = optimizer_spec("adam")
MODES = {"now": ORIGINAL_USE_XLA, "xla": lambda m, x: True, "graph": lambda m, x: False}


def timed_train(ds, fac, bs, epochs, variant, epochs_per_call):
    stamps = []
    kw = dict(optimizer=OPT, epochs=epochs, batch_size=bs, seed=1, shuffle=False,
              report=lambda e, v: stamps.append(time.perf_counter()))
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        if variant == "fit":
            r = engine.train(fac, ds, SCHEDULE, engine="fit", **kw)
        else:
            r = engine.train(fac, ds, SCHEDULE, engine="auto", epochs_per_call=epochs_per_call, **kw)
    t1 = time.perf_counter()
    return r, t0, stamps, t1, err.getvalue().strip()


def run_variant(name, ds, fac, bs, epochs, variant, warm_epochs):
    tfeng.use_xla = MODES.get(variant, ORIGINAL_USE_XLA)
    engine.clear_caches()
    try:
        # cold call: one epoch per compiled call, so the first report comes after compile + 1 epoch
        r1, t0, s1, e1, notice1 = timed_train(ds, fac, bs, epochs, variant, 1)
        xla = sorted({p.xla for p in engine._PROGRAMS.values()}) if variant != "fit" else None
        # warm call: the program is cached (fast); fit rebuilds and retraces every call
        r2, u0, s2, e2, notice2 = timed_train(ds, fac, bs, warm_epochs, variant, warm_epochs)
    finally:
        tfeng.use_xla = ORIGINAL_USE_XLA
    if variant == "fit" or r2.engine != "fast":
        steady = statistics.median(np.diff(s1).tolist() + np.diff(s2).tolist())  # epochs after the first
    else:
        steady = (e2 - u0) / warm_epochs  # one compiled call of `warm_epochs` epochs
    first = s1[0] - t0
    return {"model": name, "variant": variant, "engine": r1.engine, "xla": xla, "first_epoch_s": first,
            "compile_s": first - steady, "steady_epoch_s": steady, "cold_total_s": e1 - t0,
            "warm_total_s": e2 - u0, "notice": notice1 or notice2,
            "history": r1.history, "weights": [w.tolist() for w in r1.weights] if variant == "fit" else None,
            "_weights": r1.weights, "history_warm": r2.history}


def rel_diff(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="lstm,gru,conv1d,embedding,mlp_bn_dropout,mlp_512,default_cnn")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default="now,xla,graph,fit")
    ap.add_argument("--out", default="bench_cpu_models.jsonl", help="JSON lines, appended")
    ap.add_argument("--warm-epochs", default="", help="name=E,... epochs of the warm (timing) call")
    args = ap.parse_args()
    cases = make_cases()
    variants = args.variants.split(",")
    warm = {k: int(v) for k, v in (kv.split("=") for kv in args.warm_epochs.split(",") if kv)}
    rows = []
    with open(args.out, "a") as fh:
        for name in args.models.split(","):
            ds, fac, bs, epochs = cases[name]
            print(f"== {name}: x_train {ds.x_train.shape} {ds.x_train.dtype}, batch {bs}, {epochs} epochs/call",
                  flush=True)
            per = {}
            for rnd in range(args.rounds):
                order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]  # rotate the order
                for v in order:
                    row = run_variant(name, ds, fac, bs, epochs, v, warm.get(name, epochs))
                    row["round"] = rnd
                    per.setdefault(v, []).append(row)
                    print(f"  r{rnd} {v:5s} engine={row['engine']} xla={row['xla']} first={row['first_epoch_s']:.2f}s"
                          f" steady={row['steady_epoch_s']:.3f}s/epoch {row['notice'][:200]}", flush=True)
                    # equivalence of this run against the fit run of the same round (or the first fit run)
                    out = {k: v2 for k, v2 in row.items() if k not in ("_weights", "weights")}
                    fh.write(json.dumps(out) + "\n")
                    fh.flush()
            ref = per.get("fit", [None])[0]
            for v, rs in per.items():
                summary = {"model": name, "variant": v, "engine": rs[0]["engine"], "xla": rs[0]["xla"],
                           "steady_epoch_s": statistics.median(r["steady_epoch_s"] for r in rs),
                           "compile_s": statistics.median(r["compile_s"] for r in rs),
                           "steady_all": [round(r["steady_epoch_s"], 4) for r in rs],
                           "compile_all": [round(r["compile_s"], 3) for r in rs],
                           "notice": rs[0]["notice"]}
                if ref is not None and v != "fit":
                    keys = [k for k in ref["history"] if k in rs[0]["history"]]
                    d = {k: rel_diff(rs[0]["history"][k], ref["history"][k]) for k in keys}
                    ok = all(np.allclose(rs[0]["history"][k], ref["history"][k], rtol=RTOL, atol=1e-6)
                             for k in keys)
                    wd = max(float(np.max(np.abs(a - b))) for a, b in zip(rs[0]["_weights"], ref["_weights"]))
                    wok = all(np.allclose(a, b, rtol=1e-3, atol=1e-5)
                              for a, b in zip(rs[0]["_weights"], ref["_weights"]))
                    summary.update(equiv_ok=ok, weights_ok=wok, max_rel={k: float(f"{x:.2e}") for k, x in d.items()},
                                   max_weight_abs_diff=float(f"{wd:.2e}"),
                                   loss=[round(x, 6) for x in rs[0]["history"]["loss"]],
                                   fit_loss=[round(x, 6) for x in ref["history"]["loss"]])
                    # same variant, repeat runs: deterministic?
                    summary["repeat_identical"] = all(r["history"] == rs[0]["history"] for r in rs)
                rows.append(summary)
                print("  SUMMARY", json.dumps(summary), flush=True)
    print("\n| model | variant | engine | xla | steady epoch s | compile s | max rel diff from fit |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        diff = max(r["max_rel"].values()) if "max_rel" in r else None
        print(f"| {r['model']} | {r['variant']} | {r['engine']} | {r['xla']} | {r['steady_epoch_s']:.3f} | "
              f"{r['compile_s']:.2f} | {'-' if diff is None else f'{diff:.1e}'} |")


if __name__ == "__main__":
    main()

"""How far mixed precision moves training from float32: the measurement behind issue 5's ``--mixed-precision``.

The issue asks for mixed precision on GPU *if it keeps results within the engine's equivalence tolerance*
(float reordering only: per-epoch losses within rtol 2e-4 of ``model.fit`` in float32). This trains the ionosphere
MLP with ``model.fit`` (Adam 0.01, batch 32, 30 epochs, no shuffling, seed 0) under ``float32``, ``mixed_bfloat16``
and ``mixed_float16`` (output layer in float32, as Keras recommends) and prints the largest relative difference of
the per-epoch training and validation losses from the float32 run.

Usage: ``KERAS_BACKEND=jax python scripts/check_mixed_precision.py`` (any backend; a GPU is not needed: the
rounding is the same arithmetic).
"""

from __future__ import annotations

import numpy as np

RTOL = 2e-4  # the engine's loss tolerance (tests/test_engine.py)


def run(policy: str) -> tuple[np.ndarray, np.ndarray, float]:
    import keras

    from lrsearch.data import load_dataset

    ds = load_dataset("ionosphere")
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((34,)), keras.layers.Dense(34, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(ds.x_train, ds.y_train, batch_size=32, epochs=30, shuffle=False, verbose=0,
                  validation_data=(ds.x_val, ds.y_val))
    return np.array(h.history["loss"]), np.array(h.history["val_loss"]), float(h.history["val_accuracy"][-1])


def main() -> int:
    import keras

    base = run("float32")
    print(f"backend {keras.backend.backend()}; tolerance rtol {RTOL:g}")
    for policy in ("mixed_bfloat16", "mixed_float16"):
        loss, val, acc = run(policy)
        d_loss = float(np.max(np.abs(loss - base[0]) / np.abs(base[0])))
        d_val = float(np.max(np.abs(val - base[1]) / np.abs(base[1])))
        verdict = "within" if max(d_loss, d_val) <= RTOL else "OUTSIDE"
        print(f"{policy:15s} max rel diff: training loss {d_loss:.2e}, validation loss {d_val:.2e} ({verdict} the "
              f"tolerance); final val_loss {val[-1]:.4f} vs {base[1][-1]:.4f}, val_accuracy {acc:.4f} vs {base[2]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

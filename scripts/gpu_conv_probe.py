"""Probe: how should a population of small CNNs compute its convolutions on a GPU?

``jax.vmap`` over members turns each convolution into a grouped convolution (one group per member), and its weight
gradient into a ``batch_group_count`` convolution. This script times one epoch (63 steps of batch 128, the MNIST
CNN Conv16/32/64 of ``lrsearch.models``, plain SGD) for P members at once, side by side in one process, with the
convolutions computed four ways:

* ``vmap-conv``: ``lax.conv_general_dilated`` under ``vmap`` (what the engine does through Keras today);
* ``slices``: image patches from 9 shifted slices and a matmul (backward: pads and matmuls);
* ``conv+wgrad``: the convolution for the forward pass and the input gradient, the weight gradient as a patches
  matmul (``jax.custom_vjp``);
* ``patches-op``: ``lax.conv_general_dilated_patches`` and a matmul (session 5's dropped attempt).

``--pool reshape`` computes the 2×2 max pooling as a reshape and a max instead of ``lax.reduce_window`` (whose
gradient is XLA's select-and-scatter).

Prints ms per step, member-steps per second and the ratio to ``vmap-conv``, for each P. Pure JAX, no Keras: it
tells whether an engine change is worth making before making it.

Run (GPU machine): ``python3 scripts/gpu_conv_probe.py [--populations 1,16,64] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
LAYERS = [(1, 16, "VALID"), (16, 32, "SAME"), (32, 64, "SAME")]


def _pad(x, padding):
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))) if padding == "SAME" else x


def _patches(x, padding):
    """(N, H, W, C) -> (N, H', W', 9C), channel order (i, j, c) as ``w.reshape(9C, O)`` of an HWIO kernel."""
    x = _pad(x, padding)
    h, w = x.shape[1] - 2, x.shape[2] - 2
    return jnp.concatenate([x[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)], axis=-1)


def conv_lax(x, w, padding):
    return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=DN)


def conv_slices(x, w, padding):
    return jnp.einsum("nhwk,ko->nhwo", _patches(x, padding), w.reshape(-1, w.shape[-1]))


def conv_patches_op(x, w, padding):
    p = lax.conv_general_dilated_patches(x, (3, 3), (1, 1), padding, dimension_numbers=DN)
    # patches op orders channels (c, i, j): reorder the kernel to match
    k = jnp.transpose(w, (2, 0, 1, 3)).reshape(-1, w.shape[-1])
    return jnp.einsum("nhwk,ko->nhwo", p, k)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_wgrad(x, w, padding):
    return conv_lax(x, w, padding)


def _conv_wgrad_fwd(x, w, padding):
    return conv_lax(x, w, padding), (x, w)


def _conv_wgrad_bwd(padding, res, g):
    x, w = res
    _, vjp_x = jax.vjp(lambda x_: conv_lax(x_, w, padding), x)
    (dx,) = vjp_x(g)
    dw = jnp.einsum("nhwk,nhwo->ko", _patches(x, padding), g).reshape(w.shape)
    return dx, dw


conv_wgrad.defvjp(_conv_wgrad_fwd, _conv_wgrad_bwd)

CONVS = {"vmap-conv": conv_lax, "slices": conv_slices, "conv+wgrad": conv_wgrad, "patches-op": conv_patches_op}


def init(key):
    params = []
    for cin, cout, _ in LAYERS:
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (3, 3, cin, cout)) * (2 / (9 * cin)) ** 0.5, jnp.zeros((cout,))))
    key, k = jax.random.split(key)
    params.append((jax.random.normal(k, (576, 10)) * (1 / 576) ** 0.5, jnp.zeros((10,))))
    return params


def pool_window(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pool_reshape(x):
    """2x2/2 VALID max pooling as a reshape and a max: its gradient is a mask, not select-and-scatter."""
    n, h, w, c = x.shape
    h, w = h // 2, w // 2
    return jnp.max(x[:, :2 * h, :2 * w, :].reshape(n, h, 2, w, 2, c), axis=(2, 4))


POOL = {"window": pool_window}


def forward(conv, params, x):
    for (w, b), (_, _, padding) in zip(params[:3], LAYERS):
        x = jax.nn.relu(conv(x, w, padding) + b)
        x = POOL["window"](x)
    w, b = params[3]
    return x.reshape(x.shape[0], -1) @ w + b


def epoch_fn(conv):
    def loss(params, xb, yb):
        logits = forward(conv, params, xb)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))

    def member(params, lr, xs, ys):
        def step(p, batch):
            xb, yb = batch
            val, g = jax.value_and_grad(loss)(p, xb, yb)
            return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g), val

        return lax.scan(step, params, (xs, ys))

    return jax.jit(jax.vmap(member, in_axes=(0, 0, None, None)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--populations", default="1,16,64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(CONVS))
    ap.add_argument("--pool", choices=["window", "reshape"], default="window",
                    help="max pooling as lax.reduce_window (Keras's) or as a reshape and a max")
    args = ap.parse_args()
    POOL["window"] = pool_window if args.pool == "window" else pool_reshape
    print(f"jax {jax.__version__} on {jax.devices()}; pooling: {args.pool}")
    rng = np.random.default_rng(0)
    steps, bs = 63, 128
    xs = jnp.asarray(rng.random((steps, bs, 28, 28, 1), np.float32))
    ys = jnp.asarray(rng.integers(0, 10, (steps, bs)), jnp.int32)
    x1 = xs[0]
    ref = {}
    for p in map(int, args.populations.split(",")):
        params = jax.vmap(init)(jax.random.split(jax.random.PRNGKey(0), p))
        lrs = jnp.full((p,), 0.01, jnp.float32)
        base = None
        for name in args.variants.split(","):
            conv = CONVS[name]
            # same gradients as vmap-conv (a wrong variant would be fast for nothing)
            g = jax.grad(lambda q: jnp.sum(forward(conv, q, x1[:8]) ** 2))(init(jax.random.PRNGKey(1)))
            if name == "vmap-conv":
                ref = g
            err = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12))
                      for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(ref)))
            fn = epoch_fn(conv)
            t0 = time.perf_counter()
            out = fn(params, lrs, xs, ys)
            jax.block_until_ready(out)
            compile_s = time.perf_counter() - t0
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(params, lrs, xs, ys))
                times.append(time.perf_counter() - t0)
            ms = 1e3 * min(times) / steps
            base = base or ms
            print(f"P={p:4d} {name:<11} {ms:8.3f} ms/step  {p * 1e3 / ms:9.0f} member-steps/s  "
                  f"x{base / ms:5.2f} vs vmap-conv  compile {compile_s:5.1f} s  grad rel.err {err:.1e}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# GPU check: on a CUDA machine with the wheels carried in .gpu-wheels (see ../shared/scripts/gpu-wheels.sh, run on
# the development machine first), install lrsearch, run the test suite under KERAS_BACKEND=jax, then a short MNIST
# search, and print the device, trials per second and the best validation accuracy.
#
#   bash scripts/gpu_check.sh            # on the GPU machine, in the repository root
#
# Exit code: non-zero if any step fails, or if JAX does not see a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PIP_DISABLE_PIP_VERSION_CHECK=1
WHEELS=${WHEELS:-.gpu-wheels}
PY=${PY:-python3}

if [ -d "$WHEELS" ]; then
  $PY -m pip install -q --no-index --find-links "$WHEELS" keras optuna keras-tuner optuna-dashboard jsonschema \
    pyarrow psycopg psycopg-binary 2>/dev/null \
    || $PY -m pip install -q --no-index --find-links "$WHEELS" keras optuna keras-tuner optuna-dashboard
  $PY -m pip install -q --no-deps --no-build-isolation -e .
fi

echo "== device"
$PY - <<'EOF'
import jax, keras
devs = jax.devices()
print("jax", jax.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend(), "|", devs)
if not any(d.platform == "gpu" for d in devs):
    raise SystemExit("no GPU visible to JAX")
EOF

echo "== test suite (KERAS_BACKEND=jax; browser and PostgreSQL tests skip here)"
# Several test processes share the GPU: each takes memory as it needs it instead of 75% up front.
xdist=()
if $PY -c "import xdist" 2>/dev/null; then xdist=(-n "${GPU_CHECK_WORKERS:-8}"); fi
tests_rc=0
XLA_PYTHON_CLIENT_PREALLOCATE=false $PY -m pytest -m "not slow" -q -p no:cacheprovider "${xdist[@]}" \
  --ignore=tests/test_dashboard.py --deselect tests/test_workers.py::test_three_workers_on_postgresql \
  || tests_rc=$?  # the search below still runs, so one run shows both; the exit code keeps the failure

echo "== MNIST search on the GPU"
work=$(mktemp -d)
( cd "$work" && /usr/bin/time -f "%e s wall" $PY -m lrsearch find --data mnist --trials 16 --epochs 10 \
    --batch-size 128 --json > find.json )
$PY - "$work/find.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["trials"]
print(f"device: {r['device']}")
print(f"trials: {t['complete']} complete, {t['pruned']} pruned, {t['failed']} failed")
print(f"best val_accuracy: {r['metrics']['val_accuracy']:.4f}  test_accuracy: {r['metrics']['test_accuracy']:.4f}")
print(f"trials/s (search phase): {r.get('timing', {}).get('trials_per_second', 'n/a')}")
EOF
if [ "$tests_rc" != 0 ]; then echo "gpu_check: the test suite failed (exit $tests_rc)"; exit "$tests_rc"; fi
echo "gpu_check: passed"

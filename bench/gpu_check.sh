#!/usr/bin/env bash
# The CUDA path in one go, on a machine with one NVIDIA GPU; prints one JSON line.
#
#   bash bench/gpu_check.sh [all|tests|bench]
#
# tests: the pytest tests marked `gpu` (every model trains on CUDA for 2 epochs, resume,
#        a CUDA out-of-memory batch, --ddp with nccl on one process, --compile, and the
#        app's endpoints serving a CUDA-trained model);
# bench: bench/train_speed.py --device cuda --compile --cuda-graphs against the pytorch/examples loop
#        on the same card (Fashion-MNIST from $FASHION_ROOT, default Debian's folder).
# Needs the project's Python packages (requirements*.txt, or this repo on PYTHONPATH).
# Takes about 5 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
part="${1:-all}"
fashion="${FASHION_ROOT:-/usr/share/datasets/fashion-mnist}"
log="${GPU_CHECK_LOG:-$(mktemp)}"
started=$(date +%s)
tests="null"
bench="null"
if [ "$part" != "bench" ]; then
  python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider -o addopts="" -rs >"$log" 2>&1
  tests=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$(grep -E '(passed|failed|skipped|error)' "$log" | tail -1)")
fi
if [ "$part" != "tests" ]; then
  if [ -d "$fashion" ]; then
    bench=$(python3 bench/train_speed.py --device cuda --compile --cuda-graphs --repeats 2 --data-root "$fashion" 2>>"$log" \
            | tail -1)
    [ -n "$bench" ] || bench='{"error": "train_speed failed: see the log"}'
  else
    bench='{"skipped": "no Fashion-MNIST idx files in FASHION_ROOT"}'
  fi
fi
python3 - "$tests" "$bench" "$started" "$log" <<'PY'
import json, sys, time
import torch
tests, bench, started, log = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(json.dumps({"card": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                  "torch": torch.__version__, "tests": tests, "train_speed": bench,
                  "seconds": round(time.time() - started), "log": log}))
PY

#!/usr/bin/env bash
# The GPU checks of issue 4 in one run of at most ~8 minutes, for a lent device machine.
#
#   run (device tool):  bash benchmarks/gpu_check.sh      (from the repository root, timeout_s 540)
#
# It uses the device image's own python3 and packages (torch with CUDA, torchvision, safetensors,
# pillow, numpy, pytest are there; radn_cli is imported from the working tree, nothing is installed).
# Everything it prints also goes to $OUT (or /tmp/radn-gpu-check): gpu.json and gpu.md from the
# benchmark, gpu-tests.log from the opt-in gpu tests. Steps are ordered by value, each under its own
# time limit, so a run cut short still brings back what finished.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/radn-gpu-check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python3 - <<'EOF' 2>&1 | tee "$OUT/environment.txt"
import torch, torchvision
print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
EOF

# 1. correctness on CUDA: CPU agreement (fp32 1e-4, bf16/fp16 2%), grouped pairs, distortions
timeout 120 python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/gpu-tests.log"

# 2. speed and memory: 288x288 pairs one at a time and 64 at once (Scorer.score_many), the
#    PIPAL-shaped set, PNG files end to end through run_batch, and the 8K pair's peak GPU memory
timeout 330 python3 benchmarks/bench_scoring.py --device cuda --cases 288,pipal,png,8k \
    --precisions bf16,fp16,fp32 --repeat 20 --repeat-large 3 --png-count 512 \
    --markdown --out "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.md"

#!/usr/bin/env bash
# One prepared training run on a lent GPU machine (issue 10), meant as ONE device call of at most
# 9 minutes: train from the shipped weights in bf16 with the synthetic batches made by the CPU
# cores in DataLoader workers, then evaluate on the TID2013 dev set there, and hand back the best
# weights as float16 shards of at most 15 MiB (the device returns at most 8 files of 16 MiB: here
# 4 shards, train.log with the speed, log.jsonl and tid_eval.json).
#
# Here, before the call (CPU): python scripts/pack_gpu_data.py   (gpu_data/: photos and TID refs)
#                              git show e2b3d74:weights/default.safetensors > gpu_data/radn-init.safetensors
#                              (RADN's last CPU weights, the shipped default until RADN-Lite replaced it)
#                              pip download --no-deps --only-binary=:all: -d .whl platformdirs
# The call:    run(command="bash scripts/gpu_train.sh", carry=["gpu_data", ".whl"], timeout_s=560)
# Afterwards:  python scripts/shard_weights.py merge <files_at>/*.shard-*.safetensors -o new.safetensors
#              radn eval tid2013_dev --weights new.safetensors   (compare with the shipped weights)
#
# Settings: scripts/gpu_train.json (flags below win); environment: DEVICE (cuda), MINUTES of
# training (6), WORKERS (14 data processes), INIT (gpu_data/radn-init.safetensors), CONFIG, OUT.
# A CPU rehearsal (EVAL=0 skips the two TID2013 evaluations, minutes on a CPU):
#   DEVICE=cpu MINUTES=0.5 WORKERS=2 EVAL=0 PY=.venv/bin/python CONFIG=scripts/gpu_train_cpu_check.json \
#   bash scripts/gpu_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/radn_gpu_out}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-6}
WORKERS=${WORKERS:-14}
INIT=${INIT:-gpu_data/radn-init.safetensors}
[ -f "$INIT" ] || { echo "no RADN weights to start from at $INIT (see the header)"; exit 2; }
CONFIG=${CONFIG:-scripts/gpu_train.json}
PY=${PY:-python3}
RUN=${RUN:-/tmp/radn_gpu_run}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the device image lacks (platformdirs)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
started=$(date +%s)
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/train.log"
"$PY" -m radn_cli train --config "$CONFIG" --photos gpu_data/photos --out "$RUN" --init "$INIT" \
  --device "$DEVICE" --max-minutes "$MINUTES" --data-workers "$WORKERS" 2>&1 | tee -a "$OUT/train.log"
cp "$RUN/log.jsonl" "$OUT/log.jsonl" 2>/dev/null
"$PY" - "$RUN/log.jsonl" <<'PY' | tee "$OUT/speed.txt"
import json, statistics, sys
steps = [json.loads(line) for line in open(sys.argv[1]) if '"event": "step"' in line]
rates = [s["images_per_s"] for s in steps[5:]] or [s["images_per_s"] for s in steps]
print(f"{len(steps)} steps; training images/s: median {statistics.median(rates):.1f}, "
      f"data wait {statistics.median(s['data_fraction'] for s in steps):.0%} of a step")
PY
cat "$OUT/speed.txt" >> "$OUT/train.log" && rm "$OUT/speed.txt"
"$PY" scripts/shard_weights.py split "$RUN/best.safetensors" "$OUT" --max-mib 15
"$PY" gpu_data/tid2013_dev_src/make_tid2013.py gpu_data/tid2013_dev_src/refs \
  gpu_data/tid2013_dev_src/params.csv /tmp/radn_tid2013_dev > /dev/null
[ "${EVAL:-1}" = 0 ] && { echo "EVAL=0: no TID2013 evaluation"; exit 0; }
for weights in "$INIT" "$RUN/best.safetensors"; do
  "$PY" -m radn_cli eval /tmp/radn_tid2013_dev --metric radn --weights "$weights" --device "$DEVICE" \
    --precision bf16 --json > "/tmp/tid_eval_$(basename "$weights" .safetensors).json" 2>>"$OUT/train.log"
done
"$PY" - "$OUT" "$INIT" <<'PY'
import json, pathlib, sys
reports = {}
for name in (pathlib.Path(sys.argv[2]).stem, "best"):
    report = json.loads(pathlib.Path(f"/tmp/tid_eval_{name}.json").read_text())
    reports[name] = report
    print(name, report["model"]["weights"], "TID2013 dev SROCC", round(report["metrics"]["radn"]["srocc"], 4))
pathlib.Path(sys.argv[1], "tid_eval.json").write_text(json.dumps(reports, indent=1))
PY
echo "wall time $(( $(date +%s) - started )) s"

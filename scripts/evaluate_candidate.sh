#!/usr/bin/env bash
# The model card's measurements of one weights file, into one folder:
#   scripts/evaluate_candidate.sh WEIGHTS OUT [TID2013_DEV]
# 1. radn eval on the TID2013 dev set (SROCC, KRCC, PLCC, per type; OUT/tid.json, per-pair OUT/tid_scores.csv);
#    skip it (pass "-" as TID2013_DEV) for a model that trained on those references: use
#    scripts/fold_estimate.py instead;
# 2. the 2AFC score on ../shared/data/gan2afc_dev (GAN outputs judged by people; OUT/gan.txt);
# 3. scripts/check_invariance.py on the dev set's references (OUT/inv.json, OUT/inv.log).
# Needs the test or train extra (numpy) and the shared data beside the checkout; python and radn from PATH
# or .venv/bin.
set -euo pipefail
weights=${1:?weights file}; out=${2:?output folder}; tid=${3:-tid2013_dev}
here=$(cd "$(dirname "$0")/.." && pwd)
gan="$here/../shared/data/gan2afc_dev"
bin="$here/.venv/bin"; [ -x "$bin/radn" ] || bin=$(dirname "$(command -v radn)")
mkdir -p "$out"
if [ "$tid" != "-" ]; then
    "$bin/radn" eval "$tid" -w "$weights" --metric radn --json --scores "$out/tid_scores.csv" > "$out/tid.json"
fi
"$bin/python" "$gan/score_2afc.py" pairs "$out/gan_pairs.csv"
"$bin/radn" batch --pairs "$out/gan_pairs.csv" -o "$out/gan_scores.csv" -w "$weights" > /dev/null
"$bin/python" "$gan/score_2afc.py" score "$out/gan_scores.csv" | tee "$out/gan.txt"
inv_db=$tid; [ "$inv_db" != "-" ] || inv_db=tid2013_dev
"$bin/python" "$here/scripts/check_invariance.py" "$inv_db" --weights "$weights" --json "$out/inv.json" > "$out/inv.log"
tail -n 12 "$out/inv.log"

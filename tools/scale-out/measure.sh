#!/usr/bin/env bash
# Data-parallel throughput on this machine, side by side in one go: the same run in one process, on 1 gradient worker
# and on 2 (README, "Scale-out"), one intra-op thread per JVM (the coordinator's included), 2 micro-batches of
# 4 x 256-token rows per step. Prints each run's median step time, its speed against 1 worker and the gradient bytes
# that crossed the network per step. About 2 minutes on 2 cores.
#   tools/scale-out/measure.sh [OUT_DIR] [METHOD]      # METHOD: spiel-ma (default), spiel-ag, lora, ia3, full
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/runs/scale-out}"
method="${2:-spiel-ma}"
mkdir -p "$out"
export SPIEL4J_JAVA_OPTS="-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1 ${SPIEL4J_JAVA_OPTS:-}"
: > "$out/runs.jsonl"
for workers in 0 1 2; do
  id="scale-out-$method-$workers"
  echo "scale-out: $method on $workers worker(s)" >&2
  rm -rf "${out:?}/$id"
  extra=()
  if [ "$workers" -gt 0 ]; then extra=(--workers "$workers"); fi
  (cd "$root" && ./spiel4j train --method "$method" --steps 16 --batch-size 8 --seq-len 256 --out "$out" \
    --run-id "$id" batch.micro-batches=2 eval.interval=0 checkpoint.interval=0 "${extra[@]}" --json \
    2> "$out/$id.log") | jq -c --argjson w "$workers" '. + {requested_workers: $w}' >> "$out/runs.jsonl"
done
jq -rs '
  (map(select(.requested_workers == 1))[0].step_time_median_s) as $one
  | "| workers | median step s | speed vs 1 worker | exchange bytes per step |",
    "|---|---:|---:|---:|",
    (.[] | "| \(if .requested_workers == 0 then "none (one process)" else .requested_workers end) | \(.step_time_median_s * 1000 | round / 1000) | \($one / .step_time_median_s * 100 | round / 100)x | \(.exchange_bytes_per_step) |")
' "$out/runs.jsonl"

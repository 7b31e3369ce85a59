#!/usr/bin/env bash
# Data-parallel throughput on this machine, side by side in one go: the same run in one process, on 1 gradient worker
# and on 2 (README, "Scale-out"), one intra-op thread per JVM (the coordinator's included), 2 micro-batches per step.
# Prints each run's median step time and tokens/s, the speed-up against 1 worker and its scaling efficiency (speed-up
# per worker), the gradient bytes that crossed the network per step, also per trained value, and the time per step the
# exchange added (the slowest worker answer's round trip less that worker's own computation).
#   tools/scale-out/measure.sh [OUT_DIR] [METHOD] [MODEL]
#     METHOD: spiel-ma (default), spiel-ag, lora, ia3, full
#     MODEL:  stories260K (default: 16 steps of 2 micro-batches of 8 x 256-token rows, about 2 minutes on 2 cores)
#             llama-100M  (the bench's 106M random shape, written once into OUT_DIR as a Hugging Face checkpoint with
#                          the shared assets' 32k tokenizer; 6 steps of 2 micro-batches of 4 x 128-token rows, about
#                          3 minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/runs/scale-out}"
method="${2:-spiel-ma}"
model="${3:-stories260K}"
mkdir -p "$out"
case "$model" in
  stories260K) shape=(--steps 16 --batch-size 8 --seq-len 256) ;;
  llama-100M)
    shape=(--steps 6 --batch-size 4 --seq-len 128 --model "$out/llama-100M")
    if [ ! -f "$out/llama-100M/model.safetensors" ]; then
      "$root/spiel4j" --version > /dev/null # builds the application when needed
      app="$root/cli/target/spiel4j-app"
      java -cp "$app/spiel4j.jar:$app/lib/*" dev.spiel4j.bench.RandomCheckpoint llama-100M "$out/llama-100M" \
        "$root/../shared/assets/tokenizers/open_llama_tokenizer.model"
    fi ;;
  *) echo "measure.sh: model $model: expected stories260K or llama-100M" >&2; exit 2 ;;
esac
export SPIEL4J_JAVA_OPTS="-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1 ${SPIEL4J_JAVA_OPTS:-}"
micro_batches=2
runs="$out/runs-$model-$method.jsonl"
: > "$runs"
for workers in 0 1 2; do
  id="scale-out-$model-$method-$workers"
  echo "scale-out: $method on $model, $workers worker(s)" >&2
  rm -rf "${out:?}/$id"
  extra=()
  if [ "$workers" -gt 0 ]; then extra=(--workers "$workers"); fi
  (cd "$root" && ./spiel4j train --method "$method" "${shape[@]}" --out "$out" --run-id "$id" \
    batch.micro-batches=$micro_batches eval.interval=0 checkpoint.interval=0 "${extra[@]}" --json 2> "$out/$id.log") \
    | jq -c --argjson w "$workers" '. + {requested_workers: $w}' >> "$runs"
done
jq -rs --arg model "$model" --arg method "$method" --argjson tokens "$(( micro_batches * ${shape[3]} * ${shape[5]} ))" '
  (map(select(.requested_workers == 1))[0].step_time_median_s) as $one
  | "\($method) on \($model), \($tokens) tokens per step, \(.[0].trainable_params) trained values:",
    "| workers | median step s | tokens/s | speed-up vs 1 worker | scaling efficiency | exchange bytes per step | per trained value | exchange s per step |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    (.[] | ($one / .step_time_median_s) as $speedup
      | "| \(if .requested_workers == 0 then "none (one process)" else .requested_workers end) | \(.step_time_median_s * 1000 | round / 1000) | \($tokens / .step_time_median_s | round) | \($speedup * 100 | round / 100)x | \(if .requested_workers == 0 then "" else "\($speedup / .requested_workers * 100 | round)%" end) | \(.exchange_bytes_per_step) | \(.exchange_bytes_per_step / .trainable_params * 10 | round / 10) | \(.exchange_seconds_per_step // 0 | . * 1000 | round / 1000) |")
' "$runs"

#!/usr/bin/env bash
# Learning-rate sweep behind the README's same-budget table and config/quickstart.conf's per-method rates:
# every method at four rates shaped like the paper's grid (Appendix D: SM3 for SpIEL-MA about 10x Adam's rates),
# three seeds each (a seed draws SpIEL's initial indices, LoRA's initialisation and the data order), on the
# same-budget setting (stories260K.gguf, dolly, LoRA rank 8's budget, 60 steps, batch 4, rows of at most 128 tokens,
# held-out loss on the file's last 32 examples). About 15 minutes on 2 cores.
#   tools/lr-sweep/sweep.sh [OUT_DIR]        # one JSON line per run in OUT_DIR/runs.jsonl, then summary.md and,
#                                            # where python3 has matplotlib, lr-sweep.png
# Runs already in runs.jsonl are skipped, so an interrupted sweep continues where it stopped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/runs/lr-sweep}"
mkdir -p "$out"
touch "$out/runs.jsonl"

declare -A rates=(
  [spiel-ag]="1e-3 3e-3 1e-2 3e-2"
  [lora]="1e-3 3e-3 1e-2 3e-2"
  [spiel-ma]="1e-2 3e-2 1e-1 3e-1"
  [ia3]="3e-3 1e-2 3e-2 1e-1"
  [full]="1e-4 3e-4 1e-3 3e-3"
)
for method in spiel-ag spiel-ma lora ia3 full; do
  for lr in ${rates[$method]}; do
    for seed in 42 43 44; do
      if jq -se --arg m "$method" --arg lr "$lr" --argjson s "$seed" \
          'any(.[]; .method == $m and .lr == $lr and .seed == $s)' "$out/runs.jsonl" > /dev/null; then
        continue
      fi
      id="lr-sweep-$method-$lr-$seed"
      echo "lr-sweep: $method lr=$lr seed=$seed" >&2
      rm -rf "$root/runs/$id"
      (cd "$root" && ./spiel4j train --method "$method" --lr "$lr" --match-lora-rank 8 --rank 8 --steps 60 --batch-size 4 \
        --seq-len 128 --seed "$seed" --run-id "$id" eval.interval=60 eval.holdout-examples=32 eval.max-examples=32 \
        'eval.multiple-choice=[]' checkpoint.interval=60 --json 2> "$out/$id.log") \
        | jq -c --arg lr "$lr" --argjson s "$seed" '. + {lr: $lr, seed: $s}' >> "$out/runs.jsonl"
    done
  done
done
if python3 -c "import matplotlib" 2> /dev/null; then
  python3 "$root/tools/lr-sweep/summary.py" "$out/runs.jsonl" "$out/lr-sweep.png" > "$out/summary.md"
else
  echo "lr-sweep: no matplotlib for python3, so no lr-sweep.png (pip install matplotlib)" >&2
  python3 "$root/tools/lr-sweep/summary.py" "$out/runs.jsonl" > "$out/summary.md"
fi
cat "$out/summary.md"

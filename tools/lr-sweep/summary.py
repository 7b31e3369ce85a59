"""Summarises tools/lr-sweep/sweep.sh's runs.jsonl as Markdown (stdout): held-out loss after training per method and
rate (mean and sample standard deviation over the seeds), and each method's best rate by that mean. With a second
argument, also draws that grid as a PNG (needs matplotlib: pip install matplotlib)."""
import json
import statistics
import sys
from collections import defaultdict

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
failed = [r for r in runs if r.get("outcome") != "COMPLETED"]
by_rate = defaultdict(list)
for r in runs:
    if r.get("outcome") == "COMPLETED":
        by_rate[(r["method"], r["lr"])].append(r)


def stats(rs):
    after = [r["eval_loss_after"] for r in rs]
    return statistics.mean(after), (statistics.stdev(after) if len(after) > 1 else 0.0), len(after)


grid = sorted(by_rate.items(), key=lambda kv: (kv[0][0], float(kv[0][1])))
print("| method | lr | held-out loss after (mean +- sd) | seeds |")
print("|---|---:|---:|---:|")
best = {}
for (method, lr), rs in grid:
    mean, sd, n = stats(rs)
    print(f"| {method} | {lr} | {mean:.4f} +- {sd:.4f} | {n} |")
    if method not in best or mean < best[method][0]:
        best[method] = (mean, sd, lr, rs)
print()
print("| method | trainable params | best lr | eval loss before | after (mean +- sd, 3 seeds) | lowered by |")
print("|---|---:|---:|---:|---:|---:|")
for method, (mean, sd, lr, rs) in sorted(best.items(), key=lambda kv: kv[1][0]):
    before = statistics.mean(r["eval_loss_before"] for r in rs)
    print(f"| {method} | {rs[0]['trainable_params']:,} | {lr} | {before:.4f} | {mean:.4f} +- {sd:.4f} |"
          f" {before - mean:.3f} |")
if failed:
    print()
    for r in failed:
        print(f"- not completed: {r['method']} lr {r['lr']} seed {r['seed']}: {r.get('failure')}")

if len(sys.argv) > 2:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sorted(best):
        points = [(float(lr), *stats(rs)[:2]) for (m, lr), rs in grid if m == method]
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("held-out loss after 60 steps (mean +- sd, 3 seeds)")
    ax.set_title("Learning-rate sweep, same budget (stories260K, dolly)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)

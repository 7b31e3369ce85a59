#!/usr/bin/env python3
"""Make the fork-trajectory fixture: 20 SpIEL-AG training steps run by the paper's own PEFT fork.

A reference for a step-by-step comparison of spiel4j's SpIEL-AG ("rigl" selection: accumulated gradients)
training with the released fork of PEFT (AlanAnsell/peft @ 73b455b, "peft 0.6.0.dev0"), from the same start,
on the same token ids. The fork's classes do all the work (``SftAdamW``, ``SftSelector``); this script only
drives them with the plain loop of the fork's README ("SFT with a custom training loop") and observes them.

What it does
------------
1. Loads ``stories260K-hf`` (float32, eager attention, train mode; the model has no dropout) and the SFT adapter
   ``gpu-worker/src/test/resources/fork-sft`` (made by ``make_fork_fixture.py``: 35 modules, 2,485 deltas, all
   values nonzero, indices unsorted) with the fork's ``PeftModel.from_pretrained(base, dir, is_trainable=True)``.
   The fork loads with ``strict=False`` and silently ignores what does not match, so the loaded indices and
   values are compared with the safetensors file explicitly (exact equality, every module).
2. Data: ``tinystories_valid_head.txt`` is encoded as ONE string with the ``tokenizers`` library and
   ``stories260K-hf/tokenizer.json``, ``add_special_tokens=False`` (that tokenizer's post-processor would add
   a BOS otherwise). The id stream is cut into consecutive pieces of 64 ids and BOS (id 1) is prepended to each:
   sequence i = [1] + stream[64*i : 64*(i+1)], 65 ids. Batch b (1-based step b) = sequences 4(b-1) .. 4(b-1)+3.
   Every batch's ids are written to the JSON; the Java side should feed those, not re-tokenize.
3. Loss: the model's own causal-LM loss, ``model(input_ids=x, labels=x, use_cache=False).loss``: cross entropy
   of logits[:, :-1] against x[:, 1:], mean over the 4*64 = 256 predicted positions (no padding, no -100).
4. Optimizer exactly as the fork's ``SftTrainer.create_optimizer`` builds it: one param group with every
   trainable parameter (the 35 ``sft_delta.default.values`` tensors, in ``named_parameters`` order) and
   ``weight_decay`` 0.0; ``SftAdamW(groups, **kwargs)`` with kwargs from
   ``Trainer.get_optimizer_cls_and_kwargs(TrainingArguments(optim="adamw_torch", learning_rate=1e-3,
   adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8))`` = {lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8};
   ``momentum_dtype`` None (float32 state). Constant learning rate, no warmup, no clipping, 1 accumulation step.
   (transformers 5's default ``optim`` is "adamw_torch_fused", whose kwargs carry ``fused=True``, which
   ``SftAdamW.__init__`` rejects: an ``SftTrainer`` under transformers 5 needs ``optim="adamw_torch"``.)
5. Selector: ``SftSelector(model, optimizer, sft_config, total_update_steps=20, grad_accumulation_steps=1)``
   with the adapter's ``SftConfig`` changed to reselection_steps=10, selection_accumulation_steps=5,
   initial_reselection_rate=0.2, reselection_rate_policy="linear" (the fork's default), selection_algorithm
   "rigl". ``candidates_per_replacement_slot`` and ``selection_duration`` exist only in the fork's
   ``SftArguments`` (argument parsing) and are read by nothing at 73b455b: the number of candidates is
   hard-wired to k (one per slot, spiel4j's factor 1), and selection runs for the whole run.
6. Loop, step t = 1..20 (README order, also what ``SftTrainer``'s ``on_step_end`` callback gives):
   forward, ``loss.backward()``, ``optimizer.step()``, ``optimizer.zero_grad(set_to_none=True)``,
   ``selector.step()``. ``selector.select`` is wrapped only to note the rate p it is called with and to
   snapshot the candidate statistics; the fork's code decides everything.
7. Writes the JSON, and checks: kept slots' optimizer state is untouched by a reselection, grown slots' values
   are 0, each module's index set stays duplicate-free and of size k.

The fork's schedule at 73b455b, precisely (R = reselection_steps = 10, S = selection_accumulation_steps = 5,
T = total_update_steps = 20, c = the selector's ``completed_steps`` = number of optimizer updates done)
----------------------------------------------------------------------------------------------------------
* Hooks: a "selection phase" installs a weight-gradient hook on every SFT linear. The hook is captured at
  forward time and called in backward with the DENSE weight gradient dL/dW [out, in] (``linear_sd`` always
  computes it; the values' gradient is its gather at the slot indices).
* The constructor calls ``begin_selection_phase()``: the first phase covers steps 1, 2, ... from the start.
  ``selector.step()`` (after update t): c = t; if (c + 1) % R == 0 begin a phase (hooks on from step c + 1);
  if c % R == S end the phase and reselect (after update c, before step c + 1's forward).
  With R=10, S=5, T=20: phase 1 = steps 1..5 (5 backward passes), reselection after the update of step 5;
  phase 2 begins after step 9 and covers steps 10..15 (SIX backward passes: the (c+1) test starts one step
  early), reselection after the update of step 15; a third phase begins after step 19 (step 20's backward
  feeds it) and never ends within the run. Every phase after the first is R - S + 1 = 6 steps long, not S.
  (``end_selection_phase`` returns without selecting, and without removing hooks, if c > T.)
* Candidates: per module, the hook's FIRST call in a phase (the phase's first step: step 1, step 10) takes
  ``topk(|dL/dW|.flatten(), k, sorted=False)``, k = the module's slot count, over ALL positions of the weight,
  including positions that are current slots; that first gradient also starts the sums. Each later step of
  the phase adds dL/dW at those positions to a sum g and g*g to a sum g2, and counts samples (5, then 6).
  Nothing is averaged or rescaled during the phase.
* Rate: linear policy: p = 1 at the reselection where c == S (the first, step 5: EVERY slot is up for
  replacement, whatever initial_reselection_rate says); otherwise p = initial_reselection_rate * (1 - c/T)
  (step 15: 0.2 * 0.25 = 0.05). (cosine policy: p = rate * (1 + cos(pi c/T)) / 2, with NO p = 1 special case.)
  n = int(k * p) per module (truncation): step 5: n = k; step 15: q/o 45 -> 2, k/v 22 -> 1, mlp 121 -> 6.
* Drop/grow (``select_rigl``), per module: outgoing = the n slots of smallest |value| (topk largest=False).
  Candidates that are current slots NOT outgoing are discarded; the remaining are ranked by |g| (the sum, not
  the mean; same order) and the best min(n, #left) are incoming. Indices both outgoing and incoming are then
  removed from both lists (that slot keeps its value and its optimizer state), and the outgoing list (still in
  ascending |value| order) is cut to the incoming count. So a module replaces n - overlap slots.
  At step 5 (p = 1, candidates = k) this makes the new index set exactly the candidate set, i.e. the top-k
  positions of |dL/dW| of STEP 1's batch alone (the script asserts this).
* Grown slots: the slot keeps its position in the arrays; index := incoming index, value := 0.0; optimizer
  state seeded with age = samples / grad_accumulation_steps (5.0 at step 5, 6.0 at step 15),
  exp_avg = (g / samples) * (1 - beta1^age), exp_avg_sq = (g2 / samples) * (1 - beta2^age) (float32 tensor ops,
  ``beta ** age`` as a python-float ** float32-tensor power). Kept slots' state is unchanged.
* SftAdamW update (per element, float32; age starts at 1.0 at the first step and is incremented AFTER use):
      m = m*beta1 + g*(1-beta1);  v = v*beta2 + g*g*(1-beta2)          (mul_ then add_/addcmul_)
      denom = (sqrt(v) + eps) * (1 - beta1^age) / sqrt(1 - beta2^age)    (sqrt, add_ eps, mul_, div_)
      value -= lr * m / denom                                            (addcdiv_)
      age += 1
  eps is added to sqrt(v) BEFORE the bias correction (old HF AdamW style), unlike torch.optim.AdamW
  (eps after dividing by sqrt(1 - beta2^t)). A grown slot's first update (step 6 / 16) uses age 5 / 6, i.e.
  the seeded moments are treated as 5 / 6 steps old although they now hold 6 / 7 gradients. Weight decay
  (0 here) would be ``value += value * (-lr * wd)`` after the update.

Output: ``gpu-worker/src/test/resources/fork-trajectory/trajectory.json``
--------------------------------------------------------------------------
Floats written as float32 are the shortest decimal that round-trips to that float32 (``Float.parseFloat``
gives the exact value); "float64" ones are Python ``repr`` of a double.
* ``fork_commit``, ``peft``, ``torch``, ``transformers``: versions; ``model``, ``adapter``, ``data``: what was used.
* ``data``: file, tokenizer, ``bos_id``, ``seq_len`` 65, ``batch_size`` 4, ``steps`` 20.
* ``optimizer``: class and the exact kwargs (lr, betas, eps, weight_decay, momentum_dtype).
* ``selector``: the SftConfig fields the selector reads, total_update_steps, grad_accumulation_steps, and
  ``unused_arguments`` (fork arguments that have no effect at this commit).
* ``modules``: [name, k] in the selector's module order (name relative to the HF model,
  e.g. ``model.layers.0.self_attn.q_proj``; k = slot count).
* ``batches``: 20 x 4 x 65 token ids; batch t-1 is step t's input and labels.
* ``steps``: one object per step t (1-based):
  ``loss`` (float64; loss of step t's batch before step t's update), ``grad_norm`` (float64; global L2 norm of
  all 2,485 values' gradients of step t, before the update), ``values_l2`` (float64; L2 norm of all values after
  step t's update AND any reselection after it), ``phase`` (true if step t's backward fed a selection phase),
  ``candidates_chosen`` (true if step t's backward picked the phase's candidates), ``samples`` (the phase's
  sample count after step t's backward, 0 outside phases), ``reselection`` (true if a reselection ran after
  step t's update).
* ``reselections``: one object per reselection: ``step`` t (after whose update it ran), ``completed_steps`` c,
  ``p`` (float64 rate the fork used), ``candidates_from_step`` (step whose gradient picked the candidates),
  ``accumulated_steps`` (the steps whose gradients were summed), and ``modules``: per module (same order):
  ``name``, ``k``, ``n`` = int(k*p) (slots up for replacement), ``samples``,
  ``indices`` / ``values`` (float32): every slot's index and value after step t's update and BEFORE the
  reselection, sorted by index (the values the update produced);
  ``dropped``: indices removed (sorted); ``grown``: indices added (sorted; their value is 0.0 afterwards);
  ``grown_exp_avg``, ``grown_exp_avg_sq``, ``grown_age`` (float32): the optimizer state the fork seeded for
  each grown index, aligned with ``grown``. After the reselection a module's slots are
  ``indices - dropped + grown`` with kept slots keeping value and optimizer state.
* ``final``: per module ``values_l2`` (float64) after step 20, and the total ``values_l2``.

Setup: the venv and fork of ``make_fork_fixture.py`` (its docstring); nothing else is needed.

Measured with: torch 2.13.0+cpu, transformers 5.18.0, tokenizers 0.23.2, safetensors 0.8.0, numpy 2.4.6.

Run (from the repository root; one CPU thread, ~15 s)
----------------------------------------------------
    /tmp/forkenv/bin/python tools/fork/make_fork_trajectory.py
    # options: --model DIR (default: $SPIEL4J_ASSETS or ../shared/assets, + model/stories260K-hf)
    #          --data FILE (default: same assets root + data/tinystories_valid_head.txt)
    #          --adapter DIR (default: gpu-worker/src/test/resources/fork-sft)
    #          --out FILE (default: gpu-worker/src/test/resources/fork-trajectory/trajectory.json)

Running it twice gives byte-identical output (same torch version; deterministic algorithms, one thread).
"""

import argparse
import copy
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
import transformers.utils

# Must happen before `import peft` (see make_fork_fixture.py).
transformers.utils.is_peft_available = lambda: False

import peft  # noqa: E402  (the fork, installed editable from /tmp/fork-src)
from peft import PeftModel, SftAdamW, SftSelector  # noqa: E402
from peft.tuners.sft.layer import Linear as SftLinear  # noqa: E402
from safetensors import safe_open  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_reference import assets_root, default_model_dir, load_base, repo_root  # noqa: E402

FORK_COMMIT = "73b455b"
BOS_ID = 1
SEQ_LEN = 65  # BOS + 64 ids; 64 predicted positions
BATCH_SIZE = 4
STEPS = 20
LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.0
GRAD_ACCUMULATION_STEPS = 1
SELECTOR_CONFIG = {  # SftConfig fields read by SftSelector
    "selection_algorithm": "rigl",
    "reselection_steps": 10,
    "selection_accumulation_steps": 5,
    "initial_reselection_rate": 0.2,
    "reselection_rate_policy": "linear",
}
UNUSED_ARGUMENTS = {
    "candidates_per_replacement_slot": "1 (only in SftArguments; SftSelector's hook hard-wires k candidates)",
    "selection_duration": "1.0 (only in SftArguments; read by nothing, selection runs the whole run)",
}
HF_PREFIX = "base_model.model."  # PeftModel -> SftModel -> HF model




def f32(x) -> str:
    """Shortest decimal that round-trips to the same float32."""
    f = np.float32(x)
    assert np.isfinite(f), x
    return str(f)


def f64(x) -> str:
    x = float(x)
    assert math.isfinite(x), x
    return repr(x)


class Raw(str):
    """A pre-formatted JSON number or array."""


def arr_f32(t) -> Raw:
    return Raw("[" + ",".join(f32(v) for v in t) + "]")


def arr_int(t) -> Raw:
    return Raw("[" + ",".join(str(int(v)) for v in t) + "]")


def to_json(x, indent=0) -> str:
    pad, pad1 = " " * indent, " " * (indent + 1)
    if isinstance(x, Raw):
        return str(x)
    if isinstance(x, dict):
        if not x:
            return "{}"
        small = all(isinstance(v, (Raw, int, float, str, bool)) or v is None for v in x.values()) and len(x) <= 12
        if small and sum(len(str(v)) for v in x.values()) < 200:
            return "{" + ", ".join(json.dumps(k) + ": " + to_json(v) for k, v in x.items()) + "}"
        return "{\n" + ",\n".join(pad1 + json.dumps(k) + ": " + to_json(v, indent + 1) for k, v in x.items()) + "\n" + pad + "}"
    if isinstance(x, (list, tuple)):
        if all(isinstance(v, (Raw, int, str)) and not isinstance(v, bool) for v in x) and len(x) <= 8:
            return "[" + ", ".join(to_json(v) for v in x) + "]"
        return "[\n" + ",\n".join(pad1 + to_json(v, indent + 1) for v in x) + "\n" + pad + "]"
    if isinstance(x, float):
        return f64(x)
    return json.dumps(x)


def sft_modules(peft_model):
    """(name relative to the HF model, full name as the selector sees it, SparseDelta), in module order."""
    for full, m in peft_model.named_modules():
        if isinstance(m, SftLinear) and m.active_adapter is not None and m.active_adapter in m.sft_delta:
            assert full.startswith(HF_PREFIX), full
            yield full[len(HF_PREFIX):], full, m, m.sft_delta[m.active_adapter]


def load_batches(data_file: Path, tokenizer_file: Path):
    tok = Tokenizer.from_file(str(tokenizer_file))
    ids = tok.encode(data_file.read_text(encoding="utf-8"), add_special_tokens=False).ids
    n_seq, body = BATCH_SIZE * STEPS, SEQ_LEN - 1
    assert len(ids) >= n_seq * body, f"only {len(ids)} ids"
    assert BOS_ID not in ids[: n_seq * body]
    seqs = [[BOS_ID] + ids[i * body:(i + 1) * body] for i in range(n_seq)]
    return [seqs[b * BATCH_SIZE:(b + 1) * BATCH_SIZE] for b in range(STEPS)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--data", type=Path, default=assets_root() / "data" / "tinystories_valid_head.txt")
    ap.add_argument("--adapter", type=Path, default=repo_root() / "gpu-worker/src/test/resources/fork-sft")
    ap.add_argument("--out", type=Path,
                    default=repo_root() / "gpu-worker/src/test/resources/fork-trajectory/trajectory.json")
    args = ap.parse_args()
    for f in (args.model / "config.json", args.model / "tokenizer.json", args.data,
              args.adapter / "adapter_model.safetensors"):
        if not f.is_file():
            print(f"missing: {f}", file=sys.stderr)
            return 2
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)  # the fork draws random initial indices before loading overwrites them

    # ---- optimizer kwargs exactly as SftTrainer.create_optimizer gets them ----------------------------
    targs = TrainingArguments(output_dir="/tmp/fork-trajectory-unused", report_to=[], optim="adamw_torch",
                              learning_rate=LR, adam_beta1=BETAS[0], adam_beta2=BETAS[1], adam_epsilon=EPS,
                              weight_decay=WEIGHT_DECAY, max_grad_norm=0.0, lr_scheduler_type="constant",
                              gradient_accumulation_steps=GRAD_ACCUMULATION_STEPS, max_steps=STEPS)
    _, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(targs)
    assert opt_kwargs == {"lr": LR, "betas": BETAS, "eps": EPS}, opt_kwargs

    # ---- model + adapter ------------------------------------------------------------------------------
    base = load_base(args.model)
    assert base.config.attention_dropout == 0.0
    model = PeftModel.from_pretrained(base, str(args.adapter), is_trainable=True)
    model.train()
    with safe_open(str(args.adapter / "adapter_model.safetensors"), framework="pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
    modules = list(sft_modules(model))
    assert len(saved) == 2 * len(modules), (len(saved), len(modules))
    for name, _, _, sd in modules:
        key = f"base_model.model.{name}.sft_delta."
        assert torch.equal(sd.indices, saved[key + "indices"]), f"{name}: indices not loaded"
        assert torch.equal(sd.values.detach(), saved[key + "values"]), f"{name}: values not loaded"
        assert sd.values.requires_grad and sd.values.dtype == torch.float32
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert [p for _, p in trainable] == [sd.values for *_, sd in modules], "trainables are not exactly the values"
    num_deltas = sum(sd.values.numel() for *_, sd in modules)
    assert num_deltas == 2485 and all(bool((sd.values != 0).all()) for *_, sd in modules)
    print(f"loaded {len(modules)} modules, {num_deltas} deltas (verified against the file)")

    # ---- the fork's optimizer and selector ------------------------------------------------------------
    groups = [{"params": [p for _, p in trainable], "weight_decay": WEIGHT_DECAY}]
    optimizer = SftAdamW(groups, **opt_kwargs)
    sft_config = copy.deepcopy(model.peft_config["default"])
    for k, v in SELECTOR_CONFIG.items():
        setattr(sft_config, k, v)
    selector = SftSelector(model, optimizer, sft_config, STEPS, GRAD_ACCUMULATION_STEPS)

    events = []  # filled by the wrapper: (p, snapshot of candidate statistics)
    original_select = selector.select

    def recording_select(p):
        snap = {n: (ci.clone(), s.clone()) for n, (ci, _g, _g2, s) in selector.reselection_scores.items()}
        events.append((p, snap))
        return original_select(p)

    selector.select = recording_select

    batches = load_batches(args.data, args.model / "tokenizer.json")

    # ---- training loop ----------------------------------------------------------------------------------
    steps_out, reselections_out = [], []
    phase_start_step, phase_steps = None, []
    for t in range(1, STEPS + 1):
        x = torch.tensor(batches[t - 1], dtype=torch.long)
        hooked = [m.hook is not None for *_, m, _ in modules]
        assert all(hooked) or not any(hooked)
        in_phase = all(hooked)
        had_scores = len(selector.reselection_scores) > 0 if in_phase else False

        loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        grad_sq = sum(float(torch.sum(sd.values.grad.double() ** 2)) for *_, sd in modules)

        samples = 0
        chosen = False
        if in_phase:
            assert len(selector.reselection_scores) == len(modules)
            counts = {int(s[0]) for (_, _, _, s) in selector.reselection_scores.values()}
            assert len(counts) == 1 and all(bool((s == s[0]).all()) for *_, s in selector.reselection_scores.values())
            samples = counts.pop()
            chosen = not had_scores
            if chosen:
                phase_start_step, phase_steps = t, []
            phase_steps.append(t)

        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # state after the update, before a possible reselection
        before = {}
        for name, _, _, sd in modules:
            st = optimizer.state[sd.values]
            before[name] = (sd.indices.clone(), sd.values.detach().clone(),
                            {key: st[key].clone() for key in ("exp_avg", "exp_avg_sq", "age")})
        n_events = len(events)
        selector.step()
        assert selector.completed_steps == t
        reselected = len(events) > n_events

        if reselected:
            p, snap = events[-1]
            mods = []
            for name, full, _, sd in modules:
                idx0, val0, st0 = before[name]
                idx1, val1 = sd.indices, sd.values.detach()
                st1 = optimizer.state[sd.values]
                k = idx0.numel()
                assert idx1.numel() == k and torch.unique(idx1).numel() == k
                s0, s1 = set(idx0.tolist()), set(idx1.tolist())
                dropped, grown = sorted(s0 - s1), sorted(s1 - s0)
                assert len(dropped) == len(grown)
                kept = torch.tensor([i in s1 for i in idx0.tolist()])
                grown_mask = ~kept
                # the fork replaces slots in place: a kept index stays in its slot with value and state
                assert torch.equal(idx1[kept], idx0[kept]) and torch.equal(val1[kept], val0[kept])
                for key in ("exp_avg", "exp_avg_sq", "age"):
                    assert torch.equal(st1[key][kept], st0[key][kept]), f"{name}: kept {key} changed"
                assert bool((val1[grown_mask] == 0).all())
                cand_idx, cand_samples = snap[full]
                if p == 1.0:  # p = 1 with k candidates: the new index set is the candidate set
                    assert s1 == set(cand_idx.tolist()), f"{name}: p=1 set differs from the candidates"
                order0 = torch.argsort(idx0)
                pos1 = {int(i): j for j, i in enumerate(idx1.tolist())}
                gslots = [pos1[i] for i in grown]
                mods.append({
                    "name": name,
                    "k": k,
                    "n": int(k * p),
                    "samples": int(cand_samples[0]),
                    "indices": arr_int(idx0[order0].tolist()),
                    "values": arr_f32(val0[order0].tolist()),
                    "dropped": arr_int(dropped),
                    "grown": arr_int(grown),
                    "grown_exp_avg": arr_f32(st1["exp_avg"][gslots].tolist()),
                    "grown_exp_avg_sq": arr_f32(st1["exp_avg_sq"][gslots].tolist()),
                    "grown_age": arr_f32(st1["age"][gslots].tolist()),
                })
            reselections_out.append({
                "step": t,
                "completed_steps": selector.completed_steps,
                "p": float(p),
                "candidates_from_step": phase_start_step,
                "accumulated_steps": arr_int(phase_steps),
                "replaced_total": sum(len(json.loads(m["grown"])) for m in mods),
                "modules": mods,
            })
            print(f"step {t}: reselection p={p!r}, phase steps {phase_steps}, "
                  f"replaced {reselections_out[-1]['replaced_total']} of {num_deltas}")

        values_l2 = math.sqrt(sum(float(torch.sum(sd.values.detach().double() ** 2)) for *_, sd in modules))
        steps_out.append({
            "step": t,
            "loss": float(loss.item()),
            "grad_norm": math.sqrt(grad_sq),
            "values_l2": values_l2,
            "phase": in_phase,
            "candidates_chosen": chosen,
            "samples": samples,
            "reselection": reselected,
        })
        print(f"step {t:2d}  loss {loss.item():.6f}  |g| {math.sqrt(grad_sq):.6g}  phase {in_phase} "
              f"samples {samples}{'  RESELECT' if reselected else ''}")

    final_mods = {name: math.sqrt(float(torch.sum(sd.values.detach().double() ** 2))) for name, _, _, sd in modules}
    payload = {
        "fork_commit": FORK_COMMIT,
        "peft": peft.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": "stories260K-hf (float32, attn_implementation=eager, train mode, no dropout)",
        "adapter": {"dir": "fork-sft", "sha256": hashlib.sha256(
            (args.adapter / "adapter_model.safetensors").read_bytes()).hexdigest(), "num_deltas": num_deltas},
        "data": {"file": args.data.name, "tokenizer": "stories260K-hf/tokenizer.json (add_special_tokens=False)",
                 "bos_id": BOS_ID, "seq_len": SEQ_LEN, "batch_size": BATCH_SIZE, "steps": STEPS,
                 "loss": "model loss with labels=input_ids, mean over 4*64 positions"},
        "optimizer": {"class": "SftAdamW", "lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
                      "weight_decay": WEIGHT_DECAY, "momentum_dtype": "None (float32)",
                      "lr_schedule": "constant", "grad_clipping": "none"},
        "selector": dict(SELECTOR_CONFIG, total_update_steps=STEPS,
                         grad_accumulation_steps=GRAD_ACCUMULATION_STEPS, unused_arguments=UNUSED_ARGUMENTS),
        "modules": [Raw(json.dumps([name, sd.values.numel()])) for name, _, _, sd in modules],
        "batches": [[arr_int(s) for s in b] for b in batches],
        "steps": steps_out,
        "reselections": reselections_out,
        "final": {"values_l2": math.sqrt(sum(v * v for v in final_mods.values())), "modules": final_mods},
    }
    text = to_json(payload) + "\n"
    json.loads(text)  # well-formed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text.encode())} bytes, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]})")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

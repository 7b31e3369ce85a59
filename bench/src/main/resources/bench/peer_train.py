#!/usr/bin/env python3
"""spiel4j benchmark peer: Hugging Face PEFT LoRA / full fine-tuning in PyTorch (CPU).

Runs the same workload as a spiel4j benchmark child (same weights or the same random shape, the same
pre-tokenized batches, batch shape, thread count, steps, learning rate and seed) and prints ONE JSON object
as the last line of stdout, in the same shape as the Java child (see dev.spiel4j.bench.RunMeasurement):

  status, tool, model, method, activation_checkpointing, dtype, threads, trainable_params, base_weight_bytes,
  optimizer_state_bytes, tokens_per_step, warmup_steps, step_times_s[], train_losses[], eval_loss_initial, eval_loss,
  rss_after_load_bytes, peak_rss_load_bytes, peak_rss_train_bytes, peak_rss_bytes, ru_maxrss_bytes

Usage: peer_train.py SPEC.json   (the spec is dev.spiel4j.bench.BenchSpec's JSON: snake_case keys model,
method, budget {lora_rank, lora_alpha, lora_dropout}, dtype, threads, steps, warmup_steps, lr, weight_decay,
seed, batches, activation_checkpointing; the peer reads model.hf_dir or model.random and runs methods lora
and full)

Activation checkpointing (spec key activation_checkpointing, false when absent, as on the Java side): the
transformers model's gradient_checkpointing_enable() with non-reentrant torch.utils.checkpoint, so each decoder
layer keeps only its input in the forward pass and recomputes itself in the backward pass. The result reports what
happened, not what was asked: activation_checkpointing is true when every decoder layer ran its forward pass twice
in the first training step (forward + recomputation), false when once; anything else is an error.

Memory: rss_after_load is VmRSS once the base model is in memory; the kernel's peak (VmHWM) is then reset
through /proc/self/clear_refs so that peak_rss_train is the peak of training alone (method, optimizer,
activations, gradients); overhead above the base model = peak_rss_train - rss_after_load. ru_maxrss
(getrusage) cannot be reset and is reported as a cross-check of the whole-process peak.
"""
import json
import math
import re
import resource
import sys
import time
import traceback

LINEAR_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def status_bytes(field):
    """A memory field of /proc/self/status (reported in kB) in bytes."""
    with open("/proc/self/status") as f:
        m = re.search(r"^" + field + r":\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    if m is None:
        raise RuntimeError("/proc/self/status has no " + field)
    return int(m.group(1)) * 1024


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0). Returns False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def read_spec(path):
    with open(path) as f:
        spec = json.load(f)
    required = ["model", "method", "steps", "warmup_steps", "lr", "seed", "threads", "batches"]
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError("spec %s lacks field(s) %s" % (path, ", ".join(missing)))
    if spec["method"] not in ("lora", "full"):
        raise ValueError("spec %s: method must be 'lora' or 'full', got %r" % (path, spec["method"]))
    if not isinstance(spec.get("activation_checkpointing", False), bool):
        raise ValueError("spec %s: activation_checkpointing must be true or false, got %r"
                         % (path, spec["activation_checkpointing"]))
    if spec.get("dtype", "fp32") not in ("fp32", "bf16"):
        raise ValueError("spec %s: dtype must be 'fp32' or 'bf16', got %r" % (path, spec.get("dtype")))
    return spec


def load_batches(path, torch):
    """The harness's pre-tokenized batches: {"train": [...], "eval": [...]}, each batch row-major flat arrays."""
    with open(path) as f:
        data = json.load(f)

    def convert(b, where):
        size, seq = int(b["size"]), int(b["seq_len"])
        n = size * seq
        for key in ("inputs", "targets", "loss_mask", "attention_mask"):
            if len(b[key]) != n:
                raise ValueError("%s in %s: %s has %d values, expected size*seq_len = %d"
                                 % (where, path, key, len(b[key]), n))
        return {
            "inputs": torch.tensor(b["inputs"], dtype=torch.long).view(size, seq),
            "targets": torch.tensor(b["targets"], dtype=torch.long).view(size, seq),
            "loss_mask": torch.tensor(b["loss_mask"], dtype=torch.float32).view(size, seq),
            "attention_mask": torch.tensor(b["attention_mask"], dtype=torch.long).view(size, seq),
        }

    train = [convert(b, "train batch %d" % i) for i, b in enumerate(data["train"])]
    evals = [convert(b, "eval batch %d" % i) for i, b in enumerate(data.get("eval", []))]
    if not train:
        raise ValueError("batches file %s holds no train batches" % path)
    return train, evals


def build_model(spec, torch, transformers):
    model_spec = spec["model"]
    name = model_spec.get("name", "model")
    if model_spec.get("hf_dir"):
        model = transformers.LlamaForCausalLM.from_pretrained(model_spec["hf_dir"], dtype=torch.float32)
    elif model_spec.get("random"):
        r = model_spec["random"]
        config = transformers.LlamaConfig(
            hidden_size=r["dim"], num_hidden_layers=r["layers"], num_attention_heads=r["heads"],
            num_key_value_heads=r["kv_heads"], intermediate_size=r["ffn_dim"], vocab_size=r["vocab_size"],
            max_position_embeddings=r.get("context_length", 2048), rms_norm_eps=r.get("norm_eps", 1e-5),
            rope_theta=r.get("rope_theta", 10000.0), tie_word_embeddings=r.get("tied_embeddings", False))
        torch.manual_seed(int(r.get("seed", spec["seed"])))
        model = transformers.LlamaForCausalLM(config)
        torch.manual_seed(int(spec["seed"]))
    else:
        raise ValueError("model '%s': the peer needs hf_dir (a Hugging Face checkpoint) or random, got keys %s"
                         % (name, sorted(model_spec)))
    if spec.get("dtype", "fp32") == "bf16":
        model = model.to(torch.bfloat16)
    return model, name


def masked_loss(model, batch, torch):
    logits = model(input_ids=batch["inputs"], attention_mask=batch["attention_mask"]).logits
    nll = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1), reduction="none")
    mask = batch["loss_mask"].reshape(-1)
    return (nll * mask).sum() / mask.sum().clamp(min=1.0)


def eval_loss(model, batches, torch):
    """Token-weighted mean loss over the eval batches, or None when there are none."""
    if not batches:
        return None
    model.eval()
    total, tokens = 0.0, 0.0
    with torch.no_grad():
        for b in batches:
            n = float(b["loss_mask"].sum())
            total += float(masked_loss(model, b, torch)) * n
            tokens += n
    model.train()
    return total / tokens if tokens > 0 else None


class LayerForwardCounter:
    """Counts the forward calls of every decoder layer until recomputed() is asked, then stops counting."""

    def __init__(self, model):
        layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
        if not layers:
            raise RuntimeError("no decoder layers found in %s" % type(model).__name__)
        self.counts = [0] * len(layers)
        # a pre-hook: torch's non-reentrant checkpoint stops a recomputation as soon as the tensors the backward
        # pass needs exist again, before the layer's forward returns, so a forward (post-)hook never sees it
        self.handles = [layer.register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, i):
        def hook(module, args):
            self.counts[i] += 1
        return hook

    def recomputed(self):
        """True when each layer ran twice (checkpointing recomputed it), False when once."""
        for h in self.handles:
            h.remove()
        if all(c == 2 for c in self.counts):
            return True
        if all(c == 1 for c in self.counts):
            return False
        raise RuntimeError("decoder layers ran %s times in one training step: neither plain nor checkpointed"
                           % self.counts)


def run(spec):
    import peft
    import torch
    import transformers

    torch.manual_seed(int(spec["seed"]))
    torch.set_num_threads(int(spec["threads"]))
    train, evals = load_batches(spec["batches"], torch)

    model, model_name = build_model(spec, torch, transformers)
    base_weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rss_after_load = status_bytes("VmRSS")
    peak_load = status_bytes("VmHWM")
    hwm_reset = reset_peak_rss()

    checkpointing = spec.get("activation_checkpointing", False)
    if checkpointing:
        # Non-reentrant checkpointing recomputes each decoder layer in the backward pass and gets the gradients of
        # LoRA's adapters inside it even though no input of the layer requires a gradient; the KV cache is of no
        # use in training and transformers turns it off under checkpointing anyway.
        model.config.use_cache = False
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if spec["method"] == "lora":
            # what PEFT's prepare_model_for_kbit_training does beside enabling checkpointing: the embedding output
            # requires a gradient, so that reentrant checkpointing (should transformers ever fall back to it)
            # still reaches the adapters
            model.enable_input_require_grads()

    if spec["method"] == "lora":
        budget = spec.get("budget", {})
        config = peft.LoraConfig(r=int(budget.get("lora_rank", 8)), lora_alpha=float(budget.get("lora_alpha", 16)),
                                 lora_dropout=float(budget.get("lora_dropout", 0.0)),
                                 target_modules=LINEAR_TARGETS, bias="none",
                                 task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=float(spec["lr"]),
                                  weight_decay=float(spec.get("weight_decay", 0.0)))

    initial = eval_loss(model, evals, torch)
    warmup, steps = int(spec["warmup_steps"]), int(spec["steps"])
    step_times, losses, measured_tokens = [], [], 0
    layer_counter = LayerForwardCounter(model)
    recomputed = None
    for i in range(warmup + steps):
        batch = train[i % len(train)]
        tokens = int(batch["attention_mask"].sum())
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = masked_loss(model, batch, torch)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if i == 0:
            recomputed = layer_counter.recomputed()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError("loss is %s at step %d" % (value, i))
        if i >= warmup:
            step_times.append(elapsed)
            losses.append(value)
            measured_tokens += tokens
    final = eval_loss(model, evals, torch)

    optimizer_state_bytes = sum(t.numel() * t.element_size()
                                for state in optimizer.state.values() for t in state.values()
                                if torch.is_tensor(t))
    peak_train = status_bytes("VmHWM")
    peak_total = max(peak_load, peak_train)
    return {
        "status": "ok",
        "tool": "python-peft",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "model": model_name,
        "method": spec["method"],
        "activation_checkpointing": recomputed,
        "dtype": spec.get("dtype", "fp32"),
        "threads": torch.get_num_threads(),
        "trainable_params": sum(p.numel() for p in trainable),
        "base_weight_bytes": base_weight_bytes,
        "optimizer_state_bytes": optimizer_state_bytes,
        "tokens_per_step": measured_tokens / steps,
        "warmup_steps": warmup,
        "step_times_s": step_times,
        "train_losses": losses,
        "eval_loss_initial": initial,
        "eval_loss": final,
        "rss_after_load_bytes": rss_after_load,
        "peak_rss_load_bytes": peak_load,
        "peak_rss_train_bytes": peak_train if hwm_reset else None,
        "peak_rss_bytes": peak_total,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv):
    if len(argv) != 2:
        print(json.dumps({"status": "error", "error": "usage: peer_train.py SPEC.json"}))
        return 2
    try:
        result = run(read_spec(argv[1]))
    except Exception as e:  # the harness reads the reason from the last line
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"status": "error", "error": "%s: %s" % (type(e).__name__, e)}))
        return 1
    sys.stdout.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Make the PEFT interop fixtures: a LoRA and an (IA)3 adapter saved by the official PEFT, plus logits.

The fixtures let a Java test check that spiel4j reads adapters written by Hugging Face PEFT (the official
release, not the paper's fork) and reproduces PEFT's logits ("reading direction" of the PEFT interop).

What it does
------------
1. Loads the tiny LLaMA model ``stories260K-hf`` with transformers (float32, eval mode, eager attention).
2. LoRA: wraps it with ``LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
   target_modules=[q,k,v,o,gate,up,down]_proj, task_type="CAUSAL_LM")`` + ``get_peft_model``, then sets every
   ``lora_A`` and ``lora_B`` weight (B included: PEFT starts it at zero) to N(0, 0.05^2) drawn from a seeded
   ``torch.Generator``, module by module in ``named_modules()`` order, A before B.
   PEFT computes ``y = x W^T + (alpha / r) * (x A^T) B^T`` with A: [r, in], B: [out, r]; here alpha/r = 2.
3. (IA)3: wraps a fresh base with ``IA3Config(target_modules=[k_proj, v_proj, down_proj],
   feedforward_modules=[down_proj], task_type="CAUSAL_LM")``, then sets every ``ia3_l`` to 1 + N(0, 0.1^2)
   (seeded ``torch.Generator``, ``named_modules()`` order). PEFT scales the OUTPUT of k_proj/v_proj
   (``ia3_l`` shape [out_features, 1]) and the INPUT of the feed-forward module down_proj (``ia3_l`` shape
   [1, in_features]).
4. For each adapter: computes logits for a fixed token-id sequence with the adapter active (``adapter_logits``)
   and disabled (``base_logits``); checks them against a fresh base model and against a dense reference
   (the adapter folded by hand into a copy of the base weights: W + (alpha/r) B A for LoRA; rows of W times
   ``ia3_l`` for k/v, columns of W times ``ia3_l`` for down_proj); saves the adapter with
   ``save_pretrained(out_dir, safe_serialization=True)``, deletes the README.md model card that
   save_pretrained writes, sets ``base_model_name_or_path`` to ``"stories260K-hf"`` (not a local path) in
   ``adapter_config.json``, and writes ``logits.json`` beside it.
5. Verifies: max |adapter_logits - base_logits| > 1e-2; the saved tensors have exactly the expected names;
   reloading with ``PeftModel.from_pretrained`` reports no missing/unexpected adapter keys, gives back the
   saved tensors bit for bit and reproduces ``adapter_logits`` to 1e-6.

Files written (per adapter directory)
-------------------------------------
``adapter_model.safetensors`` (float32; names
``base_model.model.model.layers.<N>.<self_attn|mlp>.<module>.lora_A.weight`` [r, in] /
``....lora_B.weight`` [out, r], or ``....<module>.ia3_l``), ``adapter_config.json`` (PEFT's own config, all
of PEFT 0.21's keys; ``target_modules``/``feedforward_modules`` sorted here, PEFT itself writes them in
arbitrary set order, so a reader must treat them as sets), and ``logits.json``: ``token_ids``, ``peft``, ``transformers``, ``torch`` versions, a few
informational keys, then ``base_logits`` and ``adapter_logits`` ([positions][vocab]); each float is the
shortest decimal that parses (Java ``Float.parseFloat``) to the exact float32 value.

Setup (Python 3.11, CPU only; a venv outside the repository; pip reaches the local package mirror)
---------------------------------------------------------------------------------------------------
    python3 -m venv /tmp/peftenv
    /tmp/peftenv/bin/pip install --index-url file:///opt/pypi/simple \\
        --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels \\
        torch==2.13.0+cpu transformers peft safetensors numpy

(``--index-url`` points pip at the mirror only; with the default index it retries pypi.org first.)
Measured with: peft 0.21.0, torch 2.13.0+cpu, transformers 5.18.0, safetensors 0.8.0, numpy 2.4.6.
Do NOT run it with the paper's fork of PEFT (0.6.0.dev0); the script refuses versions below 0.10.

Run (from the repository root)
------------------------------
    /tmp/peftenv/bin/python tools/peft/make_peft_fixture.py
    # options: --model DIR (default: $SPIEL4J_ASSETS or ../shared/assets, + model/stories260K-hf)
    #          --out-lora DIR (default: gpu-worker/src/test/resources/peft-lora)
    #          --out-ia3 DIR  (default: gpu-worker/src/test/resources/peft-ia3)

Running it twice gives byte-identical files (same torch/peft versions). Takes a few seconds on one core.
"""

import argparse
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import transformers
import peft
from peft import IA3Config, LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_reference import TOKEN_IDS, default_model_dir, load_base, logits_of, repo_root  # noqa: E402

LORA_SEED = 4242  # torch.Generator seed for lora_A / lora_B
LORA_STD = 0.05
LORA_R = 4
LORA_ALPHA = 8
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IA3_SEED = 3131  # torch.Generator seed for ia3_l
IA3_STD = 0.1
IA3_TARGETS = ["k_proj", "v_proj", "down_proj"]
IA3_FEEDFORWARD = ["down_proj"]
MODEL_NAME = "stories260K-hf"


def fmt(x: float) -> str:
    # shortest decimal that round-trips to the same float32 (Java: Float.parseFloat gives the exact value)
    f = np.float32(x)
    assert np.isfinite(f), x
    s = str(f)
    assert np.float32(s) == f, (x, s)
    return s


def write_logits_json(path: Path, payload: dict, base: torch.Tensor, adapted: torch.Tensor) -> None:
    def rows(t):
        return ",\n".join("  [" + ",".join(fmt(v) for v in row.tolist()) + "]" for row in t)

    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in payload.items())
    text = ("{\n" + head + ',\n "base_logits": [\n' + rows(base) + '\n ],\n "adapter_logits": [\n'
            + rows(adapted) + "\n ]\n}\n")
    parsed = json.loads(text)  # well-formed, and the values read back exactly
    assert torch.equal(torch.tensor(parsed["adapter_logits"], dtype=torch.float32), adapted)
    assert torch.equal(torch.tensor(parsed["base_logits"], dtype=torch.float32), base)
    path.write_text(text)


def adapter_layers(peft_model, attr):
    """(name relative to the HF model, module) for every PEFT layer holding `attr`["default"], in module order."""
    hf_model = peft_model.base_model.model
    for name, module in hf_model.named_modules():
        holder = getattr(module, attr, None)
        if isinstance(holder, torch.nn.ModuleDict | torch.nn.ParameterDict) and "default" in holder:
            yield name, module


# ---- the two adapters -----------------------------------------------------------------------------------

def build_lora(model_dir: Path):
    config = LoraConfig(
        task_type="CAUSAL_LM", r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, bias="none",
        target_modules=LORA_TARGETS,
    )
    model = get_peft_model(load_base(model_dir), config)
    model.eval()
    gen = torch.Generator().manual_seed(LORA_SEED)
    n = 0
    with torch.no_grad():
        for _, m in adapter_layers(model, "lora_A"):
            for p in (m.lora_A["default"].weight, m.lora_B["default"].weight):
                p.copy_(torch.randn(p.shape, generator=gen) * LORA_STD)
            assert m.scaling["default"] == LORA_ALPHA / LORA_R
            n += 1
    assert n == len(LORA_TARGETS) * model.config.num_hidden_layers, n
    return model


def dense_lora(model_dir: Path, lora_model):
    dense = load_base(model_dir)
    with torch.no_grad():
        for name, m in adapter_layers(lora_model, "lora_A"):
            a, b = m.lora_A["default"].weight, m.lora_B["default"].weight  # [r, in], [out, r]
            dense.get_submodule(name).weight.add_((LORA_ALPHA / LORA_R) * (b @ a))
    return dense


def build_ia3(model_dir: Path):
    config = IA3Config(
        task_type="CAUSAL_LM", target_modules=IA3_TARGETS, feedforward_modules=IA3_FEEDFORWARD,
    )
    model = get_peft_model(load_base(model_dir), config)
    model.eval()
    gen = torch.Generator().manual_seed(IA3_SEED)
    n = 0
    with torch.no_grad():
        for _, m in adapter_layers(model, "ia3_l"):
            p = m.ia3_l["default"]
            p.copy_(1.0 + torch.randn(p.shape, generator=gen) * IA3_STD)
            n += 1
    assert n == len(IA3_TARGETS) * model.config.num_hidden_layers, n
    return model


def dense_ia3(model_dir: Path, ia3_model):
    dense = load_base(model_dir)
    with torch.no_grad():
        for name, m in adapter_layers(ia3_model, "ia3_l"):
            w = dense.get_submodule(name).weight  # [out, in]
            l = m.ia3_l["default"]
            if m.is_feedforward:  # scales the input features: columns of W
                assert list(l.shape) == [1, w.shape[1]], (name, l.shape)
            else:  # scales the output features: rows of W
                assert list(l.shape) == [w.shape[0], 1], (name, l.shape)
            w.mul_(l)  # broadcasting does the right thing in both cases
    return dense


# ---- one fixture --------------------------------------------------------------------------------------

def make_fixture(kind: str, model_dir: Path, out_dir: Path, base_ref: torch.Tensor, info: dict) -> None:
    print(f"=== {kind} -> {out_dir}")
    model = build_lora(model_dir) if kind == "lora" else build_ia3(model_dir)
    adapter_logits = logits_of(model, TOKEN_IDS)
    with model.disable_adapter():
        base_logits = logits_of(model, TOKEN_IDS)
    assert torch.equal(adapter_logits, logits_of(model, TOKEN_IDS)), "adapter not re-enabled"
    assert torch.equal(base_logits, base_ref), "disabled-adapter logits differ from a fresh base model"
    max_diff = (adapter_logits - base_logits).abs().max().item()
    print(f"max |adapter - base| = {max_diff:.6g}")
    assert max_diff > 1e-2, "adapter barely changes the logits"

    dense = dense_lora(model_dir, model) if kind == "lora" else dense_ia3(model_dir, model)
    dense_diff = (logits_of(dense, TOKEN_IDS) - adapter_logits).abs().max().item()
    print(f"max |dense reference - adapter| = {dense_diff:.3g}")
    assert dense_diff < 1e-4

    # ---- save ----------------------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json", "README.md",
                "logits.json"):
        (out_dir / old).unlink(missing_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    (out_dir / "README.md").unlink(missing_ok=True)  # model card written by save_pretrained; not wanted
    os.chmod(out_dir / "adapter_model.safetensors", 0o644)  # safetensors writes 0600
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = MODEL_NAME  # not the local absolute path
    # PEFT keeps target_modules / feedforward_modules as a set and saves it in set iteration order, which
    # changes from run to run (string hash randomization); sort them so reruns give identical files.
    for key in ("target_modules", "feedforward_modules"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    payload = {
        "token_ids": TOKEN_IDS,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "peft_type": cfg["peft_type"],
        "model": f"{MODEL_NAME} (float32, attn_implementation=eager)",
        **info,
        "max_abs_adapter_minus_base": max_diff,
    }
    write_logits_json(out_dir / "logits.json", payload, base_logits, adapter_logits)

    # ---- inspect the saved file ----------------------------------------------------------------------
    saved = {}
    with safe_open(str(out_dir / "adapter_model.safetensors"), framework="pt") as f:
        meta = f.metadata()
        for key in f.keys():
            saved[key] = f.get_tensor(key)
    print(f"safetensors metadata: {meta}")
    if kind == "lora":
        expected = {f"base_model.model.{n}.lora_{ab}.weight"
                    for n, _ in adapter_layers(model, "lora_A") for ab in "AB"}
    else:
        expected = {f"base_model.model.{n}.ia3_l" for n, _ in adapter_layers(model, "ia3_l")}
    assert set(saved) == expected, sorted(set(saved) ^ expected)
    for key in sorted(saved):
        t = saved[key]
        assert t.dtype == torch.float32, key
        print(f"  {key}  {str(t.dtype).replace('torch.', '')}  {list(t.shape)}")
    print(f"{len(saved)} tensors, {sum(t.numel() for t in saved.values())} floats")

    # ---- reload with PEFT ----------------------------------------------------------------------------
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = PeftModel.from_pretrained(load_base(model_dir), str(out_dir))
        res = reloaded.load_adapter(str(out_dir), adapter_name="check")  # a second copy, for its load result
    for w in caught:
        print(f"  warning during reload: {w.message}")
    adapter_missing = [k for k in res.missing_keys if ".lora_" in k or ".ia3_" in k]
    assert not adapter_missing and not res.unexpected_keys, (adapter_missing, res.unexpected_keys)
    reloaded.delete_adapter("check")
    reloaded.set_adapter("default")
    reloaded.eval()
    state = reloaded.state_dict()
    for key, t in saved.items():
        # the live parameter name has the adapter name inserted: ...lora_A.default.weight / ...ia3_l.default
        live = key.replace(".weight", ".default.weight") if kind == "lora" else key + ".default"
        assert torch.equal(state[live], t), f"{key}: not reloaded exactly"
    reload_diff = (logits_of(reloaded, TOKEN_IDS) - adapter_logits).abs().max().item()
    print(f"reload: max |reloaded - adapter| = {reload_diff:.3g}")
    assert reload_diff <= 1e-6

    total = 0
    for p in sorted(out_dir.iterdir()):
        total += p.stat().st_size
        print(f"  {p.name}  {p.stat().st_size} bytes  sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:16]}")
    print(f"  total {total} bytes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--out-lora", type=Path, default=repo_root() / "gpu-worker/src/test/resources/peft-lora")
    ap.add_argument("--out-ia3", type=Path, default=repo_root() / "gpu-worker/src/test/resources/peft-ia3")
    args = ap.parse_args()
    if not (args.model / "config.json").is_file():
        print(f"missing model: {args.model}/config.json", file=sys.stderr)
        return 2
    major, minor = (int(x) for x in peft.__version__.split(".")[:2])
    if (major, minor) < (0, 10):
        print(f"peft {peft.__version__} looks like the paper's fork; use the official peft (>= 0.10)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    base_model = load_base(args.model)
    assert all(0 <= t < base_model.config.vocab_size for t in TOKEN_IDS)
    base_ref = logits_of(base_model, TOKEN_IDS)
    del base_model

    make_fixture("lora", args.model, args.out_lora, base_ref, {
        "r": LORA_R, "lora_alpha": LORA_ALPHA, "scaling": LORA_ALPHA / LORA_R, "target_modules": LORA_TARGETS,
        "init": f"lora_A and lora_B ~ N(0, {LORA_STD}^2), torch.Generator seed {LORA_SEED}",
    })
    make_fixture("ia3", args.model, args.out_ia3, base_ref, {
        "target_modules": IA3_TARGETS, "feedforward_modules": IA3_FEEDFORWARD,
        "init": f"ia3_l ~ 1 + N(0, {IA3_STD}^2), torch.Generator seed {IA3_SEED}",
    })
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

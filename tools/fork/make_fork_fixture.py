#!/usr/bin/env python3
"""Make the fork-SFT interop fixture: an SFT adapter saved by the paper's own PEFT fork, plus logits.

The fixture lets a Java test check that spiel4j reads an adapter written by the released fork of PEFT
(AlanAnsell/peft @ 73b455b, "peft 0.6.0.dev0", the SFT method of the paper) and reproduces the fork's logits.

What it does
------------
1. Loads the tiny LLaMA model ``stories260K-hf`` with transformers (float32, eval mode).
2. Wraps it with the fork's SFT method (``SftConfig`` + ``get_peft_model``) on all seven linears of every
   block (q,k,v,o,gate,up,down), with ``num_tunable_weights=2500``. The fork splits that budget over the
   modules in proportion to their size (int() truncation, 2485 deltas in total) and draws each module's
   initial indices at random (``torch.rand`` + ``topk``, then sorted), so ``torch.manual_seed(1234)`` is set
   first to make them reproducible.
3. Sets every delta's ``values`` to N(0, 0.02^2) from a seeded ``torch.Generator`` (the fork starts them at 0).
4. Applies a deterministic permutation to the (index, value) pairs of every module, so the saved indices are
   NOT sorted (as after the fork's reselection during training). Permuting indices and values together does
   not change the delta.
5. Saves the adapter with ``save_pretrained(out_dir, safe_serialization=True)``:
   ``adapter_model.safetensors`` + ``adapter_config.json``.
6. Computes the logits for a fixed token-id sequence with the adapter active (``sft_logits``) and disabled
   (``base_logits``), and writes ``logits.json``.
7. Verifies: |sft - base| is clearly nonzero; the base logits equal those of a fresh base model; a dense
   reference (each delta added to ``weight.view(-1)[index]``, i.e. row = index // in_features,
   column = index % in_features of the [out, in] weight) gives the same sft logits; and reloading the saved
   adapter with the fork's ``PeftModel.from_pretrained`` reproduces the saved tensors exactly and the sft
   logits to 1e-6.

Adapter format written by the fork (what the Java side reads)
--------------------------------------------------------------
``adapter_model.safetensors`` holds, per targeted module, two 1-D tensors of length k:
``base_model.model.model.layers.<N>.<self_attn|mlp>.<q|k|v|o|gate|up|down>_proj.sft_delta.indices`` (int32,
flat row-major indices into the module's [out_features, in_features] weight) and ``....sft_delta.values``
(float32). ``adapter_config.json`` has ``peft_type: "SFT"`` and ``num_deltas`` (module name -> k).
The indices refer to the Hugging Face checkpoint's weights, so for q_proj/k_proj they are relative to the
HF rotate-half row order, not the interleaved (GGUF / Meta) order.

Setup (Python 3.11, CPU only; a venv outside the repository; pip reaches the local package mirror)
---------------------------------------------------------------------------------------------------
    python3 -m venv /tmp/forkenv
    /tmp/forkenv/bin/pip install --index-url file:///opt/pypi/simple \\
        --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels \\
        torch==2.13.0+cpu transformers safetensors numpy accelerate packaging psutil pyyaml tqdm
    mkdir -p /tmp/fork-src
    git -C /work/.mirror/AlanAnsell+peft/repo archive 73b455b | tar -x -C /tmp/fork-src
    cd /tmp/fork-src && MAX_JOBS=1 /tmp/forkenv/bin/pip install --no-build-isolation --no-deps -e .
    # (builds the fork's linear_sd C++ extension; ~1-4 min)

(``--index-url`` points pip at the mirror only; with the default index it retries pypi.org first.)
Measured with: torch 2.13.0+cpu, transformers 5.18.0, safetensors 0.8.0, numpy 2.4.6.

Run (from the repository root)
------------------------------
    /tmp/forkenv/bin/python tools/fork/make_fork_fixture.py
    # options: --model DIR (default: $SPIEL4J_ASSETS or ../shared/assets, + model/stories260K-hf)
    #          --out DIR   (default: gpu-worker/src/test/resources/fork-sft)

Running it twice gives byte-identical files (same torch version).

Transformers 5 imports any installed ``peft`` and the fork then fails with a circular import of
``PeftMixedModel``; the script sets ``transformers.utils.is_peft_available = lambda: False`` before
importing the fork to avoid that.
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
import transformers.utils

# Must happen before `import peft` (see the docstring).
transformers.utils.is_peft_available = lambda: False

import peft  # noqa: E402  (the fork, installed editable from /tmp/fork-src)
from peft import PeftModel, SftConfig, get_peft_model  # noqa: E402
from safetensors import safe_open  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_reference import TOKEN_IDS, default_model_dir, load_base, logits_of, repo_root  # noqa: E402

FORK_COMMIT = "73b455b"
INDEX_SEED = 1234  # torch.manual_seed before get_peft_model: the fork's random initial indices
VALUE_SEED = 20240  # torch.Generator seed for the delta values
PERM_SEED = 777  # torch.Generator seed for the per-module permutation of (index, value) pairs
VALUE_STD = 0.02
NUM_TUNABLE_WEIGHTS = 2500
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def sft_modules(peft_model):
    """(name relative to the HF model, module, SparseDelta) for every SFT linear, in module order."""
    hf_model = peft_model.base_model.model
    for name, module in hf_model.named_modules():
        sd = getattr(module, "sft_delta", None)
        if sd is not None and "default" in sd:
            yield name, module, sd["default"]


def fmt(x: float) -> str:
    # shortest decimal that round-trips to the same float32 (Java: Float.parseFloat gives the exact value)
    f = np.float32(x)
    assert np.isfinite(f), x
    return str(f)


def write_logits_json(path: Path, payload: dict, base: torch.Tensor, sft: torch.Tensor) -> None:
    def rows(t):
        return ",\n".join("  [" + ",".join(fmt(v) for v in row.tolist()) + "]" for row in t)

    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in payload.items())
    text = "{\n" + head + ',\n "base_logits": [\n' + rows(base) + '\n ],\n "sft_logits": [\n' + rows(sft) + "\n ]\n}\n"
    json.loads(text)  # well-formed
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--out", type=Path, default=repo_root() / "gpu-worker/src/test/resources/fork-sft")
    args = ap.parse_args()
    model_dir, out_dir = args.model, args.out
    if not (model_dir / "config.json").is_file():
        print(f"missing model: {model_dir}/config.json", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    # ---- base model + fork SFT wrapper -----------------------------------------------------------------
    base_ref = logits_of(load_base(model_dir), TOKEN_IDS)

    model = load_base(model_dir)
    vocab = model.config.vocab_size
    assert all(0 <= t < vocab for t in TOKEN_IDS)
    config = SftConfig(
        task_type="CAUSAL_LM",
        target_modules=TARGET_MODULES,
        num_tunable_weights=NUM_TUNABLE_WEIGHTS,
        dtype="float32",
    )
    torch.manual_seed(INDEX_SEED)
    model = get_peft_model(model, config)
    model.eval()

    # ---- deterministic values, then a deterministic permutation of (index, value) pairs ---------------
    gen_v = torch.Generator().manual_seed(VALUE_SEED)
    gen_p = torch.Generator().manual_seed(PERM_SEED)
    num_deltas = 0
    with torch.no_grad():
        for name, _, sd in sft_modules(model):
            k = sd.values.numel()
            assert torch.all(sd.indices[1:] > sd.indices[:-1]), f"{name}: fork indices not strictly sorted"
            sd.values.copy_(torch.randn(k, generator=gen_v) * VALUE_STD)
            perm = torch.randperm(k, generator=gen_p)
            sd.indices.copy_(sd.indices[perm].clone())
            sd.values.copy_(sd.values[perm].clone())
            num_deltas += k
    assert num_deltas == sum(config.num_deltas.values())
    print(f"{len(config.num_deltas)} modules, {num_deltas} deltas")

    # ---- logits --------------------------------------------------------------------------------------
    sft_logits = logits_of(model, TOKEN_IDS)
    with model.disable_adapter():
        base_logits = logits_of(model, TOKEN_IDS)
    sft_again = logits_of(model, TOKEN_IDS)
    assert torch.equal(sft_logits, sft_again), "adapter not re-enabled after disable_adapter()"
    assert torch.equal(base_logits, base_ref), "disabled-adapter logits differ from a fresh base model"
    max_diff = (sft_logits - base_logits).abs().max().item()
    print(f"max |sft - base| = {max_diff:.6g}")
    assert max_diff > 1e-3, "adapter barely changes the logits"

    # dense reference: add each delta at weight.view(-1)[index] of a fresh base model
    dense = load_base(model_dir)
    with torch.no_grad():
        for name, _, sd in sft_modules(model):
            w = dense.get_submodule(name).weight
            w.view(-1).index_add_(0, sd.indices.long(), sd.values)
    dense_diff = (logits_of(dense, TOKEN_IDS) - sft_logits).abs().max().item()
    print(f"max |dense reference - sft| = {dense_diff:.3g}")
    assert dense_diff < 1e-5

    # ---- save ----------------------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    for stray in ("README.md", "adapter_model.bin"):  # model card written by save_pretrained; not wanted
        (out_dir / stray).unlink(missing_ok=True)
    os.chmod(out_dir / "adapter_model.safetensors", 0o644)  # safetensors writes 0600
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "stories260K-hf"  # not the local absolute path
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    write_logits_json(
        out_dir / "logits.json",
        {
            "token_ids": TOKEN_IDS,
            "fork_commit": FORK_COMMIT,
            "peft": peft.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "num_deltas": num_deltas,
            "model": "stories260K-hf (float32, attn_implementation=eager)",
            "seeds": {"indices_torch_manual_seed": INDEX_SEED, "values": VALUE_SEED, "permutation": PERM_SEED},
            "value_std": VALUE_STD,
            "max_abs_sft_minus_base": max_diff,
        },
        base_logits,
        sft_logits,
    )

    # ---- inspect the saved file ----------------------------------------------------------------------
    saved = {}
    with safe_open(str(out_dir / "adapter_model.safetensors"), framework="pt") as f:
        for key in f.keys():
            saved[key] = f.get_tensor(key)
    unsorted = 0
    for key in sorted(saved):
        t = saved[key]
        print(f"  {key}  {str(t.dtype).replace('torch.', '')}  {list(t.shape)}")
        assert key.startswith("base_model.model.model.layers.") and (
            key.endswith(".sft_delta.indices") or key.endswith(".sft_delta.values")), key
        if key.endswith(".indices"):
            assert t.dtype == torch.int32
            unsorted += int(not bool(torch.all(t[1:] > t[:-1])))
    assert len(saved) == 2 * len(config.num_deltas)
    print(f"{len(saved)} tensors; modules whose indices are not sorted: {unsorted}/{len(saved) // 2}")
    assert unsorted > 0

    # ---- reload with the fork ------------------------------------------------------------------------
    torch.manual_seed(999)  # different initial indices: loading must overwrite them all
    reloaded = PeftModel.from_pretrained(load_base(model_dir), str(out_dir))
    reloaded.eval()
    for name, _, sd in sft_modules(reloaded):
        key = f"base_model.model.{name}.sft_delta."
        assert torch.equal(sd.indices, saved[key + "indices"]), f"{name}: indices not reloaded"
        assert torch.equal(sd.values, saved[key + "values"]), f"{name}: values not reloaded"
    reload_diff = (logits_of(reloaded, TOKEN_IDS) - sft_logits).abs().max().item()
    print(f"reload: max |reloaded - sft| = {reload_diff:.3g}")
    assert reload_diff <= 1e-6

    for p in sorted(out_dir.iterdir()):
        print(f"  {p.name}  {p.stat().st_size} bytes  sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:16]}")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

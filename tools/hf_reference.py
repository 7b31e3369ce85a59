"""What the fixture scripts under tools/ share: where the repository and the shared assets are, the HF copy of
stories260K as a float32 reference model, its logits, and the token ids every fixture scores.

Transformers is imported inside the functions: tools/fork/ must patch ``transformers.utils.is_peft_available``
before anything imports a model class (see make_fork_fixture.py)."""

import os
from pathlib import Path

import torch

# <s> + the first 11 ids of encode('Once upon a time, there was a little girl named Lily.')
# (tokenizer.json of stories260K-hf; see shared/assets/golden/stories260K_hf_reference.txt).
TOKEN_IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315]


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def assets_root() -> Path:
    assets = os.environ.get("SPIEL4J_ASSETS")
    return Path(assets) if assets else repo_root().parent / "shared" / "assets"


def default_model_dir() -> Path:
    return assets_root() / "model" / "stories260K-hf"


def load_base(model_dir: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


@torch.no_grad()
def logits_of(model, ids) -> torch.Tensor:
    out = model(input_ids=torch.tensor([ids], dtype=torch.long))
    return out.logits[0].detach().to(torch.float32).clone()  # [seq, vocab]

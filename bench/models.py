"""The benchmark's models: the tests' tiny Llama, a random Qwen2.5-1.5B, or any study model.

``qwen2.5-1.5b-random`` is the real Qwen2.5-1.5B architecture with random weights and the
SmolLM2 tokenizer: its token ids are only ids, which is all a speed test needs, and it is built
on the device with no download.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

import utils
from bench.tiny_model import tiny_llama_for
from engine import loading

QWEN25_15B = dict(  # Qwen2.5-1.5B(-Instruct) config.json, hard-coded: no download needed
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
    bos_token_id=151643, eos_token_id=151645,
)
RANDOM_MODELS = ("tiny", "qwen2.5-1.5b-random")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def qwen_random_model(tokenizer, dtype: torch.dtype, device: torch.device,
                      seed: int = 0) -> torch.nn.Module:
    """Qwen2.5-1.5B's architecture with random weights, built directly on ``device``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id if tokenizer is not None else QWEN25_15B["eos_token_id"]
    config = Qwen2Config(**{**QWEN25_15B, "eos_token_id": eos, "pad_token_id": eos})
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).eval()


def sharpen(model: torch.nn.Module, target_std: float = 4.0) -> torch.nn.Module:
    """Scale the final norm so logits spread like a trained model's (std ~4, peaked softmax).

    A random model's logits are nearly flat, so top-p keeps ~90 % of the vocabulary and the
    sampler's full-vocabulary sort dominates phase 1b for both engines, which no trained model
    shows. The architecture and the FLOPs are unchanged.
    """
    norm = getattr(getattr(model, "model", None), "norm", None)
    if norm is None or getattr(norm, "weight", None) is None:
        return model
    probe = torch.arange(1, 17, device=norm.weight.device)[None]
    with torch.inference_mode():
        spread = float(model(input_ids=probe).logits.float().std())
        norm.weight.mul_(target_std / max(spread, 1e-6))
    return model


def bench_tokenizer(data_dir: Path):
    """SmolLM2's tokenizer (chat template included) or None when it is not installed."""
    try:
        return utils.load_tokenizer("smollm2-135m", data_dir)
    except (utils.ModelLoadError, OSError) as exc:
        print(f"no SmolLM2 tokenizer ({exc}); using synthetic prompt ids", file=sys.stderr)
        return None


def baseline_precision(requested: str, device: torch.device) -> str:
    """The spec loads 4-bit nf4; that needs CUDA and bitsandbytes. Otherwise the best match."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "fp32"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        print("bitsandbytes is not installed: the baseline runs bf16 (faster than the spec's "
              "nf4)", file=sys.stderr)
        return "bf16"
    return "nf4"


def load_engines(args, tokenizer) -> tuple[utils.HFEngine, utils.HFEngine]:
    """(ours, baseline) for the requested model; they share weights when precisions agree."""
    device = loading.pick_device(args.device)
    base_precision = baseline_precision(args.baseline_precision, device)
    if args.model in RANDOM_MODELS:
        tiny = args.model == "tiny"
        params_b = 0.0 if tiny else loading.estimate_params_b(SimpleNamespace(**QWEN25_15B))
        precision = loading.resolve_precision(args.precision, device, params_b)
        if tiny:
            model = tiny_llama_for(tokenizer).to(device=device, dtype=_DTYPES[precision])
        else:
            model = qwen_random_model(tokenizer, _DTYPES[precision], device)
        model = sharpen(model)
        ours = utils.HFEngine(model, tokenizer, device, precision, args.model,
                                 loading.eos_token_ids(model, tokenizer or _NoTokenizer()))
        return ours, _baseline_like(ours, base_precision)
    ours = utils.load_model(args.model, args.precision, Path(args.data_dir), args.device)
    if base_precision == ours.precision:
        return ours, ours
    return ours, utils.load_model(args.model, base_precision, Path(args.data_dir), args.device)


class _NoTokenizer:
    """Stands in for a missing tokenizer: the model's generation config gives the EOS id."""

    eos_token_id = None
    pad_token_id = None


def _baseline_like(ours: utils.HFEngine, precision: str) -> utils.HFEngine:
    """The same random weights at the baseline's precision (nf4 goes through a saved copy)."""
    if precision == ours.precision:
        return ours
    if precision in _DTYPES:
        model = type(ours.model)(ours.model.config).to(ours.device, _DTYPES[precision])
        model.load_state_dict(ours.model.state_dict())
    else:
        from transformers import AutoModelForCausalLM

        with tempfile.TemporaryDirectory() as folder:
            ours.model.save_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(
                folder, **loading.load_kwargs(precision, ours.device))
    return utils.HFEngine(model.eval(), ours.tokenizer, ours.device, precision, ours.model_name,
                             ours.eos_ids)

"""Depth: the decoder stack of a causal LM, cut after its first L layers.

A truncated model keeps the embeddings, the first L decoder layers, the final norm and the LM
head, so its next-token distribution is the final head read off layer L (the "logit lens" at
L, run as a model of its own). Supported: the HF decoder-only layout used by Llama, Qwen2,
Mistral and SmolLM2 (``model.model.layers``, ``model.model.norm``, ``model.lm_head``).
"""

from __future__ import annotations

import torch

from engine.settings import ModelLoadError


def decoder_parts(model: torch.nn.Module) -> tuple[torch.nn.ModuleList, torch.nn.Module,
                                                   torch.nn.Module]:
    """(decoder layers, final norm, LM head) of a Llama/Qwen-style causal LM."""
    body = getattr(model, "model", None)
    layers, norm = getattr(body, "layers", None), getattr(body, "norm", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(layers, torch.nn.ModuleList) or norm is None or head is None:
        raise ModelLoadError(
            f"{type(model).__name__}: layer truncation and the logit lens need a Llama/Qwen-style "
            "decoder (model.layers, model.norm, lm_head); run this model without --num-layers"
        )
    return layers, norm, head


def truncate_layers(model: torch.nn.Module, num_layers: int) -> torch.nn.Module:
    """Keep the first ``num_layers`` decoder layers (in place; returns the model).

    The config is cut to match, so a KV cache built from it has one layer per kept layer.
    """
    layers, _, _ = decoder_parts(model)
    total = len(layers)
    if not 1 <= num_layers <= total:
        raise ModelLoadError(f"--num-layers {num_layers}: this model has {total} decoder layers; "
                             f"use a value from 1 to {total}")
    model.model.layers = torch.nn.ModuleList(list(layers)[:num_layers])
    config = model.config
    config.num_hidden_layers = num_layers
    # Per-layer lists (Qwen2's sliding/full attention pattern) must match the kept layers, or
    # the cache would be built for the full stack.
    for name in ("layer_types", "mlp_only_layers"):
        value = getattr(config, name, None)
        if isinstance(value, list) and len(value) == total:
            setattr(config, name, value[:num_layers])
    return model

"""The HF engine: this project's own decode loop over a transformers model (``model``).

Its modules: ``model`` (the ``HFEngine`` and its loader), ``scheduler`` (rollouts through one
full running batch), ``decode`` and ``batching`` (the decode loop and its KV caches),
``sampling``, ``branching`` (forced answers and candidate scores from a crop of the KV cache),
``power`` (power sampling), ``depth`` (keeping the first L layers), ``lens`` (the logit lens).

The package itself imports no torch: its settings section is read by the config at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.settings import KV_LAYOUTS, knob

if TYPE_CHECKING:
    import torch


class LoadedModel(Protocol):
    """What the decode loop, branching, power sampling and the lens read of a loaded model.
    ``model.HFEngine`` is the one implementation; the modules that decode take this instead of
    it, so they need not import the module that imports them."""

    model: torch.nn.Module
    tokenizer: Any
    device: torch.device
    precision: str
    eos_ids: tuple[int, ...]

    @property
    def pad_id(self) -> int: ...


@dataclass(frozen=True)
class HFSettings:
    """The HF engine's own knobs (config section ``hf``)."""

    # auto: CUDA graphs over a static cache on CUDA bf16/fp32, a growing cache elsewhere; a
    # failed compile or capture warns once and continues eagerly.
    kv_layout: str = knob("auto", flag="--kv-layout", choices=KV_LAYOUTS,
                          help="hf: KV cache: auto (static cache + CUDA graphs on CUDA "
                          "bf16/fp32, growing elsewhere), static (static cache everywhere, "
                          "compiled where CUDA graphs work) or growing (never compiled); a "
                          "failed compile warns once and continues eagerly")

"""The logit lens: how far each layer's read-out is from the model's final next-token distribution.

Layer l's hidden state (the output of decoder layer l) is passed through the final norm and the
LM head, as if the model ended there; KL(final || layer l) is measured at every position whose
next token is a generated one. At the last layer the read-out is the model's own, so its KL is 0.

Hidden states are taken with forward hooks on the decoder layers rather than
``output_hidden_states``: HF returns the last entry already normed, and the hooks keep only the
generated positions instead of every prompt position of every layer. Full-vocabulary logits
exist for one layer and ``chunk_tokens`` positions at a time, so memory stays flat in depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.hf.batching import left_padded
from engine.hf.depth import decoder_parts

if TYPE_CHECKING:
    from engine.hf import LoadedModel

CHUNK_TOKENS = 256  # positions per full-vocabulary logits block (256 x 152k fp32 = 155 MB)


@dataclass(frozen=True)
class LensKL:
    """Per-token KL(final || layer l) of one sequence; layers are 1..L (row l-1 is layer l)."""

    per_token: np.ndarray  # [layers, generated tokens], nats

    def mean(self, upto: int | None = None) -> np.ndarray:
        """Mean KL per layer over the first ``upto`` generated tokens (None: all)."""
        return self.per_token[:, :upto].mean(axis=1)


def _kl_rows(final_logp: torch.Tensor, layer_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_final || p_layer) per row, from final log-probs and raw layer logits (fp32)."""
    layer_logp = torch.log_softmax(layer_logits.float(), dim=-1)
    return (final_logp.exp() * (final_logp - layer_logp)).sum(dim=-1)


@torch.inference_mode()
def logit_lens_kl(lm: LoadedModel, prompts: Sequence[Sequence[int]],
                  generated: Sequence[Sequence[int]], batch_size: int = 4,
                  chunk_tokens: int = CHUNK_TOKENS) -> list[LensKL]:
    """KL(final || layer) per layer and generated token for each (prompt, generated) pair.

    The model reads ``prompt + generated[:-1]``; position t's distribution is compared for every
    generated token it predicts. Rows are batched with left padding (``batch_size`` at a time).
    """
    if any(len(g) == 0 for g in generated):
        raise ValueError("every sequence needs at least one generated token")
    layers, norm, head = decoder_parts(lm.model)
    body = lm.model.model
    out: list[LensKL] = []
    for start in range(0, len(prompts), batch_size):
        rows = range(start, min(start + batch_size, len(prompts)))
        seqs = [list(prompts[i]) + list(generated[i])[:-1] for i in rows]
        lengths = [len(generated[i]) for i in rows]
        width = max(lengths)
        captured: list[torch.Tensor] = []

        def keep_tail(_module, _args, output, captured=captured, width=width):
            hidden = output[0] if isinstance(output, tuple) else output
            captured.append(hidden[:, -width:, :].clone())  # a copy: the view would pin all T

        hooks = [layer.register_forward_hook(keep_tail) for layer in layers]
        try:
            ids, mask = left_padded(seqs, lm.pad_id, lm.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            final = body(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=False).last_hidden_state[:, -width:, :]
        finally:
            for hook in hooks:
                hook.remove()
        for row, n in enumerate(lengths):
            kl = torch.zeros(len(layers), n, dtype=torch.float32)
            for lo in range(0, n, chunk_tokens):
                cols = slice(width - n + lo, width - n + min(lo + chunk_tokens, n))
                final_logp = torch.log_softmax(head(final[row, cols]).float(), dim=-1)
                for depth, hidden in enumerate(captured):
                    read_out = head(norm(hidden[row, cols]))
                    kl[depth, lo:lo + read_out.shape[0]] = _kl_rows(final_logp, read_out).cpu()
            # Tiny negative values are rounding (KL >= 0); clamp so means stay honest.
            out.append(LensKL(kl.clamp_(min=0.0).numpy()))
    return out

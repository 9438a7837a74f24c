"""The seam for a model that another library decodes (vLLM: ``engine.vllm_engine``).

``generate_rollouts``, ``branch_answers``, ``branch_scores``, ``power_sample`` and the logit lens
take the model they are handed; when it is an ``ExternalModel`` they hand the call to its own
methods, so study code calls the same functions whichever engine loaded the model. This module
imports nothing of the engine, so every engine module can import it without an import circle.
"""

from __future__ import annotations

from typing import Any

from engine.settings import ModelLoadError


class ExternalModel:
    """A loaded model whose generation another engine runs; the methods mirror the engine's
    functions of the same names (same arguments after the model, same results)."""

    engine = "external"  # the name users pass as --engine

    def generate_rollouts(self, *args: Any, **kwargs: Any) -> list:
        raise self.unsupported("rollouts")

    def branch_answers(self, *args: Any, **kwargs: Any) -> list:
        raise self.unsupported("forced answers")

    def branch_scores(self, *args: Any, **kwargs: Any) -> list:
        raise self.unsupported("candidate scores")

    def auto_batch_size(self, prompts: list, max_new_tokens: int) -> int:
        return max(1, min(len(prompts), 16))

    def describe(self) -> str:
        return f"{self.engine} engine"

    def unsupported(self, what: str) -> ModelLoadError:
        """The error for a method this engine cannot run: the HF engine can."""
        return ModelLoadError(f"{what} need(s) --engine hf; the {self.engine} engine cannot "
                              "run it")

"""The served engine's client: ``ServedModel``, its requests and how answers are read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.base import (
    BatchCallback,
    Branch,
    BranchAnswer,
    Engine,
    RequestFailed,
    Rollout,
    checked_branches,
    per_row,
    progress_bar,
)
from engine.openai import OpenAISettings
from engine.settings import SamplingConfig

log = logging.getLogger("saturation")

@dataclass(eq=False)
class ServedModel(Engine):
    """A model behind one or more OpenAI-compatible servers, prompted with token ids."""

    tokenizer: Any
    eos_ids: tuple[int, ...]
    model_name: str  # --model: the local tokenizer and chat template
    served_model: str  # what the server calls it
    urls: tuple[str, ...]
    settings: OpenAISettings
    server: dict = field(default_factory=dict)  # name and version, from the probe
    token_mode: str = "token_ids"  # how the server returns generated ids (the probe decides)
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()
    api_key: str | None = field(default=None, repr=False)  # from the environment, never saved
    name = "openai"

    # ------------------------------------------------------------ the engine's methods

    def generate_rollouts(self, prompts: Sequence[Sequence[int]],
                          max_new_tokens: int | Sequence[int], sampling: SamplingConfig,
                          seeds: Sequence[int], batch_size: int = 0,
                          on_batch: BatchCallback | None = None,
                          progress: bool = True) -> list[Rollout]:
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt is required")
        budgets = per_row(max_new_tokens, len(prompts))
        rollouts: list[Rollout | None] = [None] * len(prompts)
        asked = [i for i, b in enumerate(budgets) if b > 0]
        for i in set(range(len(prompts))) - set(asked):
            rollouts[i] = Rollout((), False)
        payloads = [self.payload(prompts[i], budgets[i], sampling, seeds[i]) for i in asked]

        def arrived(k: int, choice: dict) -> None:
            i = asked[k]
            ids = self.generated_ids(choice)
            rollouts[i] = Rollout(tuple(ids), bool(ids) and ids[-1] in self.eos_ids)
            if on_batch is not None:  # saved as it arrives, in any order
                on_batch([i], [rollouts[i]])

        self.complete(payloads, arrived, progress_bar(len(payloads), progress))
        return rollouts  # type: ignore[return-value]

    def branch_answers(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                       cue_ids: Sequence[int], answer_tokens: int, batch_size: int = 16,
                       progress: bool = False) -> list[BranchAnswer]:
        if not cue_ids:
            raise ValueError("the cue must have at least one token")
        greedy = SamplingConfig()
        payloads = [self.payload([*sequences[b.row][:b.prefix_len], *cue_ids], answer_tokens,
                                 greedy, 0) for b in checked_branches(sequences, branches)]
        answers: list[BranchAnswer | None] = [None] * len(payloads)

        def arrived(k: int, choice: dict) -> None:
            ids = tuple(self.generated_ids(choice))
            answers[k] = BranchAnswer(ids, bool(ids) and ids[-1] in self.eos_ids)

        self.complete(payloads, arrived,
                      progress_bar(len(payloads), progress, "forcing answers", "branch"))
        return answers  # type: ignore[return-value]

    def branch_scores(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                      cue_ids: Sequence[int], candidates: Sequence[Sequence[Sequence[int]]],
                      batch_size: int = 16, progress: bool = False) -> list[list[float]]:
        """Token j of a candidate is one request: prompt = head + candidate[:j], one greedy
        token restricted to candidate[j]; its log-probability is the raw model's (vLLM's
        default ``--logprobs-mode raw_logprobs``, checked by the probe)."""
        pairs = [(k, c) for k, cands in enumerate(candidates) for c in range(len(cands))]
        if any(len(candidates[k][c]) == 0 for k, c in pairs):
            raise ValueError("every candidate needs at least one token")
        checked = checked_branches(sequences, branches)
        steps = [(k, c, j) for k, c in pairs for j in range(len(candidates[k][c]))]
        payloads = []
        for k, c, j in steps:
            head = [*sequences[checked[k].row][:checked[k].prefix_len], *cue_ids]
            payloads.append(self.score_payload([*head, *candidates[k][c][:j]],
                                               int(candidates[k][c][j])))
        scores: list[list[float]] = [[0.0] * len(c) for c in candidates]

        def arrived(n: int, choice: dict) -> None:
            k, c, _ = steps[n]
            scores[k][c] += token_logprob(choice)

        self.complete(payloads, arrived,
                      progress_bar(len(payloads), progress, "scoring answers", "token"))
        return scores

    def auto_batch_size(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> int:
        # the server batches; this only names the groups progress is reported in
        return max(1, min(len(prompts), self.settings.max_concurrency * len(self.urls)))

    def describe(self) -> str:
        server = " ".join(str(v) for v in (self.server.get("name"), self.server.get("version"))
                          if v)
        return f"served: {', '.join(self.urls)} ({server or 'unknown server'})"

    def provenance(self) -> dict[str, Any]:
        return {"engine": self.name, "device": self.describe(), "urls": list(self.urls),
                "served_model": self.served_model, "server": dict(self.server),
                "token_ids_from": self.token_mode}

    # ------------------------------------------------------------ requests

    def payload(self, prompt: Sequence[int], max_tokens: int, sampling: SamplingConfig,
                seed: int) -> dict:
        """A completions request for exact tokens. Every sampling field is sent, so a server's
        defaults (a model's generation_config: top_k, repetition_penalty) never apply."""
        body: dict[str, Any] = {
            "model": self.served_model, "prompt": [int(t) for t in prompt],
            "max_tokens": int(max_tokens), "n": 1,
            "temperature": 0.0 if sampling.greedy else sampling.temperature,
            "top_p": 1.0 if sampling.greedy else sampling.top_p,
            "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0,
            "frequency_penalty": 0.0, "stop_token_ids": list(self.eos_ids),
            "skip_special_tokens": False,
        }
        if not sampling.greedy:
            body["seed"] = int(seed)
        return {**body, **self.token_fields()}

    def score_payload(self, prompt: Sequence[int], token: int) -> dict:
        body = self.payload(prompt, 1, SamplingConfig(), 0)
        body.update(allowed_token_ids=[token], logprobs=0)
        return body

    def token_fields(self) -> dict:
        if self.token_mode == "logprobs":
            return {"logprobs": 0, "return_tokens_as_token_ids": True}
        return {"return_token_ids": True}

    def generated_ids(self, choice: dict) -> list[int]:
        ids = ids_from(choice, self.token_mode)
        if ids is None:
            raise RequestFailed(f"{self.urls[0]}: a completion came back without token ids "
                                f"({self.token_mode}); the server stopped honouring the "
                                "request fields the probe checked")
        return ids

    def complete(self, payloads: list[dict], arrived: Callable[[int, dict], None],
                 bar: Any = None) -> None:
        """Send every payload (at most ``max_concurrency`` in flight per URL) and hand each
        answer's first choice to ``arrived(index, choice)`` as it comes."""
        from engine.openai.http import run_requests

        try:
            if payloads:
                asyncio.run(run_requests(self.urls, payloads, arrived, self.settings,
                                         self.api_key, bar))
        finally:
            if bar is not None:
                bar.close()


def ids_from(choice: dict, mode: str) -> list[int] | None:
    """The generated token ids of one completion choice, or None when it carries none."""
    if mode == "token_ids":
        ids = choice.get("token_ids")
        return [int(t) for t in ids] if isinstance(ids, list) else None
    tokens = (choice.get("logprobs") or {}).get("tokens")
    if not isinstance(tokens, list) or not all(str(t).startswith("token_id:") for t in tokens):
        return None
    return [int(str(t).split(":", 1)[1]) for t in tokens]


def token_logprob(choice: dict) -> float:
    """The log-probability of the one token a scoring request generated."""
    values = (choice.get("logprobs") or {}).get("token_logprobs") or []
    if len(values) != 1 or values[0] is None:
        raise RequestFailed("a scoring request came back without the token's log-probability")
    return float(values[0])

"""The start-up probe of every server URL: in seconds, before anything is written.

Each check ends, when it fails, in one line that names the URL and what to do:
- ``/v1/models`` lists the served model (else: what the server serves);
- the server tokenizes a probe text as the local tokenizer does ("tokenizer mismatch");
- a completion of token ids returns token ids (``return_token_ids``, else ``logprobs`` with
  ``return_tokens_as_token_ids``) and echoes the prompt's ids unchanged;
- a scoring request honours ``allowed_token_ids`` and returns the raw log-probability.
No retries here: a URL that refuses or does not answer is reported at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from engine.base import RequestFailed
from engine.openai.http import brief, describe_failure, headers
from engine.settings import SamplingConfig

if TYPE_CHECKING:
    from engine.openai.client import ServedModel

# Seconds the probe's first requests (models, version, tokenize) may take: a URL that refuses
# or does not answer is reported within a few seconds.
PROBE_TIMEOUT_S = 3.0
# The probe's completions may take longer: a server's very first one warms it up (9 s for
# SmolLM2 on vLLM's CPU build), which is no fault.
PROBE_COMPLETION_TIMEOUT_S = 60.0
# Digits, spacing and non-ASCII text: where two tokenizers of one family tend to differ.
PROBE_TEXT = "Probe: 12 + 3.75 = 15.75, héllo   wörld\n\t∑ 1000000"


@dataclass(frozen=True)
class ProbeResult:
    server: dict  # {"name", "version"} for provenance
    token_mode: str  # "token_ids" or "logprobs"


def probe(model: ServedModel) -> ProbeResult:
    """Check every URL of ``model`` (RequestFailed on the first problem)."""
    results = [probe_url(model, url) for url in model.urls]
    modes = {r.token_mode for r in results}
    # several URLs: the oldest way any of them needs is used for all
    return ProbeResult(results[0].server, "logprobs" if "logprobs" in modes else "token_ids")


def probe_url(model: ServedModel, url: str) -> ProbeResult:
    timeout = httpx.Timeout(PROBE_TIMEOUT_S)
    with httpx.Client(timeout=timeout, headers=headers(model.api_key)) as client:
        served = _get(client, url, f"{url}/models")
        names = [str(m.get("id")) for m in served.get("data", []) if isinstance(m, dict)]
        if model.served_model not in names:
            raise RequestFailed(f"{url} serves {', '.join(names) or 'no model'}, not "
                                f"{model.served_model!r}: pass --served-model "
                                f"{names[0] if names else 'NAME'}, or point --base-url at the "
                                "server of that model")
        root = url[: -len("/v1")] if url.endswith("/v1") else url
        server = {"name": _owner(served, model.served_model), "version": _version(client, root)}
        _check_tokenizer(client, url, root, model)
        mode = _check_token_ids(client, url, model)
        # the scoring check sends the fields this server answers to
        _check_scores(client, url, dataclasses.replace(model, token_mode=mode))
    return ProbeResult(server, mode)


def _request(client: httpx.Client, url: str, method: str, target: str,
             body: dict | None = None, timeout: float = PROBE_TIMEOUT_S) -> httpx.Response:
    try:
        return client.request(method, target, json=body, timeout=timeout)
    except httpx.TransportError as exc:
        raise RequestFailed(f"cannot reach {url} ({describe_failure(exc)}): is the server up "
                            "and --base-url right (its address ending in /v1)?") from exc


def _get(client: httpx.Client, url: str, target: str) -> dict:
    response = _request(client, url, "GET", target)
    if response.status_code == 401:
        raise RequestFailed(f"{url} wants an API key (HTTP 401): pass --api-key-env with the "
                            "name of the environment variable that holds it")
    if response.status_code != 200:
        raise RequestFailed(f"{target} answered HTTP {response.status_code} ({brief(response)}):"
                            " is --base-url an OpenAI-compatible server's address ending in /v1?")
    try:
        return response.json()
    except ValueError as exc:
        raise RequestFailed(f"{target} did not answer JSON: is --base-url an OpenAI-compatible "
                            "server?") from exc


def _owner(served: dict, name: str) -> str | None:
    for entry in served.get("data", []):
        if isinstance(entry, dict) and entry.get("id") == name:
            return entry.get("owned_by")
    return None


def _version(client: httpx.Client, root: str) -> str | None:
    try:
        response = client.get(f"{root}/version")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None  # not every server has it (vLLM does)
    try:
        return str(response.json().get("version"))
    except (ValueError, AttributeError):
        return None


def _check_tokenizer(client: httpx.Client, url: str, root: str, model: ServedModel) -> None:
    local = model.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    response = _request(client, url, "POST", f"{root}/tokenize",
                        {"model": model.served_model, "prompt": PROBE_TEXT,
                         "add_special_tokens": False})
    if response.status_code == 404:
        return  # no /tokenize (not vLLM): the echoed prompt ids are still checked below
    if response.status_code != 200:
        raise RequestFailed(f"{root}/tokenize answered HTTP {response.status_code} "
                            f"({brief(response)})")
    remote = response.json().get("tokens")
    if remote != local:
        at = next((i for i, (a, b) in enumerate(zip(local, remote or [])) if a != b),
                  min(len(local), len(remote or [])))
        raise RequestFailed(f"tokenizer mismatch: {url} tokenizes a probe text differently from "
                            f"{model.model_name}'s tokenizer (first difference at token {at}); "
                            "serve the same model, or pass the served model's --model")


def _completion(client: httpx.Client, url: str, body: dict, model: ServedModel) -> dict:
    limit = min(PROBE_COMPLETION_TIMEOUT_S, model.settings.request_timeout)
    response = _request(client, url, "POST", f"{url}/completions", body, timeout=limit)
    if response.status_code >= 400:
        raise RequestFailed(f"{url} refused the probe's completion (HTTP "
                            f"{response.status_code}): {brief(response)}")
    choices = response.json().get("choices") or []
    if not choices:
        raise RequestFailed(f"{url}: the probe's completion came back without choices")
    return choices[0]


def _check_token_ids(client: httpx.Client, url: str, model: ServedModel) -> str:
    from engine.openai.client import ids_from

    prompt = model.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    body = model.payload(prompt, 2, SamplingConfig(), 0)
    body.update(return_token_ids=True, logprobs=0, return_tokens_as_token_ids=True)
    choice = _completion(client, url, body, model)
    echoed = choice.get("prompt_token_ids")
    if echoed is not None and [int(t) for t in echoed] != list(prompt):
        raise RequestFailed(f"{url} changed the prompt's token ids (it adds or drops tokens, a "
                            "BOS say): the study sends exact ids and needs them kept")
    for mode in ("token_ids", "logprobs"):
        ids = ids_from(choice, mode)
        if ids:
            return mode
    raise RequestFailed(f"{url} returned no token ids (it ignored return_token_ids and "
                        "return_tokens_as_token_ids): the study needs the exact generated "
                        "tokens; serve the model with vLLM (or a server that returns them)")


def _check_scores(client: httpx.Client, url: str, model: ServedModel) -> None:
    """A token the model would not pick, forced: honoured, and its log-probability raw (< 0;
    a server started with --logprobs-mode processed_* would say 0 after the restriction)."""
    from engine.openai.client import ids_from

    prompt = model.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    first = _completion(client, url, model.payload(prompt, 1, SamplingConfig(), 0), model)
    greedy = ids_from(first, model.token_mode) or [0]
    forced = 1 if greedy[0] != 1 else 2
    choice = _completion(client, url, model.score_payload(prompt, forced), model)
    got = ids_from(choice, model.token_mode)
    values: list[Any] = (choice.get("logprobs") or {}).get("token_logprobs") or []
    if got != [forced] or len(values) != 1:
        raise RequestFailed(f"{url} ignored allowed_token_ids or returned no log-probability: "
                            "candidate scores (p_gold) need both")
    if values[0] is None or float(values[0]) >= 0.0:
        raise RequestFailed(f"{url} returns processed log-probabilities (a forced token scored "
                            f"{values[0]}): restart the server with --logprobs-mode "
                            "raw_logprobs (vLLM's default)")

"""Requests to the servers: concurrency, the choice of URL, retries and the one-line errors.

Retried (tenacity, jittered exponential backoff, ``max_retries`` tries after the first):
connection errors, timeouts, 429 and 5xx. Any other 4xx is a refusal, reported with the field
the server named. Whatever fails for good raises ``RequestFailed`` and cancels the requests
still in flight; the answers that came before it have already been handed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import tenacity

from engine.base import RequestFailed

log = logging.getLogger("saturation")

# Waits between two tries of one request: random up to BACKOFF_S x 2^(try - 1), at most
# MAX_BACKOFF_S seconds (about a minute in all over the default 5 retries).
BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# Seconds to open a connection: a server that is down refuses at once, one that is gone is slow.
CONNECT_TIMEOUT_S = 10.0


class Transient(Exception):
    """An answer worth trying again: 429 (too many requests) or 5xx."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}: {brief(response)}")
        self.response = response


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (Transient, httpx.TransportError))


def headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def brief(response: httpx.Response) -> str:
    """The server's own error message, in one line."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().replace("\n", " ")[:300] or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        field = error.get("param")
        message = str(error.get("message") or error.get("detail") or error)
        return f"{message} (field: {field})" if field else message
    return str(error)[:300]


def refused(url: str, response: httpx.Response) -> RequestFailed:
    """The one line for a 4xx that retrying cannot fix."""
    hint = {401: "; set --api-key-env to the variable holding the server's key",
            403: "; the key has no access to this model",
            404: "; is --base-url the server's address ending in /v1?"}
    return RequestFailed(f"{url} refused a request (HTTP {response.status_code}): "
                         f"{brief(response)}{hint.get(response.status_code, '')}")


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within the timeout ({type(exc).__name__})"
    if isinstance(exc, httpx.TransportError):
        return f"{type(exc).__name__}: {exc or 'connection failed'}"
    return str(exc)


async def post(client: httpx.AsyncClient, url: str, payload: dict, retries: int) -> dict:
    """POST ``payload`` to ``url``/completions with retries; the answer's first choice."""
    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=tenacity.wait_random_exponential(multiplier=BACKOFF_S, max=MAX_BACKOFF_S),
        stop=tenacity.stop_after_attempt(retries + 1), reraise=True,
        before_sleep=lambda state: log.warning(
            "%s: %s; trying again (%d of %d)", url, describe_failure(state.outcome.exception()),
            state.attempt_number, retries))
    try:
        async for attempt in retrying:
            with attempt:
                response = await client.post(f"{url}/completions", json=payload)
                if response.status_code == 429 or response.status_code >= 500:
                    raise Transient(response)
    except (Transient, httpx.TransportError) as exc:
        tries = f"{retries + 1} tries" if retries else "1 try"
        raise RequestFailed(f"{url}: a request failed after {tries} "
                            f"({describe_failure(exc)})") from exc
    if response.status_code >= 400:
        raise refused(url, response)
    choices = response.json().get("choices") or []
    if not choices:
        raise RequestFailed(f"{url}: a completion came back without choices")
    return choices[0]


async def run_requests(urls: Sequence[str], payloads: Sequence[dict],
                       arrived: Callable[[int, dict], None], settings: Any,
                       api_key: str | None, bar: Any = None) -> None:
    """Every payload once; ``arrived(index, choice)`` as each answer comes. At most
    ``settings.max_concurrency`` requests per URL are in flight, and each goes to the URL with
    the fewest. The first request that fails for good cancels the rest and is raised."""
    width = settings.max_concurrency * len(urls)
    in_flight = {url: 0 for url in urls}
    slots = asyncio.Semaphore(width)
    timeout = httpx.Timeout(settings.request_timeout, connect=CONNECT_TIMEOUT_S)
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    async with httpx.AsyncClient(timeout=timeout, limits=limits,
                                 headers=headers(api_key)) as client:

        async def one(index: int) -> None:
            async with slots:
                url = min(urls, key=in_flight.__getitem__)
                in_flight[url] += 1
                try:
                    choice = await post(client, url, payloads[index], settings.max_retries)
                finally:
                    in_flight[url] -= 1
            arrived(index, choice)
            if bar is not None:
                bar.update(1)

        tasks = [asyncio.ensure_future(one(i)) for i in range(len(payloads))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

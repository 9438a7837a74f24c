"""A stub OpenAI-compatible completions server on 127.0.0.1, for the served engine's unit tests
(payloads, retries, the probe's errors). It tokenizes with the tokenizer it is given and
"generates" token ids by a fixed rule, so answers are known; ``faults`` shape its failures.
The tests that show the engine works use a real vLLM server (``tests/vllm_server.py``)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubState:
    tokenizer: Any
    served: str = "stub-model"
    token_ids: bool = True  # return_token_ids honoured
    logprob_ids: bool = True  # return_tokens_as_token_ids honoured (the older servers' way)
    raw_logprobs: bool = True  # False: a forced token scores 0.0 (processed log-probs)
    retokenize_offset: int = 0  # != 0: /tokenize answers other ids (a different tokenizer)
    fail_next: list[int] = field(default_factory=list)  # HTTP codes for the next completions
    fail_after: int | None = None  # every completion after this many received gets a 500
    reject: tuple[int, str, str] | None = None  # (code, message, param) for every completion
    delay_s: float = 0.0  # each completion takes this long
    api_key: str | None = None  # required Bearer key, if any
    requests: list[dict] = field(default_factory=list)  # completion bodies received
    headers: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def next_ids(prompt: list[int], n: int) -> list[int]:
    """The stub's "generation": token k is (last prompt id + 7 * (k + 1)) mod 1000 + 10."""
    last = prompt[-1] if prompt else 0
    return [(last + 7 * (k + 1)) % 1000 + 10 for k in range(n)]


def handler(state: StubState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorised(self) -> bool:
            if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
                self.send(401, {"error": {"message": "bad key", "code": 401}})
                return False
            return True

        def do_GET(self):
            if not self.authorised():
                return
            if self.path == "/v1/models":
                self.send(200, {"data": [{"id": state.served, "owned_by": "stub"}]})
            elif self.path == "/version":
                self.send(200, {"version": "0.0-stub"})
            else:
                self.send(404, {"detail": "Not Found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self.authorised():
                return
            if self.path == "/tokenize":
                ids = state.tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]
                self.send(200, {"tokens": [t + state.retokenize_offset for t in ids]})
                return
            if self.path != "/v1/completions":
                self.send(404, {"detail": "Not Found"})
                return
            with state.lock:
                state.requests.append(body)
                state.headers.append(dict(self.headers))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                fault = state.fail_next.pop(0) if state.fail_next else None
                if state.fail_after is not None and len(state.requests) > state.fail_after:
                    fault = 500
            try:
                time.sleep(state.delay_s)
                self.complete(body, fault)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def complete(self, body: dict, fault: int | None) -> None:
            if fault is not None:
                self.send(fault, {"error": {"message": f"injected {fault}", "code": fault}})
                return
            if state.reject is not None:
                code, message, param = state.reject
                self.send(code, {"error": {"message": message, "param": param, "code": code}})
                return
            if body.get("model") != state.served:
                self.send(404, {"error": {"message": "no such model", "code": 404}})
                return
            allowed = body.get("allowed_token_ids")
            ids = allowed[:1] if allowed else next_ids(body["prompt"], body["max_tokens"])
            stops = set(body.get("stop_token_ids") or [])
            for k, t in enumerate(ids):
                if t in stops:
                    ids = ids[:k + 1]
                    break
            choice: dict[str, Any] = {"index": 0, "text": "", "finish_reason": "length"}
            if state.token_ids and body.get("return_token_ids"):
                choice["token_ids"] = ids
                choice["prompt_token_ids"] = body["prompt"]
            if body.get("logprobs") is not None:
                score = -1.5 if state.raw_logprobs or not allowed else 0.0
                choice["logprobs"] = {"token_logprobs": [score] * len(ids),
                                      "tokens": [f"token_id:{t}" if
                                                 body.get("return_tokens_as_token_ids") and
                                                 state.logprob_ids else "?" for t in ids]}
            self.send(200, {"choices": [choice]})

    return Handler


class StubServer:
    """``with StubServer(state) as url:`` serves on a free port of 127.0.0.1."""

    def __init__(self, state: StubState):
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
        self.httpd.daemon_threads = True

    def __enter__(self) -> str:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A real vLLM OpenAI-compatible server on 127.0.0.1, for the served engine's tests.

The server itself lives in ``bench/served.py`` (the benchmark's ``openai`` row starts the same
one): ``python -m vllm.entrypoints.openai.api_server`` in its own process group, bound to
127.0.0.1 on a free port, stopped by its process group whatever happens.
"""

from __future__ import annotations

from bench.served import START_TIMEOUT_S, VllmServer, free_port

__all__ = ["START_TIMEOUT_S", "VllmServer", "free_port"]

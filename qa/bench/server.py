"""Launching `qa serve` as users run it (a subprocess on a free port), and building
indexes in a subprocess, for the benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

URL = re.compile(r"Serving on (http://\S+)")


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    started: float
    output: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        u = urlparse(self.url)
        if u.hostname is None or u.port is None:
            raise ValueError(f"no host and port in {self.url!r}")
        return u.hostname, u.port

    def memory(self) -> dict[str, float | None]:
        """The server's current and peak resident memory in MiB (Linux /proc)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return {"rss_mib": None, "peak_rss_mib": None}
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return {
            "rss_mib": round(int(values.get("VmRSS", 0)) / 1024, 1),
            "peak_rss_mib": round(int(values.get("VmHWM", 0)) / 1024, 1),
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch_serve(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `qa serve` on 127.0.0.1 and a free port with ``args``; return the process, the
    URL it printed and the list its output keeps being appended to."""
    cmd = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
        cwd=cwd,
    )
    output: list[str] = []
    found = threading.Event()
    stdout = process.stdout
    assert stdout is not None  # stdout=PIPE

    def read() -> None:  # keep draining the pipe so the server never blocks on it
        for line in stdout:
            output.append(line)
            if URL.search(line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.01):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError("qa serve did not start:\n" + "".join(output))
    url = next(m.group(1) for line in output if (m := URL.search(line)))
    return process, url, output


def start_server(
    seeds: Path, index: Path, threads: int, env: dict[str, str], timeout: float = 300
) -> Server:
    """`qa serve` on a free port; returns once it prints its URL."""
    started = time.perf_counter()
    args = ["--threads", str(threads), "--seeds", str(seeds), "--index", str(index)]
    process, url, output = launch_serve(args, env=env, timeout=timeout)
    return Server(process, url, started, output)


def build_index_process(seeds: Path, index: Path, env: dict[str, str]) -> dict[str, Any]:
    """`qa index` in a subprocess: sentences per second and the build's peak memory."""
    from ..index import read_manifest

    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--seeds", str(seeds), "--index", str(index)],
            stdout=log,
            stderr=log,
            env=env,
        )
        # wait4 gives this child's own peak memory (ru_maxrss, KiB on Linux)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if process.returncode:
            log.seek(0)
            raise RuntimeError(f"qa index failed:\n{log.read().decode(errors='replace')}")
    peak = round(usage.ru_maxrss / 1024, 1)
    manifest = read_manifest(index)
    if manifest is None:
        raise RuntimeError(f"qa index wrote no manifest in {index}")
    sentences = manifest["counts"]["sentences"]
    seconds = manifest.get("build_seconds") or wall
    return {
        "sentences": sentences,
        "build_seconds": round(seconds, 2),
        "sentences_per_s": round(sentences / seconds, 1) if seconds else None,
        "process_seconds": round(wall, 2),
        "index_kind": manifest.get("faiss", {}).get("kind"),
        "build_peak_rss_mib": peak,
    }

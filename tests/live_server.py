"""Start the real server (`qa serve` on waitress) as a subprocess, for the serve and
browser tests. Port 0 lets the OS pick a free port; the server prints the URL it got."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
URL = re.compile(r"Serving on (http://\S+)")


@dataclass
class LiveServer:
    process: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)

    def stop(self, sig=None, timeout: float = 20) -> int:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def text(self) -> str:
        return "".join(self.output)


def start_server(workdir: Path, *args: str, timeout: float = 120) -> LiveServer:
    """`qa serve` over a copy of the seeds and a fresh index folder inside ``workdir``."""
    seeds = workdir / "seeds"
    if not seeds.exists():
        shutil.copytree(SEEDS, seeds)
    cmd = [
        sys.executable,
        "-m",
        "qa",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--seeds",
        str(seeds),
        "--index",
        str(workdir / "index"),
        *args,
    ]
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        cwd=workdir,
    )
    output: list[str] = []
    found = threading.Event()

    def read() -> None:  # keep draining the pipe so the server never blocks on it
        for line in process.stdout:
            output.append(line)
            if URL.search(line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError("qa serve did not start:\n" + "".join(output))
    url = next(URL.search(line).group(1) for line in output if URL.search(line))
    return LiveServer(process, url, output)

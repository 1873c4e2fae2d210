"""Start the real server (`qa serve` on waitress) as a subprocess, for the serve and
browser tests. Port 0 lets the OS pick a free port; the server prints the URL it got."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from qa.bench.server import launch_serve

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


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
    args = ["--seeds", str(seeds), "--index", str(workdir / "index"), *args]
    process, url, output = launch_serve(args, cwd=workdir, timeout=timeout)
    return LiveServer(process, url, output)

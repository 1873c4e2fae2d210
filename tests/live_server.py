"""Start the real server (`qa serve` on waitress) as a subprocess, for the serve and
browser tests. Port 0 lets the OS pick a free port; the server prints the URL it got."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from qa.bench.server import launch_serve

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


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


def start_server(
    workdir: Path, *args: str, timeout: float = 120, env: dict | None = None
) -> LiveServer:
    """`qa serve` over a copy of the seeds and a fresh index folder inside ``workdir``;
    ``env`` adds to the environment (QA_* settings that have no flag). The server runs this
    checkout's code, whichever checkout the virtualenv was installed from."""
    seeds = workdir / "seeds"
    if not seeds.exists():
        shutil.copytree(SEEDS, seeds)
    args = ["--seeds", str(seeds), "--index", str(workdir / "index"), *args]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    environ = {**os.environ, **(env or {}), "PYTHONPATH": path}
    process, url, output = launch_serve(args, env=environ, cwd=workdir, timeout=timeout)
    return LiveServer(process, url, output)

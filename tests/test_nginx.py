"""The README's nginx block ("Exposing it to the internet"), read from the README itself so
that the two cannot drift: it parses with `nginx -t`, and in front of the real `qa serve`
it passes each client's address on, so that the rate limit counts clients, not nginx.

Debian's nginx (`make test` installs it when missing, as root); skipped without it, except
under CI (QA_REQUIRE_NGINX=1), where a missing nginx fails the run."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from live_server import start_server

README = Path(__file__).resolve().parent.parent / "README.md"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)

if os.environ.get("QA_REQUIRE_NGINX") == "1" and NGINX is None:
    raise RuntimeError("no nginx: apt-get install nginx")
pytestmark = pytest.mark.skipif(NGINX is None, reason="no nginx (apt-get install nginx)")

LISTEN = "listen 80;"
UPSTREAM = "proxy_pass http://127.0.0.1:8000;"


def readme_block() -> str:
    section = README.read_text(encoding="utf-8").split("## Exposing it to the internet")[1]
    return re.search(r"```nginx\n(.*?)```", section, re.S).group(1)


def nginx_conf(block: str, folder: Path) -> Path:
    """A whole nginx.conf around ``block``, as Debian's includes conf.d/ inside http {},
    with every file it writes inside ``folder``."""
    temp = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}{block}}}\n",
        encoding="utf-8",
    )
    return conf


def nginx(conf: Path, *args: str) -> list[str]:
    folder = str(conf.parent)
    return [NGINX, "-p", folder, "-e", str(conf.parent / "error.log"), "-c", str(conf), *args]


def test_the_readme_block_parses(tmp_path):
    block = readme_block()
    for directive in ("limit_conn ", "client_header_timeout ", "proxy_pass ", "X-Forwarded-For"):
        assert directive in block
    result = subprocess.run(nginx(nginx_conf(block, tmp_path), "-t"), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    broken = block.replace("client_header_timeout", "client_header_timeout_")
    result = subprocess.run(nginx(nginx_conf(broken, tmp_path), "-t"), capture_output=True)
    assert result.returncode != 0  # the check does check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int, source: str, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    body = json.dumps({"question": "Who was instructed to use military force?"})
    conn.request("POST", "/api/ask", body, {"Content-Type": "application/json", **(headers or {})})
    status = conn.getresponse().status
    conn.close()
    return status


def test_behind_the_readme_block_the_rate_limit_counts_each_client(tmp_path):
    server = start_server(
        tmp_path, "--forwarded-allow-ips", "127.0.0.1", env={"QA_RATE_LIMIT": "2"}
    )
    port = free_port()
    block = readme_block()
    assert LISTEN in block and UPSTREAM in block
    qa = urlsplit(server.url).netloc
    block = block.replace(LISTEN, f"listen 127.0.0.1:{port};")
    block = block.replace(UPSTREAM, f"proxy_pass http://{qa};")
    conf = nginx_conf(block, tmp_path)
    proxy = subprocess.Popen(
        nginx(conf, "-g", "daemon off; master_process off;"), stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proxy.poll() is None, proxy.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        assert [ask(port, "127.0.0.2") for _ in range(3)] == [200, 200, 429]
        assert ask(port, "127.0.0.3") == 200  # another client: its own count
        # a client naming another in X-Forwarded-For is still itself
        assert ask(port, "127.0.0.2", {"X-Forwarded-For": "127.0.0.4"}) == 429
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        server.stop()
    assert "Traceback" not in server.text()

"""Real processes for the deployment tests: nginx from deploy/nginx.conf, killing a gateway hard."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.servers import ROOT, GatewayServer, free_port, wait_for_port

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def render_nginx_conf(upstreams: list[str], listen: str, text: str | None = None) -> str:
    """deploy/nginx.conf with its upstream servers and its ``listen 8080;`` replaced."""
    text = NGINX_CONF.read_text() if text is None else text
    block = re.search(r"upstream rakuda_gateway \{(.*?)\n    \}", text, re.S)
    assert block is not None, "deploy/nginx.conf has no upstream rakuda_gateway block"
    body = block.group(1)
    options = re.search(r"server \S+ (max_fails[^;]*);", body)
    extra = " " + options.group(1) if options else ""
    kept = "\n".join(line for line in body.splitlines() if not line.strip().startswith("server "))
    servers = "".join(f"\n        server {u}{extra};" for u in upstreams)
    text = text[:block.start(1)] + servers + kept + text[block.end(1):]
    assert text.count("listen 8080;") == 1
    return text.replace("listen 8080;", f"listen {listen};")


class Nginx:
    """Debian's nginx running deploy/nginx.conf (upstreams and port replaced), in the foreground."""

    def __init__(self, upstreams: list[str], host: str = "127.0.0.1", port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = host
        self.url = f"http://{host}:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="rakuda-nginx-"))
        (self.prefix / "logs").mkdir()
        (self.prefix / "nginx.conf").write_text(render_nginx_conf(upstreams, f"{host}:{self.port}"))
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        directives = f"daemon off; pid {self.prefix}/nginx.pid; error_log {self.prefix}/logs/error.log;"
        return [binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", directives]

    def start(self, wrap: list[str] | None = None) -> Nginx:
        self.proc = subprocess.Popen([*(wrap or []), *self.command()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        if wrap is None:
            wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: master and workers
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.prefix, ignore_errors=True)

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent_of[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parent_of.items() if pp == current]
        found += kids
        frontier += kids
    return found


def sigkill_gateway(server: GatewayServer) -> None:
    """SIGKILL the gunicorn master and all its workers at once: no graceful close of any stream."""
    assert server.proc is not None
    server.discard()


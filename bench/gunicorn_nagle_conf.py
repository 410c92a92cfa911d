"""The gateway's own gunicorn settings, with TCP_NODELAY cleared on the listening socket.

gunicorn sets TCP_NODELAY on its listener, and accepted sockets inherit it: every
``os.write`` of the fan-out loop then leaves as its own TCP segment. This variant lets the
kernel coalesce back-to-back writes to one client (Nagle), to measure what that is worth
without changing the gateway: ``python -m bench --systems gateway,gateway-nagle``.
"""

import runpy
import socket
from pathlib import Path

globals().update({k: v for k, v in runpy.run_path(
    str(Path(__file__).resolve().parent.parent / "gateway" / "gunicorn_conf.py")).items() if not k.startswith("__")})


def when_ready(server):
    for listener in server.LISTENERS:
        listener.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)

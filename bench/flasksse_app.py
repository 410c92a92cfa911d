"""flask-sse 1.0.0 as its README sets it up, for the benchmark's baseline.

Served like the gateway: ``gunicorn -c gateway/gunicorn_conf.py 'bench.flasksse_app:create_app()'``
with REDIS_URL from the environment. Clients read ``/stream?channel=<name>``; every stream
opens its own Redis subscription (that is flask-sse's design, and what the benchmark shows).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from flask_sse import sse


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    app.register_blueprint(sse, url_prefix="/stream")

    @app.get("/health")
    def health():
        return jsonify({"ok": True})

    return app

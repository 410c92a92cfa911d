"""The framework floor: the same gunicorn worker and Flask, answering 202 without any work.

    gunicorn -c gateway/gunicorn_conf.py 'bench.intake_floor:create_app()'

Reads the body and answers a fixed JSON: no signature, no parsing, no database, no broker.
What one worker does per second here bounds every intake on this stack (gunicorn's gevent
worker, Werkzeug's request parsing and Flask's dispatch all still run).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok"})

    @app.post("/api/webhooks/<provider>")
    def accept(provider: str) -> Any:
        request.get_data()
        return jsonify({"status": "accepted", "id": 1, "deliveryId": provider, "queued": True}), 202

    return app

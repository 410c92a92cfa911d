"""The OpenAPI 3.1 description (``/api/openapi.json``) and its page (``/api/docs``).

apispec assembles the document: paths come from Flask's URL map (its Flask plugin turns
``<int:event_id>`` into ``{event_id}``), schemas from the pydantic models in
``gateway.api_schemas``, summaries from the views' docstrings. What only a person can say (which
query parameters a route reads, which answers it gives) is the table ``gateway.api_operations``,
one entry per endpoint; a route without an entry makes the document fail to build, and a test
builds it, so no route goes undocumented. The page is Swagger UI 5 (which reads OpenAPI 3.1)
from the assets the ``flask-openapi3-swagger`` package ships, served by the gateway itself (no CDN).
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory
from pydantic import BaseModel
from werkzeug.routing import Rule

from gateway import api_operations
from gateway.api_operations import Operation
from gateway.auth import TOKEN_COOKIE

docs_bp = Blueprint("docs", __name__, url_prefix="/api")


def _swagger_ui_dir() -> Path:
    """Swagger UI's files inside the flask-openapi3-swagger package (found without importing it)."""
    spec = importlib.util.find_spec("flask_openapi3_swagger")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the flask-openapi3-swagger package (Swagger UI's assets) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "templates" / "swagger"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "an API key, or a stream token"},
    "StreamToken": {"type": "apiKey", "in": "query", "name": "token",
                    "description": "a token from POST /api/realtime/token (browsers' EventSource)"},
    "StreamCookie": {"type": "apiKey", "in": "cookie", "name": TOKEN_COOKIE},
}
_CONVERTER_TYPES: dict[str, dict[str, Any]] = {
    "IntegerConverter": {"type": "integer", "minimum": 0}, "FloatConverter": {"type": "number"}}


def build_spec(app: Flask) -> dict[str, Any]:
    """The whole description of ``app``; KeyError naming any route that has no operation entry."""
    spec = APISpec(title="rakuda-realtime gateway", version="1.0.0", openapi_version="3.1.0",
                   plugins=[FlaskPlugin()], info={"description": "Live events of the RAKUDA pipeline: "
                                                  "the SSE stream, its status, the JSON API and webhooks."})
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for model in api_operations.all_models():
        _add_schema(spec, model)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        operations = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            entry = api_operations.OPERATIONS.get((rule.endpoint, method))
            if entry is None:
                raise KeyError(f"{method} {rule.rule} ({rule.endpoint}) has no entry in gateway.api_operations")
            operations[method.lower()] = _operation(entry, view, rule)
        spec.path(view=view, app=app, operations=operations)
    return spec.to_dict()


def _add_schema(spec: APISpec, model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        if name not in spec.components.schemas:
            spec.components.schema(name, definition)
    if model.__name__ not in spec.components.schemas:
        spec.components.schema(model.__name__, schema)


def _operation(entry: Operation, view: Any, rule: Rule) -> dict[str, Any]:
    doc = inspect.getdoc(view) or ""
    summary, _, description = doc.partition("\n")
    operation: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_"),
        "summary": entry.summary or summary or rule.endpoint,
        "tags": [entry.tag],
        "parameters": _path_parameters(rule) + [p.as_openapi() for p in entry.query],
        "responses": {str(code): answer.as_openapi() for code, answer in entry.responses.items()},
    }
    if description.strip():
        operation["description"] = description.strip()
    if entry.security is not None:
        operation["security"] = [{name: []} for name in entry.security]
    if entry.body is not None:
        operation["requestBody"] = entry.body
    if entry.headers:
        operation["parameters"] += [h.as_openapi("header") for h in entry.headers]
    return operation


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    out = []
    for name, converter in (rule._converters or {}).items():
        schema: dict[str, Any] = dict(_CONVERTER_TYPES.get(type(converter).__name__, {"type": "string"}))
        items = getattr(converter, "items", None)
        if items:
            schema = {"type": "string", "enum": sorted(items)}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


@docs_bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 description (public)."""
    document = current_app.extensions.get("rakuda_openapi")
    if document is None:
        document = current_app.extensions["rakuda_openapi"] = build_spec(current_app)
    return jsonify(document)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rakuda-realtime API</title>
<link rel="stylesheet" href="/api/docs/assets/css/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/js/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""
# In a file of its own (not inline) so the page works under a Content-Security-Policy of 'self'.
_INIT = 'window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui"});\n'


@docs_bp.get("/docs")
def docs_page() -> Response:
    """Swagger UI over /api/openapi.json, served from this gateway."""
    return Response(_PAGE, mimetype="text/html")


@docs_bp.get("/docs/init.js")
def docs_init() -> Response:
    return Response(_INIT, mimetype="text/javascript")


@docs_bp.get("/docs/assets/<path:filename>")
def docs_asset(filename: str) -> Response:
    return send_from_directory(_swagger_ui_dir(), filename, max_age=86400)

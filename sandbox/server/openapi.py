"""``/openapi.json`` (OpenAPI 3.1) generated from ``schemas/``, the schema files themselves under
``/schemas/…``, and a small docs page. The schemas are bundled into ``components.schemas`` with
every ``$ref`` rewritten to a local pointer, so offline tools can resolve the whole document.
"""

from __future__ import annotations

import functools
import html
from typing import Any
from urllib.parse import urljoin

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sandbox import __version__
from sandbox.runtime import Sandbox
from sandbox.server.api_v1 import OPERATIONS as V1_OPERATIONS
from sandbox.server.api_v1 import PREFIX as V1_PREFIX
from sandbox.server.api_v3 import PATHS as V3_PATHS
from sandbox.server.api_v3 import SCHEMA_OF as V3_SCHEMA_OF
from sandbox.server.http import json_response
from sandbox.wire.schemas import BASE_URI, SUFFIX, Schemas

COMPONENTS = "#/components/schemas/"
SIGNATURE_HEADERS = {
    "Lklapi-Appid": "appid the response is signed for",
    "Lklapi-Serial": "platform certificate serial (hex)",
    "Lklapi-Timestamp": "Unix seconds",
    "Lklapi-Nonce": "random string",
    "Lklapi-Signature": "base64 SHA256withRSA over appid\\nserial\\ntimestamp\\nnonce\\nbody\\n",
}


def component_key(name: str) -> str:
    return name.replace("/", "_").replace(".", "_")


def bundle(schemas: Schemas) -> dict[str, Any]:
    uri_to_key = {
        doc.get("$id", BASE_URI + name + SUFFIX): component_key(name)
        for name, doc in schemas.documents.items()
    }
    return {
        component_key(name): _rewrite(doc, doc.get("$id", BASE_URI + name + SUFFIX), uri_to_key)
        for name, doc in schemas.documents.items()
    }


def _rewrite(node: Any, base: str, uri_to_key: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, base, uri_to_key) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("$id", "$schema"):
            continue
        if key == "$ref" and isinstance(value, str):
            document, _, fragment = urljoin(base, value).partition("#")
            out[key] = COMPONENTS + uri_to_key[document] + fragment
        else:
            out[key] = _rewrite(value, base, uri_to_key)
    return out


def _ref(name: str, pointer: str = "") -> dict[str, str]:
    return {"$ref": COMPONENTS + component_key(name) + pointer}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors() -> dict[str, Any]:
    return {
        str(status): {"description": text, "content": _json(_ref("error"))}
        for status, text in (
            (400, "Body is not a JSON object"),
            (404, "Unknown path"),
            (405, "Wrong method"),
            (413, "Body larger than the limit"),
        )
    }


def document(schemas: Schemas) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in V1_OPERATIONS:
        paths[V1_PREFIX + op] = {
            "post": {
                "operationId": f"v1_{op}",
                "tags": ["v1 (seed merchant API)"],
                "summary": f"{op} a counter order (seed document)",
                "requestBody": {"required": True, "content": _json(_ref(f"v1/{op}.req"))},
                "responses": {
                    "200": {
                        "description": "Success (code 000000), or a business error "
                        "in the error envelope",
                        "content": _json({"anyOf": [_ref(f"v1/{op}.resp"), _ref("error")]}),
                    },
                    "401": {
                        "description": "Bearer token required",
                        "content": _json(_ref("error")),
                    },
                    **_errors(),
                },
            }
        }
    for op, path in V3_PATHS.items():
        shape = V3_SCHEMA_OF.get(op, op)  # an encrypted call carries another's body
        headers = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in SIGNATURE_HEADERS.items()
        }
        paths[path] = {
            "post": {
                "operationId": f"v3_{op}",
                "tags": ["v3 (Lakala wire)"],
                "summary": f"{op} (Lakala v3 {'counter' if 'counter' in path else 'refund'})",
                "deprecated": op == "create",
                "parameters": [
                    {
                        "name": "Authorization",
                        "in": "header",
                        "required": True,
                        "description": 'LKLAPI-SHA256withRSA appid="…",serial_no="…",'
                        'timestamp="…",nonce_str="…",signature="…"',
                        "schema": {"type": "string", "pattern": "^LKLAPI-SHA256withRSA "},
                    }
                ],
                "requestBody": {
                    "required": True,
                    **(
                        {
                            "description": "This envelope SM4-ECB/PKCS#7 encrypted with the "
                            "app's SM4 key, sent as base64 text (still labelled JSON)"
                        }
                        if shape != op
                        else {}
                    ),
                    "content": _json(_ref(f"v3/{shape}.req", "/$defs/envelope")),
                },
                "responses": {
                    "200": {
                        "description": "Signed success envelope, or a signed business error",
                        "headers": headers,
                        "content": _json(
                            {"anyOf": [_ref(f"v3/{shape}.resp", "/$defs/envelope"), _ref("error")]}
                        ),
                    },
                    **_errors(),
                },
            }
        }
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "tags": ["sandbox"],
            "summary": "liveness",
            "responses": {"200": {"description": "ok"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lakala-sandbox",
            "version": __version__,
            "description": "Lakala's v3 counter wire and the seed's v1 merchant API, "
            "served by one sandbox. Schemas: /schemas/.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": bundle(schemas)},
    }


_cached_document = functools.lru_cache(maxsize=8)(document)


async def openapi_json(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response(_cached_document(sb.schemas))


async def schema_file(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    path = request.path_params["path"]
    name = path[: -len(SUFFIX)] if path.endswith(SUFFIX) else None
    if name not in sb.schemas.documents:
        return json_response(
            {
                "code": "SBX40004",
                "msg": f"no such schema: {path}",
                "schemas": [n + SUFFIX for n in sb.schemas.names()],
            },
            404,
        )
    return json_response(
        sb.schemas.documents[name], headers={"Content-Type": "application/schema+json"}
    )


async def docs(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    rows = []
    for name in sb.schemas.names():
        doc = sb.schemas.documents[name]
        required = set(doc.get("required", []))
        fields = "".join(
            f"<li><code>{html.escape(k)}</code>{' <b>required</b>' if k in required else ''}"
            f" — {html.escape(str(v.get('description', '')))}</li>"
            for k, v in doc.get("properties", {}).items()
            if isinstance(v, dict)
        )
        rows.append(
            f"<section><h2 id='{html.escape(name)}'><a href='/schemas/{html.escape(name)}"
            f"{SUFFIX}'>{html.escape(name)}</a></h2><p>{html.escape(doc.get('description', ''))}"
            f"</p><ul>{fields}</ul></section>"
        )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>lakala-sandbox API</title><style>body{font:15px/1.5 system-ui,sans-serif;"
        "max-width:60rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}"
        "</style></head><body><h1>lakala-sandbox API</h1><p>Machine-readable: "
        "<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). Every message's schema "
        "follows.</p>" + "".join(rows) + "</body></html>"
    )
    return HTMLResponse(page)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/schemas/{path:path}", schema_file, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]

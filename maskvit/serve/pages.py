"""The pages a browser loads: the playground (/), its script and style, and /docs.

Everything is a file in the package (`maskvit/serve/static/`) or generated here, so no
page fetches anything from another site. /docs is a plain HTML reference rendered from
the app's OpenAPI document: every endpoint with every field of its request and answer
(the JSON document itself is at /openapi.json).
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response

STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
          "/playground.css": ("playground.css", "text/css; charset=utf-8")}


def static_text(name: str) -> str:
    return resources.files("maskvit.serve").joinpath("static", name).read_text(encoding="utf-8")


def build_pages(app: FastAPI, playground: bool) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    if playground:
        for path, (name, media_type) in STATIC.items():
            router.add_api_route(path, _static_route(name, media_type), methods=["GET"])
    else:
        @router.get("/")
        async def index() -> HTMLResponse:
            return HTMLResponse("<!doctype html><title>maskvit serve</title><p>MaskViT server. "
                                "API reference: <a href='/docs'>/docs</a> (playground off).")

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(render_reference(app.openapi()))

    router.add_api_route("/docs.css", _static_route("docs.css", "text/css; charset=utf-8"),
                         methods=["GET"])

    return router


def _static_route(name: str, media_type: str):
    async def serve() -> Response:
        return Response(static_text(name), media_type=media_type,
                        headers={"Cache-Control": "no-cache"})
    return serve


# ------------------------------------------------------------------ /docs


def _resolve(schema: dict, components: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        return components.get(ref.rsplit("/", 1)[-1], {})
    return schema


def _type_text(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type_text(s, components) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_text(schema.get('items', {}), components)}]"
    return str(kind)


def _fields_table(schema: dict, components: dict, seen: set[str]) -> str:
    schema = _resolve(schema, components)
    properties = schema.get("properties", {})
    if not properties:
        return ""
    required = set(schema.get("required", []))
    rows = []
    nested = []
    for name, prop in properties.items():
        if "default" in prop:
            default = json.dumps(prop["default"], ensure_ascii=False)
        else:
            default = "—" if name in required else "null"
        rows.append("<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(name), " *" if name in required else "",
            html.escape(_type_text(prop, components)), html.escape(default),
            html.escape(prop.get("description", ""))))
        for part in [prop, *prop.get("anyOf", [])]:
            ref = part.get("$ref")
            if ref and ref not in seen:
                seen.add(ref)
                nested.append((ref.rsplit("/", 1)[-1], {"$ref": ref}))
    out = ("<table><tr><th>field</th><th>type</th><th>default</th><th>meaning</th></tr>"
           + "".join(rows) + "</table>")
    for title, ref in nested:
        out += f"<h4>{html.escape(title)}</h4>" + _fields_table(ref, components, seen)
    return out


def render_reference(spec: dict[str, Any]) -> str:
    """The OpenAPI document as one self-contained HTML page."""
    components = spec.get("components", {}).get("schemas", {})
    parts = [f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>",
             f"<p>{html.escape(spec['info'].get('description', ''))}</p>",
             "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Fields marked * are "
             "required.</p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p><b>{html.escape(op.get('summary', ''))}</b></p>")
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<h3>parameters</h3><table><tr><th>name</th><th>in</th><th>meaning</th></tr>"
                             + "".join(f"<tr><td><code>{html.escape(p['name'])}</code></td>"
                                       f"<td>{html.escape(p['in'])}</td>"
                                       f"<td>{html.escape(p.get('description', ''))}</td></tr>"
                                       for p in params) + "</table>")
            for media, body in op.get("requestBody", {}).get("content", {}).items():
                parts.append(f"<h3>request body ({html.escape(media)})</h3>")
                table = _fields_table(body.get("schema", {}), components, set())
                parts.append(table or f"<p>{html.escape(body.get('schema', {}).get('description', 'raw bytes'))}</p>")
            for status, answer in op.get("responses", {}).items():
                for media, body in answer.get("content", {}).items():
                    parts.append(f"<h3>answer {html.escape(status)} ({html.escape(media)}): "
                                 f"{html.escape(answer.get('description', ''))}</h3>")
                    if status.startswith("2"):
                        parts.append(_fields_table(body.get("schema", {}), components, set()))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>maskvit API</title>"
            "<link rel='stylesheet' href='/docs.css'></head><body>" + "".join(parts)
            + "</body></html>")

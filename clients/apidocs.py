"""The management API's OpenAPI 3 document (drf-spectacular) and its browsable page.

The page is rendered here, on the server, from the same document: Swagger UI and Redoc
would load their scripts from a CDN, which an operator's network may not reach.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import patched_settings
from drf_spectacular.views import SpectacularAPIView

SCHEMA_SETTINGS: dict[str, Any] = {
    "PREPROCESSING_HOOKS": ["clients.apidocs.without_trailing_slash"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "clients.apidocs.with_auth_errors"],
}
ERROR_BODY = {
    "type": "object",
    "description": 'DRF\'s error shape: {"detail": "..."}, or for invalid input one key per field '
    "(API field names) with a list of messages.",
    "additionalProperties": True,
}


def without_trailing_slash(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Name each route by its canonical path; every route also accepts a trailing slash."""
    return [(path.rstrip("/") or "/", *rest) for path, *rest in endpoints]


def with_auth_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the RFC 6750 §3 answers every operation shares, and the error body."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_BODY
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    shared = {
        "401": "No credentials (WWW-Authenticate: Bearer realm=\"authserver\") or an invalid, expired or "
        'revoked token (error="invalid_token").',
        "403": 'The token lacks the scope (WWW-Authenticate: Bearer error="insufficient_scope", scope="..."), '
        "the session user is not staff, or the session request has no valid CSRF token.",
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in shared.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code.startswith("4"):
                    response.setdefault("content", error)
    return result


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents ``tokens.authentication.BearerTokenAuthentication`` (RFC 6750) with the
    scope each operation needs."""

    target_class = "tokens.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http", "scheme": "bearer",
            "description": "An access token from this server's token endpoint (client credentials grant), "
            "or an API key of a client (asak_...), with scope clients:read (reads) or clients:write "
            "(writes; also reads).",
        }

    def get_security_requirement(self, auto_schema: AutoSchema) -> dict[str, list[Any]]:
        from clients.api import READ_SCOPE, WRITE_SCOPE

        return {self.name: [READ_SCOPE if auto_schema.method in ("GET", "HEAD") else WRITE_SCOPE]}


schema_view = SpectacularAPIView.as_view(urlconf="clients.urls", custom_settings=SCHEMA_SETTINGS)


def openapi_document() -> dict[str, Any]:
    """The same document ``/api/schema`` serves."""
    with patched_settings(SCHEMA_SETTINGS):
        generator = SchemaGenerator(urlconf="clients.urls")  # type: ignore[no-untyped-call]
        return generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]


@require_safe
def docs_view(request: HttpRequest) -> HttpResponse:
    """``/api/docs``: every operation and schema of the document as one static HTML page."""
    return HttpResponse(render_document(openapi_document()), content_type="text/html; charset=utf-8")


# --- rendering ---------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
code{font:13px ui-monospace,monospace;background:#f3f3f3;padding:0 .2em}
table{border-collapse:collapse;margin:.4rem 0 1rem;width:100%}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f7f7f7}section{border-top:1px solid #ccc;margin-top:1.2rem}
.m{display:inline-block;min-width:4.2rem;font-weight:bold;font-family:monospace}
.GET{color:#0a6}.POST{color:#06c}.PUT,.PATCH{color:#a60}.DELETE{color:#c22}
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> SafeString:
    """A schema as a short human-readable type, components linked."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return format_html('<a href="#schema-{}">{}</a>', name, name)
    if "oneOf" in schema:
        kind = mark_safe(" | ".join(_type(option) for option in schema["oneOf"]))  # noqa: S308 (escaped parts)
    elif schema.get("type") == "array":
        kind = format_html("array of {}", _type(schema.get("items", {})))
    elif "enum" in schema:
        kind = format_html("one of {}", ", ".join(json.dumps(v) for v in schema["enum"]))
    else:
        kind = format_html("{}", " ".join(str(schema[k]) for k in ("type", "format") if k in schema) or "any")
    return format_html("{} or null", kind) if schema.get("nullable") else kind


def _table(headings: Sequence[str], rows: Iterable[Sequence[Any]]) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headings))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><tr>{}</tr>{}</table>", head, body)


def _operation(path: str, method: str, operation: dict[str, Any]) -> SafeString:
    security = [
        ", ".join(f"{name}" + (f" (scope {' '.join(scopes)})" if scopes else "") for name, scopes in rule.items())
        for rule in operation.get("security", [])
    ]
    parameters = _table(
        ["parameter", "in", "type", "required", "description"],
        (
            (p["name"], p["in"], _type(p.get("schema", {})), "yes" if p.get("required") else "no",
             p.get("description", ""))
            for p in operation.get("parameters", [])
        ),
    ) if operation.get("parameters") else ""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    responses = _table(
        ["status", "body", "meaning"],
        (
            (code, _type(r["content"]["application/json"]["schema"]) if "content" in r else "none",
             r.get("description", ""))
            for code, r in operation.get("responses", {}).items()
        ),
    )
    return format_html(
        '<section id="{}"><h3><span class="m {}">{}</span> <code>{}</code></h3><p>{}</p>'
        "<p>Authorization: {}</p>{}<p>Request body: {}</p>{}</section>",
        operation.get("operationId", ""), method.upper(), method.upper(), path,
        operation.get("description", ""), " or ".join(security) or "none", parameters,
        _type(body) if body else "none", responses,
    )


def _component(name: str, schema: dict[str, Any]) -> SafeString:
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    fields = _table(
        ["field", "type", "required", "description"],
        (
            (format_html("<code>{}</code>", field), _type(sub), "yes" if field in required else "no",
             " ".join(filter(None, ["(read-only)" if sub.get("readOnly") else "", sub.get("description", "")])))
            for field, sub in properties.items()
        ),
    ) if properties else _type(schema)
    return format_html(
        '<section id="schema-{}"><h3>{}</h3><p>{}</p>{}</section>', name, name, schema.get("description", ""), fields
    )


def render_document(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    operations = [
        (path, method, operation)
        for path, methods in document.get("paths", {}).items()
        for method, operation in methods.items()
    ]
    toc = format_html_join(
        "", '<li><a href="#{}"><span class="m {}">{}</span> <code>{}</code></a></li>',
        ((op.get("operationId", ""), m.upper(), m.upper(), path) for path, m, op in operations),
    )
    schemes = _table(
        ["scheme", "how"],
        (
            (name, scheme.get("description") or f"{scheme.get('type')} {scheme.get('in', '')} {scheme.get('name', '')}")
            for name, scheme in document.get("components", {}).get("securitySchemes", {}).items()
        ),
    )
    return format_html(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{} {}</title><style>{}</style></head>'
        "<body><h1>{} <small>version {}</small></h1><p>{}</p>"
        '<p>OpenAPI {} document: <a href="/api/schema">/api/schema</a> (YAML) or '
        '<a href="/api/schema?format=json">/api/schema?format=json</a>. Every path also accepts a trailing slash. '
        "Lists take <code>limit</code> (default 100, at most 1000) and <code>offset</code>.</p>"
        "<h2>Authentication</h2>{}<h2>Operations</h2><ul>{}</ul>{}<h2>Schemas</h2>{}</body></html>",
        info.get("title", ""), info.get("version", ""), mark_safe(_STYLE),  # noqa: S308 (a constant)
        info.get("title", ""), info.get("version", ""), info.get("description", ""),
        document.get("openapi", ""), schemes, toc,
        mark_safe("".join(_operation(path, m, op) for path, m, op in operations)),  # noqa: S308 (escaped parts)
        mark_safe(  # noqa: S308 (escaped parts)
            "".join(_component(n, s) for n, s in document.get("components", {}).get("schemas", {}).items())
        ),
    )

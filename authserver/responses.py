"""JSON responses shared by every app; imports no app (the layering contract in pyproject.toml)."""

from __future__ import annotations

import json

from django.http import HttpResponse

# RFC 6749 §5.1 and §5.2: token responses and their errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    """Compact JSON with ``NO_STORE`` headers (and any ``headers`` given)."""
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )
    for name, value in {**NO_STORE, **(headers or {})}.items():
        response[name] = value
    return response

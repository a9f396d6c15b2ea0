"""One view at the token path: reads the form body, answers a fixed token-shaped JSON document."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.views.decorators.http import require_POST

TOKEN = {
    "access_token": "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImJlbmNoIn0." + "x" * 300 + "." + "y" * 86,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "invoices:read",
}


@require_POST
def token(request: HttpRequest) -> HttpResponse:
    request.POST.get("grant_type")  # parse the body, as any token endpoint must
    response = JsonResponse(TOKEN)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


urlpatterns = [re_path(r"^oauth/token/?$", token)]

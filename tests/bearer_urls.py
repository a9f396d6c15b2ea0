"""A resource-server view protected by our bearer authentication, for tests/test_bearer_auth.py."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens.authentication import HasScope


class Invoices(APIView):
    permission_classes = [HasScope.of("invoices:read")]

    def get(self, request: Request) -> Response:
        return Response({"client_id": request.user.client.client_id if hasattr(request.user, "client") else None})

    def post(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [path("invoices", Invoices.as_view()), path("", include("authserver.urls"))]

"""The client-management REST API: clients, their secrets and API keys, tenants, roles and trusted issuers.

One DRF view per path; each method parses with a serializer, calls one service from
``clients.services`` and renders with a serializer.  JSON uses RFC 7591 §2 client
metadata names where one exists.

Callers: a bearer access token from this server (RFC 6750) with scope
``clients:read`` for reads (``clients:write`` also reads) and ``clients:write`` for
writes, or a logged-in staff user (session cookie with CSRF token).  Lists page with
``limit`` and ``offset``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from authserver.responses import NO_STORE  # on responses that carry a secret
from clients import services
from clients.models import CLIENT_ID_PATTERN, ApiKey, Client, ClientSecret, Role, Tenant, TrustedIssuer
from clients.serializers import (
    API_NAMES,
    SAME_NAMES,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ClientCreatedSerializer,
    ClientDetailSerializer,
    ClientFilterSerializer,
    ClientInputSerializer,
    ClientPageSerializer,
    ClientSerializer,
    ClientUpdateSerializer,
    EmptySerializer,
    IssuedSecretSerializer,
    RoleFilterSerializer,
    RoleInputSerializer,
    RolePageSerializer,
    RoleSerializer,
    SecretAddSerializer,
    SecretSerializer,
    TenantInputSerializer,
    TenantPageSerializer,
    TenantSerializer,
    TrustedIssuerInputSerializer,
    TrustedIssuerPageSerializer,
    TrustedIssuerSerializer,
    TrustedIssuerUpdateSerializer,
    UsageSerializer,
    api_errors,
)
from tokens.authentication import HasScope
from tokens.verification import VerifiedToken

READ_SCOPE = "clients:read"
WRITE_SCOPE = "clients:write"


class ClientsScope(BasePermission):
    """Reads need ``clients:read`` or ``clients:write``, writes ``clients:write``
    (RFC 6750 §3.1: a missing scope is a 403 ``insufficient_scope`` naming it);
    a staff session may do both."""

    read = HasScope.of(READ_SCOPE)
    write = HasScope.of(WRITE_SCOPE)

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in SAFE_METHODS:
            return self.write().has_permission(request, view)
        if isinstance(request.auth, VerifiedToken) and WRITE_SCOPE in request.auth.scopes:
            return True
        return self.read().has_permission(request, view)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A concurrent change conflicted with this one; retry."
    default_code = "conflict"


class Pagination(LimitOffsetPagination):
    """``?limit=`` (default 100, at most 1000) and ``?offset=``; answers ``count``,
    ``next``, ``previous``, ``results``."""

    default_limit = 100
    max_limit = 1000


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Page size (default 100, at most 1000)."),
    OpenApiParameter("offset", int, description="Items to skip (default 0)."),
]
NOT_FOUND = OpenApiResponse(description="No such resource.")
BAD_REQUEST = OpenApiResponse(description="Invalid fields, unknown fields or malformed JSON; keys name the fields.")
CLIENT_EXISTS = OpenApiResponse(description='A client with this client_id exists already: {"detail": "..."}.')


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, and 400 for a value the database cannot store (e.g. NUL in PostgreSQL
    text): the caller's error, not a 500."""
    if isinstance(exc, DataError):
        return Response({"detail": "The request contains a value that cannot be stored."}, status=400)
    return drf_exception_handler(exc, context)


class ManagementView(APIView):
    permission_classes = [ClientsScope]

    def get_exception_handler(self) -> Any:
        return exception_handler


@contextmanager
def field_errors(names: Mapping[str, str] = API_NAMES) -> Iterator[None]:
    """A service's ``ValidationError`` becomes a 400 naming API fields; a unique
    clash lost to a concurrent request a 409."""
    try:
        yield
    except DjangoValidationError as error:
        raise api_errors(error, names) from None
    except IntegrityError:
        raise Conflict() from None


def parse(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> Any:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


def query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    # A plain dict: DRF reads a missing boolean in a QueryDict as false.
    return parse(serializer_class, request.query_params.dict()).validated_data


def page(request: Request, view: APIView, queryset: QuerySet[Any], serializer_class: type[Any]) -> Response:
    paginator = Pagination()
    items = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(items, many=True).data)


# --- clients -----------------------------------------------------------------------------


def clients() -> QuerySet[Client]:
    """Clients with what their rendering needs, in a fixed number of queries."""
    return Client.objects.select_related("user").prefetch_related(
        "tenants", Prefetch("roles", Role.objects.select_related("tenant"))
    )


SECRET_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")


def get_client(client_id: str, *, detail: bool = False) -> Client:
    if not CLIENT_ID_PATTERN.fullmatch(client_id):
        raise NotFound(f"No client {client_id!r}.")  # no client can have it; never ask the database
    queryset = clients().prefetch_related("secrets") if detail else Client.objects.all()
    try:
        return queryset.get(client_id=client_id)
    except Client.DoesNotExist:
        raise NotFound(f"No client {client_id!r}.") from None


def create_client(data: ClientInputSerializer) -> tuple[Client, services.IssuedSecret | None]:
    """``services.client_create``; a client_id that exists is a 409 (as in SeaCat Auth, DESIGN §9.6)."""
    client_id = data.validated_data.get("client_id")
    if client_id is not None and Client.objects.filter(client_id=client_id).exists():
        raise Conflict(f"A client {client_id!r} already exists.")
    try:
        return services.client_create(
            client_id=client_id, tenants=data.validated_data.get("tenants", ()),
            roles=data.validated_data.get("roles", ()), owner=data.validated_data.get("owner"),
            **data.model_fields(),
        )
    except DjangoValidationError as error:
        if any(e.code == "unique" for e in getattr(error, "error_dict", {}).get("client_id", [])):
            raise Conflict(f"A client {client_id!r} already exists.") from None  # lost a race to a twin
        raise


CLIENT_ID = OpenApiParameter(
    "client_id", str, OpenApiParameter.PATH,
    description="The client ID, percent-encoded (e.g. team%3Asvc%40prod). An ID containing / works as long as "
    "it does not end in /secrets, /secrets/<prefix>, /api_keys, /api_keys/<prefix>, /usage or /reset_secret; "
    "one ending in / needs a trailing /.",
)


@extend_schema(tags=["client"])
class ClientListView(ManagementView):
    @extend_schema(
        operation_id="client_list", parameters=[ClientFilterSerializer, *PAGE_PARAMETERS],
        responses={200: ClientPageSerializer, 400: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        """List clients, ordered by client_id."""
        filters = query(ClientFilterSerializer, request)
        queryset = clients()
        if "tenant" in filters:
            queryset = queryset.filter(tenants__slug=filters["tenant"])
        if "enabled" in filters:
            queryset = queryset.filter(enabled=filters["enabled"])
        return page(request, self, queryset, ClientSerializer)

    @extend_schema(
        request=ClientInputSerializer,
        responses={201: ClientCreatedSerializer, 400: BAD_REQUEST, 409: CLIENT_EXISTS},
    )
    def post(self, request: Request) -> Response:
        """Register a client (RFC 7591 §3.2.1 style); the response shows its secret this once.

        A private_key_jwt client has no secret: its response has no client_secret.
        A client_id that exists already is 409 Conflict, as in SeaCat Auth. seacatauth_credentials
        (SeaCat Auth's flag) is accepted beside grant_types."""
        data = parse(ClientInputSerializer, request.data)
        with field_errors():
            client, issued = create_client(data)
        created = get_client(client.client_id, detail=True)
        if issued is None:
            body = ClientDetailSerializer(created).data
        else:
            body = ClientCreatedSerializer(created, context={"issued": issued}).data
        location = f"/client/{quote(client.client_id, safe='')}"
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location, **NO_STORE})


@extend_schema(tags=["client"], parameters=[CLIENT_ID])
class ClientDetailView(ManagementView):
    @extend_schema(responses={200: ClientDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, client_id: str) -> Response:
        """Read a client, with a summary of its secrets (never the secrets or their hashes)."""
        return Response(ClientDetailSerializer(get_client(client_id, detail=True)).data)

    @extend_schema(
        request=ClientUpdateSerializer, responses={200: ClientDetailSerializer, 400: BAD_REQUEST, 404: NOT_FOUND}
    )
    def put(self, request: Request, client_id: str) -> Response:
        """Update the fields sent; the others keep their values (as in SeaCat Auth, so PUT
        and PATCH agree). A client_id in the body must match the path. SeaCat Auth's documented
        body {"seacatauth_credentials": true, "token_endpoint_auth_method": "client_secret_basic"}
        works unchanged; owner (a username, or null) changes the owner."""
        client = get_client(client_id)
        data = parse(ClientUpdateSerializer, request.data, partial=True, context={"client": client})
        with field_errors():
            services.client_update(
                client=client, fields=data.model_fields(),
                tenants=data.validated_data.get("tenants"), roles=data.validated_data.get("roles"),
                owner=data.validated_data.get("owner", services.KEEP),
            )
        return Response(ClientDetailSerializer(get_client(client_id, detail=True)).data)

    patch = put

    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, client_id: str) -> Response:
        """Delete the client and its secrets; its tokens stop verifying here at once."""
        services.client_delete(client=get_client(client_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["client"], parameters=[CLIENT_ID])
class ClientResetSecretView(ManagementView):
    @extend_schema(request=None, responses={200: IssuedSecretSerializer, 400: BAD_REQUEST, 404: NOT_FOUND})
    def post(self, request: Request, client_id: str) -> Response:
        """Give the client one new secret, shown this once; every other secret of the
        client stops working at once (atomic, even under concurrent calls)."""
        client = get_client(client_id)
        parse(EmptySerializer, request.data)
        issued = services.secret_reset(client=client)
        return Response(IssuedSecretSerializer(issued).data, headers=NO_STORE)


@extend_schema(tags=["client"], parameters=[CLIENT_ID])
class ClientUsageView(ManagementView):
    @extend_schema(responses={200: UsageSerializer, 404: NOT_FOUND})
    def get(self, request: Request, client_id: str) -> Response:
        """Tokens issued and failed client authentications per hour (written by each server
        process at most a minute after they happen)."""
        client = get_client(client_id)
        buckets = client.usage.order_by("hour")
        return Response(UsageSerializer({"client_id": client.client_id, "buckets": buckets}).data)


@extend_schema(tags=["client"], parameters=[CLIENT_ID])
class ClientSecretListView(ManagementView):
    @extend_schema(responses={200: SecretSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, client_id: str) -> Response:
        """The client's secrets, newest first: prefix, created, expires, last used, revoked."""
        client = get_client(client_id)
        return Response(SecretSerializer(client.secrets.order_by("-created", "-pk"), many=True).data)

    @extend_schema(
        request=SecretAddSerializer, responses={201: IssuedSecretSerializer, 400: BAD_REQUEST, 404: NOT_FOUND}
    )
    def post(self, request: Request, client_id: str) -> Response:
        """Add a secret, shown this once, while the others stay valid (zero-downtime
        rotation); ``others_expire`` optionally bounds how long they stay."""
        client = get_client(client_id)
        data = parse(SecretAddSerializer, request.data).validated_data
        issued = services.secret_add(
            client=client, expires=data.get("expires"), others_expire=data.get("others_expire")
        )
        return Response(IssuedSecretSerializer(issued).data, status=status.HTTP_201_CREATED, headers=NO_STORE)


@extend_schema(
    tags=["client"],
    parameters=[CLIENT_ID, OpenApiParameter("prefix", str, OpenApiParameter.PATH, description="The secret's prefix.")],
)
class ClientSecretDetailView(ManagementView):
    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, client_id: str, prefix: str) -> Response:
        """Revoke the client's live secret with this prefix; 404 if there is none."""
        if not SECRET_PREFIX_PATTERN.fullmatch(prefix):
            raise NotFound(f"No live secret with prefix {prefix!r}.")
        client = get_client(client_id)
        try:
            services.secret_revoke(client=client, prefix=prefix)
        except ClientSecret.DoesNotExist:
            raise NotFound(f"No live secret with prefix {prefix!r}.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- API keys (DESIGN §9.5) ----------------------------------------------------------------


PREFIX = OpenApiParameter("prefix", str, OpenApiParameter.PATH, description="The API key's prefix.")


def get_api_key(client: Client, prefix: str) -> ApiKey:
    """The client's listed key with ``prefix`` (revoked ones stay listed until they would have expired)."""
    key = None
    if SECRET_PREFIX_PATTERN.fullmatch(prefix):
        key = client.api_keys.listed(timezone.now()).filter(prefix=prefix).order_by("-created", "-pk").first()
    if key is None:
        raise NotFound(f"No API key with prefix {prefix!r}.")
    return key


@extend_schema(tags=["client"], parameters=[CLIENT_ID])
class ClientApiKeyListView(ManagementView):
    @extend_schema(responses={200: ApiKeySerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, client_id: str) -> Response:
        """The client's API keys, newest first, until each would have expired (revoked ones marked)."""
        keys = get_client(client_id).api_keys.listed(timezone.now()).order_by("-created", "-pk")
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(
        request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer, 400: BAD_REQUEST, 404: NOT_FOUND}
    )
    def post(self, request: Request, client_id: str) -> Response:
        """Make an API key, shown this once: a long-lived bearer credential for what cannot run
        the client credentials flow. Scope defaults to the client's default scopes; lifetime to
        API_KEY_DEFAULT_LIFETIME, at most API_KEY_MAX_LIFETIME."""
        client = get_client(client_id)
        data = parse(ApiKeyCreateSerializer, request.data).validated_data
        with field_errors(SAME_NAMES):
            issued = services.api_key_create(
                client=client, name=data["name"], scopes=data.get("scope"),
                expires_in=data.get("expires_in"), expires=data.get("expires"),
            )
        location = f"/client/{quote(client.client_id, safe='')}/api_keys/{issued.record.prefix}"
        return Response(
            ApiKeyCreatedSerializer(issued).data, status=status.HTTP_201_CREATED,
            headers={"Location": location, **NO_STORE},
        )


@extend_schema(tags=["client"], parameters=[CLIENT_ID, PREFIX])
class ClientApiKeyDetailView(ManagementView):
    @extend_schema(responses={200: ApiKeySerializer, 404: NOT_FOUND})
    def get(self, request: Request, client_id: str, prefix: str) -> Response:
        """One API key by prefix (never the key itself)."""
        return Response(ApiKeySerializer(get_api_key(get_client(client_id), prefix)).data)

    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, client_id: str, prefix: str) -> Response:
        """Revoke the key: every server process refuses it from its next request. It stays
        listed, marked revoked, until it would have expired. 404 if no live key has the prefix."""
        client = get_client(client_id)
        if not SECRET_PREFIX_PATTERN.fullmatch(prefix):
            raise NotFound(f"No live API key with prefix {prefix!r}.")
        try:
            services.api_key_revoke(client=client, prefix=prefix)
        except ApiKey.DoesNotExist:
            raise NotFound(f"No live API key with prefix {prefix!r}.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tenants -----------------------------------------------------------------------------


def get_tenant(slug: str) -> Tenant:
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        raise NotFound(f"No tenant {slug!r}.") from None


SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The tenant's slug.")


@extend_schema(tags=["tenant"])
class TenantListView(ManagementView):
    @extend_schema(operation_id="tenant_list", parameters=PAGE_PARAMETERS, responses={200: TenantPageSerializer})
    def get(self, request: Request) -> Response:
        """List tenants, ordered by slug."""
        return page(request, self, Tenant.objects.all(), TenantSerializer)

    @extend_schema(request=TenantInputSerializer, responses={201: TenantSerializer, 400: BAD_REQUEST})
    def post(self, request: Request) -> Response:
        """Create a tenant."""
        data = parse(TenantInputSerializer, request.data).validated_data
        with field_errors(SAME_NAMES):
            tenant = services.tenant_create(**data)
        return Response(TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tenant"], parameters=[SLUG])
class TenantDetailView(ManagementView):
    @extend_schema(responses={200: TenantSerializer, 404: NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        return Response(TenantSerializer(get_tenant(slug)).data)

    @extend_schema(
        request=TenantInputSerializer, responses={200: TenantSerializer, 400: BAD_REQUEST, 404: NOT_FOUND}
    )
    def put(self, request: Request, slug: str) -> Response:
        """Update the fields sent (a new slug renames the tenant); the others keep their values."""
        tenant = get_tenant(slug)
        data = parse(TenantInputSerializer, request.data, partial=True).validated_data
        with field_errors(SAME_NAMES):
            services.tenant_update(tenant=tenant, fields=data)
        return Response(TenantSerializer(tenant).data)

    patch = put

    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, slug: str) -> Response:
        """Delete the tenant and its roles; clients lose both."""
        services.tenant_delete(tenant=get_tenant(slug))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- roles -------------------------------------------------------------------------------


def get_role(role_id: str) -> Role:
    try:
        return Role.objects.select_related("tenant").get(pk=int(role_id))
    except Role.DoesNotExist:
        raise NotFound(f"No role {role_id}.") from None


ROLE_ID = OpenApiParameter("role_id", int, OpenApiParameter.PATH, description="The role's id.")


@extend_schema(tags=["role"])
class RoleListView(ManagementView):
    @extend_schema(
        operation_id="role_list", parameters=[RoleFilterSerializer, *PAGE_PARAMETERS],
        responses={200: RolePageSerializer},
    )
    def get(self, request: Request) -> Response:
        """List roles, global ones first, then by tenant and name."""
        filters = query(RoleFilterSerializer, request)
        queryset = Role.objects.select_related("tenant").order_by("tenant__slug", "name", "pk")
        if "tenant" in filters:
            queryset = queryset.filter(tenant__slug=filters["tenant"])
        return page(request, self, queryset, RoleSerializer)

    @extend_schema(request=RoleInputSerializer, responses={201: RoleSerializer, 400: BAD_REQUEST})
    def post(self, request: Request) -> Response:
        """Create a role, global or of one tenant."""
        data = parse(RoleInputSerializer, request.data).validated_data
        with field_errors(SAME_NAMES):
            role = services.role_create(**data)
        return Response(RoleSerializer(role).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["role"], parameters=[ROLE_ID])
class RoleDetailView(ManagementView):
    @extend_schema(responses={200: RoleSerializer, 404: NOT_FOUND})
    def get(self, request: Request, role_id: str) -> Response:
        return Response(RoleSerializer(get_role(role_id)).data)

    @extend_schema(request=RoleInputSerializer, responses={200: RoleSerializer, 400: BAD_REQUEST, 404: NOT_FOUND})
    def put(self, request: Request, role_id: str) -> Response:
        """Update the fields sent; the others keep their values."""
        role = get_role(role_id)
        data = parse(RoleInputSerializer, request.data, partial=True).validated_data
        with field_errors(SAME_NAMES):
            services.role_update(role=role, fields=data)
        return Response(RoleSerializer(role).data)

    patch = put

    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, role_id: str) -> Response:
        """Delete the role; clients lose it."""
        services.role_delete(role=get_role(role_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- trusted issuers (workload identity federation) ------------------------------------


def get_trusted_issuer(name: str) -> TrustedIssuer:
    try:
        return TrustedIssuer.objects.get(name=name)
    except TrustedIssuer.DoesNotExist:
        raise NotFound(f"No trusted issuer {name!r}.") from None


ISSUER_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The trusted issuer's name.")


@extend_schema(tags=["trusted_issuer"])
class TrustedIssuerListView(ManagementView):
    @extend_schema(
        operation_id="trusted_issuer_list", parameters=PAGE_PARAMETERS,
        responses={200: TrustedIssuerPageSerializer},
    )
    def get(self, request: Request) -> Response:
        """List trusted issuers, ordered by name."""
        return page(request, self, TrustedIssuer.objects.all(), TrustedIssuerSerializer)

    @extend_schema(request=TrustedIssuerInputSerializer, responses={201: TrustedIssuerSerializer, 400: BAD_REQUEST})
    def post(self, request: Request) -> Response:
        """Trust a platform's JWTs (a Kubernetes cluster, a CI system, a SPIFFE trust domain):
        clients then name it in their federated_identities."""
        data = parse(TrustedIssuerInputSerializer, request.data).validated_data
        with field_errors(SAME_NAMES):
            record = services.trusted_issuer_create(**data)
        return Response(
            TrustedIssuerSerializer(record).data, status=status.HTTP_201_CREATED,
            headers={"Location": f"/trusted_issuer/{record.name}"},
        )


@extend_schema(tags=["trusted_issuer"], parameters=[ISSUER_NAME])
class TrustedIssuerDetailView(ManagementView):
    @extend_schema(responses={200: TrustedIssuerSerializer, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        return Response(TrustedIssuerSerializer(get_trusted_issuer(name)).data)

    @extend_schema(
        request=TrustedIssuerUpdateSerializer,
        responses={200: TrustedIssuerSerializer, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    def put(self, request: Request, name: str) -> Response:
        """Update the fields sent; the others keep their values (so PUT and PATCH agree). A new
        name renames the issuer in every client's federated_identities too."""
        record = get_trusted_issuer(name)
        data = parse(TrustedIssuerUpdateSerializer, request.data, partial=True).validated_data
        with field_errors(SAME_NAMES):
            services.trusted_issuer_update(trusted_issuer=record, fields=data)
        return Response(TrustedIssuerSerializer(record).data)

    patch = put

    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, name: str) -> Response:
        """Stop trusting the issuer; the federated identities naming it are removed from every client."""
        services.trusted_issuer_delete(trusted_issuer=get_trusted_issuer(name))
        return Response(status=status.HTTP_204_NO_CONTENT)

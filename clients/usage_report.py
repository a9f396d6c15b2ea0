"""What the admin shows of usage: an hourly chart's geometry, and the dashboard's lists.

Plain functions over ``ClientUsage`` rows (``clients.usage`` writes them); the templates
draw the chart as inline SVG from the numbers computed here, so nothing is loaded from
anywhere and no script runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Q, QuerySet, Sum

from clients.models import ApiKey, Client, ClientSecret, ClientUsage

CHART_WIDTH = 840
CHART_HEIGHT = 160


@dataclass(frozen=True)
class Bar:
    hour: datetime
    tokens_issued: int
    failed_authentications: int
    x: float
    width: float
    issued_height: float
    failed_height: float

    @property
    def issued_top(self) -> float:
        return round(CHART_HEIGHT - self.issued_height, 2)

    @property
    def failed_top(self) -> float:
        return round(CHART_HEIGHT - self.issued_height - self.failed_height, 2)


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    tokens_issued: int
    failed_authentications: int
    peak: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hourly_chart(rows: QuerySet[ClientUsage], *, now: datetime, days: int = 7) -> Chart:
    """Every hour of the last ``days`` days (empty hours as zero), summed over ``rows``."""
    last = _hour(now)
    first = last - timedelta(hours=24 * days - 1)
    sums = {
        row["hour"]: (row["issued"], row["failed"])
        for row in rows.filter(hour__gte=first).values("hour").order_by("hour")
        .annotate(issued=Sum("tokens_issued"), failed=Sum("failed_authentications"))
    }
    hours = [first + timedelta(hours=n) for n in range(24 * days)]
    values = [sums.get(hour, (0, 0)) for hour in hours]
    peak = max((issued + failed for issued, failed in values), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    width = CHART_WIDTH / len(hours)
    bars = tuple(
        Bar(
            hour=hour, tokens_issued=issued, failed_authentications=failed, x=round(index * width, 2),
            width=round(max(width - 0.5, 0.5), 2), issued_height=round(issued * scale, 2),
            failed_height=round(failed * scale, 2),
        )
        for index, (hour, (issued, failed)) in enumerate(zip(hours, values, strict=True))
    )
    return Chart(
        bars=bars, tokens_issued=sum(v[0] for v in values), failed_authentications=sum(v[1] for v in values),
        peak=peak,
    )


@dataclass(frozen=True)
class Dashboard:
    chart: Chart
    busiest: list[Client]
    failing: list[Client]
    unused: list[Client]
    expiring_secrets: list[ClientSecret]
    expiring_api_keys: list[ApiKey]


def dashboard(*, now: datetime, limit: int = 10) -> Dashboard:
    """The registry at a glance: tokens per hour for the last 7 days, the busiest clients and
    those with failed authentications (7 days), clients with no token for 30 days (or ever,
    made over 30 days ago), and live secrets and API keys that expire within 14 days."""
    week = now - timedelta(days=7)
    month = now - timedelta(days=30)
    in_week = Q(usage__hour__gte=week)
    clients = Client.objects.annotate(
        week_issued=Sum("usage__tokens_issued", filter=in_week),
        week_failed=Sum("usage__failed_authentications", filter=in_week),
    )
    used_recently = ClientUsage.objects.filter(hour__gte=month, tokens_issued__gt=0).values("client")
    unused = (
        Client.objects.filter(created__lt=month).exclude(pk__in=used_recently)
        .annotate(last_hour=Max("usage__hour", filter=Q(usage__tokens_issued__gt=0)))
        .order_by("client_id")
    )
    expiring = (
        ClientSecret.objects.live(now).filter(expires__lte=now + timedelta(days=14))
        .select_related("client").order_by("expires")
    )
    expiring_keys = (
        ApiKey.objects.live(now).filter(expires__lte=now + timedelta(days=14))
        .select_related("client").order_by("expires")
    )
    return Dashboard(
        chart=hourly_chart(ClientUsage.objects.all(), now=now),
        busiest=list(clients.filter(week_issued__gt=0).order_by("-week_issued", "client_id")[:limit]),
        failing=list(clients.filter(week_failed__gt=0).order_by("-week_failed", "client_id")[:limit]),
        unused=list(unused[: limit * 5]),
        expiring_secrets=list(expiring[: limit * 5]),
        expiring_api_keys=list(expiring_keys[: limit * 5]),
    )

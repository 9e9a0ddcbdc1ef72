from __future__ import annotations

import secrets

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


def _has_metrics_token(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and secrets.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Health for load balancers and monitors: 200 when the database, Redis and storage answer, else 503.

    Anyone sees the checks and how many workers are alive per queue; the
    workers' names, hosts and heartbeats need the metrics token or a staff login.
    """
    from webapp.core.health import health_report

    detailed = request.user.is_staff or _has_metrics_token(request)
    report = health_report(detailed=detailed)
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper holding ``ATELIER_METRICS_TOKEN``; 404 while no token is set."""
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off")
    if not _has_metrics_token(request):
        response = HttpResponse("A bearer token is required.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    from webapp.core.metrics import metrics_text

    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)

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

    Anyone sees up or down (``{"status": "ok"}`` or ``"error"``) and nothing
    else: a failed check's exception can name hosts, paths and credentials'
    users. The checks, their errors and the workers by queue (names, hosts,
    heartbeats) need the metrics token or a staff login; the log has the detail.
    """
    from webapp.core.health import health_report

    detailed = request.user.is_staff or _has_metrics_token(request)
    report = health_report(detailed=detailed)
    status = 200 if report["status"] == "ok" else 503
    return JsonResponse(report if detailed else {"status": report["status"]}, status=status)


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

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp.core import embedded_redis


class Command(BaseCommand):
    help = "Run the embedded Redis server in the foreground (only when REDIS_URL is unset)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.EMBEDDED_REDIS:
            raise CommandError("REDIS_URL is set: the external Redis is used, nothing to start.")
        self.stdout.write(f"Embedded Redis on 127.0.0.1:{settings.EMBEDDED_REDIS_PORT}")
        self.stdout.flush()
        embedded_redis.exec_foreground(
            port=settings.EMBEDDED_REDIS_PORT, data_dir=settings.VAR_DIR / "redis", password=settings.EMBEDDED_REDIS_PASSWORD
        )

from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """Atelier's user. A custom model from day one, so fields can be added later."""

    def __str__(self) -> str:
        return self.username

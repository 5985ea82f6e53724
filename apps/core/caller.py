"""The authenticated caller of an API request, typed. Every API view requires an API key (the default permission
class), so by the time a view runs ``request.user`` is a ``User``; DRF's stubs still type it as possibly anonymous."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request


def request_user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user

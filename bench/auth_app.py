"""A trivial endpoint twice, with and without authentication, for bench/auth_overhead.py."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Trivial(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class TrivialPublic(Trivial):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


urlpatterns = [path("auth", Trivial.as_view()), path("open", TrivialPublic.as_view())]

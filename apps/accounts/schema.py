"""How ``ApiKeyAuthentication`` appears in the OpenAPI schema: an HTTP bearer scheme, so generated clients and
Swagger UI send ``Authorization: Bearer <API_KEY>`` on exactly the operations that require it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "tb-<prefix>.<secret>"}

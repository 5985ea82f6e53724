from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.usage.selectors import usage_totals_by_day_and_model
from apps.usage.serializers import UsageOutputSerializer, UsageQuerySerializer


class UsageApi(APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[UsageQuerySerializer],
        responses=UsageOutputSerializer,
        tags=["usage"],
    )
    def get(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        rows = usage_totals_by_day_and_model(owner=request_user(request), start=start, end=end)
        return Response(UsageOutputSerializer({"start_date": start, "end_date": end, "data": rows}).data)

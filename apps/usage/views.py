from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.usage.selectors import usage_totals_by_day_and_model
from apps.usage.serializers import UsageOutputSerializer, UsageQuerySerializer


class UsageApi(APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[
            OpenApiParameter("start_date", str, description="YYYY-MM-DD, default 29 days before end_date."),
            OpenApiParameter("end_date", str, description="YYYY-MM-DD, default today (UTC)."),
        ],
        responses=UsageOutputSerializer,
        tags=["usage"],
    )
    def get(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        rows = usage_totals_by_day_and_model(owner=request.user, start=start, end=end)
        totals = {
            name: sum(row[name] for row in rows)
            for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "images")
        }
        return Response({"object": "usage", "start_date": start, "end_date": end, "data": rows, "totals": totals})

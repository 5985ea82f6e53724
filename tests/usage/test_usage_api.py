from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.usage.models import UsageRecord
from apps.usage.services import usage_record


@pytest.mark.django_db(transaction=True)
def test_usage_totals_by_day_and_model(tenant, other_tenant):
    for model, prompt, completion in [("m1", 10, 5), ("m1", 1, 2), ("m2", 7, 0)]:
        usage_record(
            owner_id=tenant.user.pk,
            api_key_id=tenant.api_key.pk,
            route="/v1/chat/completions",
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=3,
        )
    usage_record(owner_id=other_tenant.user.pk, api_key_id=None, route="/v1/x", model="m1", prompt_tokens=99)
    yesterday = timezone.now() - timedelta(days=1)
    UsageRecord.objects.create(owner=tenant.user, route="/v1/x", model="m1", prompt_tokens=4, created_at=yesterday)

    body = tenant.client.get("/v1/usage").json()
    today = timezone.now().date().isoformat()
    rows = {(row["date"], row["model"]): row for row in body["data"]}
    assert rows[(today, "m1")] == {
        "date": today,
        "model": "m1",
        "requests": 2,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "images": 0,
    }
    assert rows[(today, "m2")]["total_tokens"] == 7
    assert rows[(yesterday.date().isoformat(), "m1")]["prompt_tokens"] == 4
    assert body["totals"]["requests"] == 4  # bob's call is not in alice's usage
    assert body["totals"]["prompt_tokens"] == 22

    only_today = tenant.client.get(f"/v1/usage?start_date={today}").json()
    assert only_today["totals"]["requests"] == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("start_date=notadate", "start_date"),
        ("start_date=2026-02-01&end_date=2026-01-01", "start_date"),
        ("start_date=2020-01-01&end_date=2026-01-01", "start_date"),
    ],
)
def test_bad_usage_query_is_400(tenant, query, param):
    response = tenant.client.get(f"/v1/usage?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param

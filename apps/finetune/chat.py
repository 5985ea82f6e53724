"""A chat with a job's fine-tuned model in TigerBot's dialect (``/v1/finetunes/{id}/chat``, legacy ``ft/call``)."""

from __future__ import annotations

import time
from typing import Any, cast

from django.contrib.auth.models import User
from rest_framework.request import Request

from apps.chat.dialects import detect_dialect, parse_tigerbot
from apps.chat.services import chat_complete
from apps.core.caller import request_user
from apps.finetune import selectors
from apps.finetune.models import FineTunedModel, FineTuneJob
from apps.usage.recording import request_usage_record
from workers.runtime.specs import GenerationRequest, GenerationResult


def job_and_model(*, owner: User, job_id: str) -> tuple[FineTuneJob, FineTunedModel]:
    job = selectors.finetune_job_get(owner=owner, job_id=job_id)
    return job, selectors.fine_tuned_model_of(job=job)


def chat_with_fine_tuned(request: Request, *, job_id: str, body: object) -> GenerationResult:
    """``body``: query, session and the sampling parameters; billed to the caller like any chat."""
    _, model = job_and_model(owner=request_user(request), job_id=job_id)
    detect_dialect(body)  # a body that is not a JSON object, or has no query, is a 400 here too
    chat = parse_tigerbot(cast(dict[str, Any], body))
    served = selectors.fine_tuned_model_served(model=model)
    started = time.monotonic()
    params = chat.params_for(served.spec)
    result = chat_complete(request=GenerationRequest(spec=served.spec, messages=chat.messages, params=params))
    request_usage_record(request, model=served.id, started=started, results=[result])
    return result

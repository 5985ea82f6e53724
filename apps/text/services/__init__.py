"""Writes of the text app, one module a concern: ``pdf2text``, ``summarization`` and the ``jobs`` plumbing both
share (uploads, queueing, claiming, ending, stale-job sweeps). The Celery tasks in ``tasks.py`` are one-line calls
into them."""

"""ML runtime: model loading, prompt formats, generation, retrieval, PDF extraction, training.

Nothing in this package imports Django; the Celery tasks in ``apps/`` call into it.
"""

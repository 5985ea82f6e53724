"""Writes of the plugins app, one module per concern: ``catalogue`` (plugins), ``documents`` (uploads and
imports), ``ingestion`` (ingest runs and reindexing) and ``builtin_plugins`` (the built-in corpora)."""

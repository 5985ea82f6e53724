from tests.chat.conftest import tiny_models  # noqa: F401  (the session-built tiny checkpoints)

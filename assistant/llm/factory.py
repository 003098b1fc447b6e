"""Pick the chat backend named by the settings; local models are loaded once per process."""

from __future__ import annotations

import threading

from assistant.config import Settings
from assistant.errors import ConfigError
from assistant.llm.base import ChatBackend

_LOCAL: dict[tuple[str, int, int, int, int], ChatBackend] = {}
_LOCAL_LOCK = threading.Lock()


def shared_local_backend(settings: Settings, *, progress: bool = True) -> ChatBackend:
    """One LocalBackend per (model file, threads, n_ctx, parallel, prompt cache) in this process."""
    from assistant.llm.local import LocalBackend
    from assistant.llm.model_files import prepare_model

    with _LOCAL_LOCK:
        path = prepare_model(settings, progress=progress).resolve()
        key = (str(path), settings.llm.threads, settings.llm.n_ctx, settings.llm.parallel,
               settings.llm.prompt_cache_mib)
        backend = _LOCAL.get(key)
        if backend is None:
            backend = LocalBackend(settings, progress=progress)
            _LOCAL[key] = backend
        return backend


def make_backend(settings: Settings) -> ChatBackend:
    kind = settings.llm.backend
    if kind == "local":
        return shared_local_backend(settings)
    if kind == "openai":
        from assistant.llm.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(settings)
    if kind == "fake":
        from assistant.llm.fake import FakeBackend

        return FakeBackend(settings)
    raise ConfigError(f"unknown llm.backend {kind!r}; expected local, openai or fake")

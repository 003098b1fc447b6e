"""Recommendation settings: the ``[recommendation]`` table of the config file, overridden by
``MENTORLY_RECOMMENDATION__*`` environment variables (``assistant.config.PluginSettings``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from assistant.config import PluginSettings, load_section


class RecommendationSettings(PluginSettings):
    section = "recommendation"
    model_config = SettingsConfigDict(env_prefix="MENTORLY_RECOMMENDATION__", extra="ignore")

    retrain_every_hours: float = Field(
        24.0, ge=0.0, description="retrain a tenant's model in the background once it is this old "
        "and new events arrived since (0: only `mentorly rec train` and catalog changes retrain)")
    auto_retrain_max_items: int = Field(
        2000, ge=0, description="retrain at once when the catalog gained resources the model does "
        "not know, up to this many resources (larger catalogs wait for `mentorly rec train`)")


def recommendation_settings() -> RecommendationSettings:
    return load_section(RecommendationSettings)

"""Knowledge-base settings: the ``[knowledge]`` table of the config file, overridden by
``MENTORLY_KNOWLEDGE__*`` environment variables (``assistant.config.PluginSettings``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from assistant.config import PluginSettings, load_section
from knowledge import KBConfig, UnpackLimits


class KnowledgeSettings(PluginSettings):
    section = "knowledge"
    model_config = SettingsConfigDict(env_prefix="MENTORLY_KNOWLEDGE__", extra="ignore")

    max_file_mb: float = Field(50.0, gt=0, description="larger files are skipped with a reason")
    max_unpacked_mb: float = Field(
        100.0, gt=0, description="what one document may unpack to: a .docx archive's members "
        "together, a PDF's page streams together (and each stream), its text")
    max_compression_ratio: float = Field(
        100.0, ge=2, description="a .docx member of 1 MB or more packed tighter than this is "
        "refused (Word's XML packs about 5-20:1; a zip bomb 1000:1)")
    max_archive_entries: int = Field(2000, ge=10, description="members of a .docx archive")
    max_pdf_pages: int = Field(5000, ge=1, description="pages of a PDF")
    hybrid: bool = Field(True, description="fuse BM25 with the dense scores (knowledge.fusion)")
    lexical_weight: float = Field(0.1, ge=0.0, le=1.0)
    secondary_embedder: str = Field(
        "minilm", description="second embedder fused with the main one for queries not in a CJK "
        "script ('minilm', a sentence-transformers folder, or '' for none)")
    secondary_weight: float = Field(3.0, ge=0.0, le=10.0, description="its weight in the fusion "
                                    "(the main embedder's is 1, BM25's lexical_weight)")
    min_relevance: float | None = Field(
        None, description="minimum cosine margin over the off-topic baseline; default per embedder")
    chunk_units: int = Field(160, ge=20, le=2000)
    overlap_units: int = Field(24, ge=0, le=500)
    flush_chunks: int = Field(512, ge=1, description="chunks between index writes while ingesting")
    lease_ttl_s: float = Field(
        30.0, ge=1.0, le=3600.0, description="a collection's write lease (database row): the "
        "writer renews it every third of this; a replica that died mid-write is cleaned up by "
        "another one this long after")
    sync_interval_s: float = Field(
        1.0, ge=0.0, le=300.0, description="how often a search asks the database whether another "
        "replica changed a collection (its write is searchable here within about this)")
    demo_collection: str = "demo"
    load_demo: bool = Field(True, description="load the demo handbook on `models prepare`")

    def kb_config(self) -> KBConfig:
        limits = UnpackLimits(max_unpacked_bytes=int(self.max_unpacked_mb * 1024 * 1024),
                              max_compression_ratio=self.max_compression_ratio,
                              max_entries=self.max_archive_entries, max_pdf_pages=self.max_pdf_pages)
        return KBConfig(max_file_bytes=int(self.max_file_mb * 1024 * 1024), limits=limits,
                        hybrid=self.hybrid,
                        lexical_weight=self.lexical_weight,
                        secondary_weight=self.secondary_weight, min_relevance=self.min_relevance,
                        chunk_units=self.chunk_units, overlap_units=self.overlap_units,
                        flush_chunks=self.flush_chunks, lease_ttl_s=self.lease_ttl_s,
                        sync_interval_s=self.sync_interval_s)


def knowledge_settings(settings: Any) -> KnowledgeSettings:
    section = getattr(settings, "knowledge", None)
    if isinstance(section, KnowledgeSettings):
        return section
    if section is not None and hasattr(section, "model_dump"):
        return load_section(KnowledgeSettings, **section.model_dump())
    return load_section(KnowledgeSettings)

"""Errors of the knowledge library (it imports nothing from the product; the plugin maps them)."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class; ``str(exc)`` is a sentence a user can read."""


class UnreadableDocument(KnowledgeError):
    """A file that cannot be ingested (empty, binary, encrypted, corrupt, too large...)."""


class DocumentTooLarge(UnreadableDocument):
    """Over a size limit: the file itself, or what it unpacks to (a ZIP member, a PDF stream,
    its text). The product answers 413."""


class WrongFormat(UnreadableDocument):
    """The bytes are not the format the file name says (a ``.docx`` that is no ZIP archive or
    has no ``word/document.xml``). The product answers 415."""


class CollectionBusy(KnowledgeError):
    """Another process holds the collection's write lease (an ingest, delete or rebuild), or
    this writer lost it; the product answers 409: try again when that write has finished."""


class CollectionNotFound(KnowledgeError):
    pass


class DocumentNotFound(KnowledgeError):
    pass


class EmbedderMismatch(KnowledgeError):
    """The collection was built with another embedder (or dimension) than the one offered."""


class IndexCorrupt(KnowledgeError):
    """The FAISS file cannot be read; ``kb rebuild`` recreates it from the database."""

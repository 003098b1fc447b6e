"""HTTP operations on the knowledge base (``/api/knowledge``), added by the ``register_routes``
hook: upload a document, list collections and documents, delete a document, search, check.

Every operation needs the ``knowledge`` scope (``admin`` implies it) and acts only on the
calling key's tenant; another tenant's collections read as unknown (404). Uploads are checked
before anything is stored: the extension must be one the loaders read, the bytes must match it
(PDF and DOCX signatures, text that decodes), and the size is capped by
``MENTORLY_KNOWLEDGE__MAX_FILE_MB``. A DOCX archive is also checked against the unpacking
limits (``knowledge.unpacking``) before anything is decompressed: a zip bomb is refused with
413 in milliseconds. A document that cannot be read answers 422 naming the problem.

``/lti/api/course/…`` does the same for a launched LTI page's instructor, on the one collection
their course's launch names (``Authorization: Bearer lti_…``, checked by the core's
``instructor_session``): a learner's session is refused (403), a path or body never names a
collection, and uploads and removals are audited with the instructor as actor (``lti:<user>``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile as FormFile

from assistant import audit
from assistant.api import require
from assistant.api.body_guard import UPLOAD_SLACK, counted_receive, size_text
from assistant.api.lti_course import InstructorSession
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse
from assistant.api.uploads import read_upload
from assistant.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from assistant.security import KNOWLEDGE, Principal
from knowledge import DocumentTooLarge, UnpackLimits, UnreadableDocument, WrongFormat
from knowledge.loaders import SUFFIXES, decode_text
from knowledge.unpacking import check_docx

from .service import knowledge_base, product_errors
from .settings import knowledge_settings
from .tool import MAX_QUERY_CHARS

COLLECTION_PATTERN = r"^[\w][\w.-]{0,99}$"
UPLOAD_DOC = f"a document: {', '.join(SUFFIXES)} (the name, without folders, becomes its id)"
_CONTROL = re.compile(r"[\x00-\x1f]")
_FILENAME_BAD = re.compile(r"[\x00-\x1f\\/]")

KnowledgeKey = Annotated[Principal, Depends(require(KNOWLEDGE))]
Collection = Annotated[str, PathParam(pattern=COLLECTION_PATTERN, description=(
    "collection name (letters, digits, _ . -; at most 100), e.g. a course code"))]


class FileOutcomeOut(BaseModel):
    source: str = Field(description="the document's name in the collection (its id)")
    action: str = Field(description="added | replaced | skipped | failed")
    reason: str = ""
    chunks: int = 0
    error: str = Field("", description="when failed: too_large | unreadable | internal")


class IngestReportOut(BaseModel):
    tenant: str
    collection: str
    recovered: int = Field(description="documents settled from an interrupted ingest")
    seconds: float
    chunks: int = Field(description="chunks added or replaced")
    counts: dict[str, int]
    files: list[FileOutcomeOut]


class CollectionOut(BaseModel):
    name: str
    embedder: str
    dim: int
    documents: int
    chunks: int


class DocumentOut(BaseModel):
    source: str = Field(description="the document id used by DELETE")
    title: str
    chunks: int
    sha256: str
    added: str


class DeletedOut(BaseModel):
    collection: str
    source: str
    chunks: int


class CheckOut(BaseModel):
    collection: str
    embedder: str
    documents: int
    db_chunks: int = Field(description="passages in the database")
    index_vectors: int = Field(description="vectors in the collection's index file")
    missing_in_index: int
    extra_in_index: int
    recovered: int = Field(description="documents settled from an interrupted ingest")
    ok: bool
    problems: list[str]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    collection: str | None = Field(None, pattern=COLLECTION_PATTERN,
                                   description="search only this collection (default: all of the tenant's)")
    k: int = Field(5, ge=1, le=50)
    mode: str | None = Field(None, pattern="^(hybrid|dense)$",
                             description="default: the configured mode (hybrid)")


class Passage(BaseModel):
    text: str
    score: float = Field(description="cosine similarity with the query")
    relevance: float = Field(description="the score minus the query's off-topic baseline")
    collection: str
    source: str = Field(description="the document the passage comes from")
    title: str
    heading: str | None = None
    page: int | None = None


class SearchResult(BaseModel):
    query: str
    passages: list[Passage] = Field(description="best first; empty when nothing is relevant")


def max_upload_bytes(runtime: Any) -> int:
    return knowledge_settings(runtime.settings).kb_config().max_file_bytes


def unpack_limits(runtime: Any) -> UnpackLimits:
    return knowledge_settings(runtime.settings).kb_config().limits


def safe_filename(name: str | None) -> str:
    """The upload's base name, refused (422) when it cannot be a document name."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or base.startswith(".") or _FILENAME_BAD.search(base) \
            or len(base) > 200:
        raise InvalidInput("the upload needs a plain file name such as notes.md (no path, at most "
                           "200 characters, not hidden)")
    return base


def check_content(filename: str, data: bytes, limits: UnpackLimits | None = None) -> None:
    """Refuse (415) a file whose extension the loaders do not read or whose bytes do not match it,
    and a DOCX archive that would unpack to too much (413) or is suspicious or damaged (422)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedMedia(f"unsupported document type {suffix or '(none)'}; "
                               f"use one of {', '.join(SUFFIXES)}")
    if not data:
        raise InvalidInput("the uploaded file is empty")
    if suffix == ".pdf":
        if not data[:1024].lstrip().startswith(b"%PDF-"):
            raise UnsupportedMedia(f"{filename} is not a PDF (no %PDF- signature)")
    elif suffix == ".docx":
        try:
            check_docx(data, limits or UnpackLimits())
        except WrongFormat as exc:
            raise UnsupportedMedia(f"{filename} is not a DOCX document ({exc})") from None
        except DocumentTooLarge as exc:
            raise PayloadTooLarge(f"{filename} cannot be ingested: {exc}") from None
        except UnreadableDocument as exc:
            raise InvalidInput(f"{filename} cannot be ingested: {exc}") from None
    else:
        try:
            decode_text(data)
        except UnreadableDocument as exc:
            raise UnsupportedMedia(f"{filename}: {exc}") from None


async def refuse_oversized_body(request: Request) -> None:
    """Refuse by Content-Length before the multipart body is parsed and spooled."""
    limit = max_upload_bytes(request.app.state.runtime)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + UPLOAD_SLACK:
        raise PayloadTooLarge(f"the upload is {int(length):,} bytes, over the limit of {limit:,}")


def _ingest(runtime: Any, tenant: str, collection: str, filename: str, data: bytes) -> dict[str, Any]:
    kb = knowledge_base(runtime.settings)
    with tempfile.TemporaryDirectory(prefix="mentorly-kb-") as folder:
        path = Path(folder) / filename
        path.write_bytes(data)
        with product_errors():
            report = kb.ingest([path], tenant, collection)
    failed = [f for f in report.files if f.action == "failed"]
    if failed and len(failed) == len(report.files):
        error = PayloadTooLarge if failed[0].error == "too_large" else InvalidInput
        raise error(f"{failed[0].source} cannot be ingested: {failed[0].reason}")
    return report.to_dict()


def _collections(runtime: Any, tenant: str) -> list[dict[str, Any]]:
    with product_errors():
        return knowledge_base(runtime.settings).collections(tenant)


def _documents(runtime: Any, tenant: str, collection: str) -> list[dict[str, Any]]:
    with product_errors():
        return knowledge_base(runtime.settings).documents(tenant, collection)


def _delete(runtime: Any, tenant: str, collection: str, source: str) -> int:
    with product_errors():
        return knowledge_base(runtime.settings).delete_document(tenant, collection, source)


def _check(runtime: Any, tenant: str, collection: str | None) -> list[dict[str, Any]]:
    with product_errors():
        return [r.to_dict() for r in knowledge_base(runtime.settings).check(tenant, collection)]


def _search(runtime: Any, tenant: str, body: SearchRequest) -> list[dict[str, Any]]:
    query = " ".join(body.query.split())
    if not query:
        raise InvalidInput("the search query is empty")
    with product_errors():
        hits = knowledge_base(runtime.settings).search(
            tenant, query, None if body.collection is None else [body.collection], k=body.k,
            hybrid=None if body.mode is None else body.mode == "hybrid")
    return [h.to_dict() for h in hits]


def make_router(runtime: Any) -> APIRouter:
    router = APIRouter(prefix="/api/knowledge", tags=["knowledge"], responses=ERROR_RESPONSES)

    @router.post("/{collection}/documents", operation_id="upload_knowledge_document",
                 response_model=IngestReportOut,
                 responses={413: {"model": ErrorResponse,
                                  "description": "over the size limit, or unpacks to more than "
                                                 "[knowledge] max_unpacked_mb"},
                            415: {"model": ErrorResponse,
                                  "description": "not a supported document type, or the bytes "
                                                 "do not match the extension"}},
                 dependencies=[Depends(refuse_oversized_body)])
    async def upload_document(collection: Collection,
                              file: Annotated[UploadFile, File(description=UPLOAD_DOC)],
                              principal: KnowledgeKey) -> dict[str, Any]:
        """Add a document to a collection of this key's tenant (the collection is created on
        first use). Uploading a changed file with the same name replaces it; an unchanged one
        is skipped. The report says what happened."""
        limit = max_upload_bytes(runtime)
        filename = safe_filename(file.filename)
        data = await read_upload(file, limit)
        # off the event loop: a DOCX is decompressed once (bounded) to check it
        await anyio.to_thread.run_sync(check_content, filename, data, unpack_limits(runtime))
        return await anyio.to_thread.run_sync(_ingest, runtime, principal.tenant, collection,
                                              filename, data)

    @router.get("/collections", operation_id="list_knowledge_collections",
                response_model=list[CollectionOut])
    async def list_collections(principal: KnowledgeKey) -> list[dict[str, Any]]:
        """This tenant's collections with their document and chunk counts."""
        return await anyio.to_thread.run_sync(_collections, runtime, principal.tenant)

    @router.get("/{collection}/documents", operation_id="list_knowledge_documents",
                response_model=list[DocumentOut])
    async def list_documents(collection: Collection, principal: KnowledgeKey) -> list[dict[str, Any]]:
        """The documents of one collection (404 if this tenant has no such collection)."""
        return await anyio.to_thread.run_sync(_documents, runtime, principal.tenant, collection)

    @router.delete("/{collection}/documents/{doc_id:path}", operation_id="delete_knowledge_document",
                   response_model=DeletedOut)
    async def delete_document(collection: Collection, doc_id: str,
                              principal: KnowledgeKey) -> DeletedOut:
        """Delete a document (``doc_id``: its ``source`` as listed) and its passages."""
        if not doc_id.strip() or len(doc_id) > 500 or _CONTROL.search(doc_id):
            raise InvalidInput("give the document's source name as listed by GET .../documents")
        chunks = await anyio.to_thread.run_sync(_delete, runtime, principal.tenant, collection, doc_id)
        return DeletedOut(collection=collection, source=doc_id, chunks=chunks)

    @router.get("/check", operation_id="check_knowledge", response_model=list[CheckOut])
    async def check(principal: KnowledgeKey,
                    collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None
                    ) -> list[dict[str, Any]]:
        """Whether each of this tenant's index files agrees with the database (``ok``), after
        settling any interrupted ingest; repair a mismatch with ``mentorly kb rebuild``."""
        return await anyio.to_thread.run_sync(_check, runtime, principal.tenant, collection)

    @router.post("/search", operation_id="search_knowledge", response_model=SearchResult)
    async def search(body: SearchRequest, principal: KnowledgeKey) -> SearchResult:
        """The passages of this tenant's documents most relevant to ``query``, with scores
        and sources; only passages above the relevance threshold are returned."""
        hits = await anyio.to_thread.run_sync(_search, runtime, principal.tenant, body)
        return SearchResult(query=body.query, passages=[Passage(**h) for h in hits])

    return router


def _course_documents(runtime: Any, tenant: str, collection: str) -> list[dict[str, Any]]:
    """A course's documents; none before its first upload (which makes the collection)."""
    try:
        return _documents(runtime, tenant, collection)
    except NotFound:
        return []


def _course_status(runtime: Any, tenant: str, collection: str) -> dict[str, Any]:
    """Documents, chunks and whether the index agrees with the database (``kb check``)."""
    try:
        [result] = _check(runtime, tenant, collection)
    except NotFound:
        return {"collection": collection, "exists": False, "documents": 0, "chunks": 0,
                "index_vectors": 0, "in_sync": True, "problems": []}
    return {"collection": collection, "exists": True, "documents": result["documents"],
            "chunks": result["db_chunks"], "index_vectors": result["index_vectors"],
            "in_sync": bool(result["ok"]), "problems": list(result["problems"]),
            "recovered": result["recovered"]}


async def _one_file(request: Request, limit: int) -> tuple[str, bytes]:
    """The multipart body's ``file`` (name, bytes), parsed only now: after the session was
    checked, so nobody else's upload is ever read or spooled."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + UPLOAD_SLACK:
        raise PayloadTooLarge(f"the upload is {int(length):,} bytes, over the limit of {limit:,}")
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput("send the document as multipart/form-data in the field 'file'")
    # counted as it streams (``BodyGuard`` does this for /api/ routes; /lti/ is outside its paths)
    body = Request(request.scope, counted_receive(request.receive, limit, PayloadTooLarge))
    async with body.form(max_files=1, max_fields=4) as form:
        file = form.get("file")
        if not isinstance(file, FormFile):
            raise InvalidInput("send the document in the multipart field 'file'")
        filename = safe_filename(file.filename)
        data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the file exceeded the upload limit of {size_text(limit)}")
    return filename, data


def course_router(runtime: Any) -> APIRouter:
    """The course's documents and status for its instructor (``/lti/api/course/…``)."""
    router = APIRouter(prefix="/lti/api/course", tags=["lti"], include_in_schema=False)

    def actor(session: Any) -> str:
        """``lti:<user>``: the session's user id already reads ``lti:<platform>:<sub>``."""
        user = str(session.user)
        return user if user.startswith("lti:") else f"lti:{user}"

    @router.get("/documents")
    async def course_documents(session: InstructorSession) -> dict[str, Any]:
        collection = str(session.collection)
        docs = await anyio.to_thread.run_sync(_course_documents, runtime, session.tenant, collection)
        return {"collection": collection, "documents": docs}

    @router.post("/documents")
    async def upload_course_document(request: Request, session: InstructorSession) -> dict[str, Any]:
        """Add (or replace) a document in the course's collection; made on the first upload."""
        collection = str(session.collection)
        filename, data = await _one_file(request, max_upload_bytes(runtime))
        await anyio.to_thread.run_sync(check_content, filename, data, unpack_limits(runtime))
        report = await anyio.to_thread.run_sync(_ingest, runtime, session.tenant, collection,
                                                filename, data)
        await anyio.to_thread.run_sync(lambda: audit.record(
            runtime.db, actor=actor(session), action=audit.DOCUMENT_UPLOADED,
            target=f"{collection}/{filename}", tenant=session.tenant,
            details={"collection": collection, "source": filename, "via": "lti",
                     "platform": session.platform_id, "counts": report.get("counts", {})}))
        return report

    @router.delete("/documents/{source:path}")
    async def delete_course_document(source: str, session: InstructorSession) -> DeletedOut:
        """Remove a document (its ``source`` as listed) from the course's collection."""
        if not source.strip() or len(source) > 500 or _CONTROL.search(source):
            raise InvalidInput("give the document's source name as listed by GET .../documents")
        collection = str(session.collection)
        chunks = await anyio.to_thread.run_sync(_delete, runtime, session.tenant, collection, source)
        await anyio.to_thread.run_sync(lambda: audit.record(
            runtime.db, actor=actor(session), action=audit.DOCUMENT_DELETED,
            target=f"{collection}/{source}", tenant=session.tenant,
            details={"collection": collection, "source": source, "via": "lti",
                     "platform": session.platform_id, "chunks": chunks}))
        return DeletedOut(collection=collection, source=source, chunks=chunks)

    @router.get("/status")
    async def course_status(session: InstructorSession) -> dict[str, Any]:
        """The collection's documents and chunks, and whether its index is in sync."""
        collection = str(session.collection)
        status = await anyio.to_thread.run_sync(_course_status, runtime, session.tenant, collection)
        course = session.course
        return {**status, "title": course.title if course is not None else "",
                "accepts": list(SUFFIXES), "max_bytes": max_upload_bytes(runtime)}

    return router


def install(app: FastAPI, runtime: Any) -> None:
    app.include_router(make_router(runtime))
    app.include_router(course_router(runtime))

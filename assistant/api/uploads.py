"""``POST /api/uploads``: an image, validated by the upload store (size, magic bytes, pixels)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, Request, UploadFile

from assistant.api.auth import ChatKey, RuntimeDep
from assistant.api.body_guard import UPLOAD_SLACK, size_text
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse, UploadInfo
from assistant.errors import InvalidInput, PayloadTooLarge

router = APIRouter(tags=["uploads"])
_FILE_DOC = "a PNG, JPEG, GIF, WEBP, BMP or TIFF image"


async def _refuse_oversized_body(request: Request) -> None:
    """Refuse by Content-Length (a body without one is stopped by ``BodyGuard`` as it streams)."""
    limit = request.app.state.runtime.settings.uploads.max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + UPLOAD_SLACK:
        raise PayloadTooLarge(f"the upload is {int(length):,} bytes, over the limit of {limit:,}")


async def read_upload(file: UploadFile, limit: int) -> bytes:
    """The file's bytes, at most ``limit``: a longer file is refused without claiming a size
    (only ``limit + 1`` bytes were read)."""
    data = await file.read(limit + 1)
    await file.close()
    if not isinstance(data, bytes):
        raise InvalidInput("the upload must be a file")
    if len(data) > limit:
        raise PayloadTooLarge(f"the file exceeded the upload limit of {size_text(limit)}")
    return data


@router.post("/api/uploads", operation_id="create_upload", response_model=UploadInfo, status_code=201,
             responses={**ERROR_RESPONSES, 413: {"model": ErrorResponse, "description": "too large"},
                        415: {"model": ErrorResponse, "description": "not an image"}},
             dependencies=[Depends(_refuse_oversized_body)])
async def create_upload(file: Annotated[UploadFile, File(description=_FILE_DOC)], principal: ChatKey,
                        runtime: RuntimeDep) -> UploadInfo:
    """Store an image for this key's tenant; pass the id to chat or to a tool."""
    data = await read_upload(file, runtime.settings.uploads.max_bytes)
    upload = await anyio.to_thread.run_sync(runtime.uploads.save, data, file.filename or "upload",
                                            principal.tenant)
    return UploadInfo(id=upload.id, mime=upload.mime, size=upload.size, width=upload.width,
                      height=upload.height)

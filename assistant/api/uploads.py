"""``POST /api/uploads``: an image, validated by the upload store (size, magic bytes, pixels)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, File, Request, UploadFile

from assistant.api.auth import get_runtime, require
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse, UploadInfo
from assistant.errors import InvalidInput, PayloadTooLarge
from assistant.runtime import Runtime
from assistant.security import CHAT, Principal

router = APIRouter(tags=["uploads"])
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file


def _refuse_oversized_body(request: Request) -> None:
    """Refuse by Content-Length before the multipart body is parsed and spooled."""
    limit = request.app.state.runtime.settings.uploads.max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + _MULTIPART_SLACK:
        raise PayloadTooLarge(f"the upload is {int(length):,} bytes, over the limit of {limit:,}")


@router.post("/api/uploads", operation_id="create_upload", response_model=UploadInfo, status_code=201,
             responses={**ERROR_RESPONSES, 413: {"model": ErrorResponse, "description": "too large"},
                        415: {"model": ErrorResponse, "description": "not an image"}},
             dependencies=[Depends(_refuse_oversized_body)])
async def create_upload(file: UploadFile = File(..., description="a PNG, JPEG, GIF, WEBP, BMP or TIFF image"),
                        principal: Principal = Depends(require(CHAT)),
                        runtime: Runtime = Depends(get_runtime)) -> UploadInfo:
    """Store an image for this key's tenant; pass the id to chat or to a tool."""
    limit = runtime.settings.uploads.max_bytes
    data = await file.read(limit + 1)
    await file.close()
    if not isinstance(data, bytes):
        raise InvalidInput("the upload must be a file")
    upload = await anyio.to_thread.run_sync(runtime.uploads.save, data, file.filename or "upload",
                                            principal.tenant)
    return UploadInfo(id=upload.id, mime=upload.mime, size=upload.size, width=upload.width,
                      height=upload.height)

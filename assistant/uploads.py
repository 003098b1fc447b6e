"""The upload store: every surface (CLI ``--image``, HTTP uploads, the UI) saves files here.

A file is checked before anything decodes it: size, type by its magic bytes (never by its
name), and the pixel count read from the header. Only then is its first frame decoded once,
to refuse truncated or corrupt files. Files live under ``root/tenant/id.ext`` where ``id`` is
random and ``ext`` comes from the detected type, so no part of the path is chosen by the user;
a JSON sidecar ``id.json`` keeps the metadata. Another tenant's id reads as unknown.

The files are the whole state: no index in memory, so replicas that share ``root``
(``settings.uploads_dir``, under ``shared_dir``) see each other's uploads at once. Both files
are written atomically, the image first and the sidecar last (an id is readable only once its
image is complete); a delete removes the sidecar first (the id is unknown from then on, on
every replica), then the image.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from assistant.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from assistant.tooling import Upload
from knowledge.atomic import atomic_write_bytes

__all__ = ["UploadStore", "sniff_mime", "IMAGE_TYPES"]

# mime -> file extension, for the types we accept
IMAGE_TYPES: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
}

_PIL_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}$")


def sniff_mime(head: bytes) -> str:
    """The media type of a file from its first bytes (images precisely, others roughly)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head[:4] == b"RIFF":
        return "audio/wav" if head[8:12] == b"WAVE" else "application/octet-stream"
    if _looks_like_text(head):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable / len(text) > 0.95


class UploadStore:
    """Validated image uploads on disk, per tenant."""

    def __init__(self, root: Path, max_bytes: int, max_pixels: int) -> None:
        if max_bytes < 1 or max_pixels < 1:
            raise ValueError("max_bytes and max_pixels must be positive")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        # PIL's own guard (it refuses images over twice this many pixels in Image.open) must
        # never be tighter than ours, or it would warn about images we accept; our check below
        # applies the configured limit exactly.
        current = Image.MAX_IMAGE_PIXELS or 0
        if max_pixels > current:
            Image.MAX_IMAGE_PIXELS = max_pixels

    # ---- writing -----------------------------------------------------------------------

    def save(self, data: bytes, filename: str, tenant: str) -> Upload:
        """Validate ``data`` and store it; ``filename`` is only used in messages."""
        self._tenant_dir(tenant)  # validates the tenant before any work
        name = _display_name(filename)
        if len(data) == 0:
            raise InvalidInput(f"{name} is empty (0 bytes)")
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(
                f"{name} is {_mb(len(data))}, over the upload limit of {_mb(self.max_bytes)}"
            )
        mime = sniff_mime(data[:64])
        if mime not in IMAGE_TYPES:
            raise UnsupportedMedia(
                f"not an image: {name} (detected {mime}); send a PNG, JPEG, GIF, WEBP, BMP "
                "or TIFF file"
            )
        width, height = self._check_image(data, name, mime)
        return self._write(data, tenant, mime, width, height, name)

    def save_path(self, path: Path, tenant: str) -> Upload:
        """Validate and copy a local file (the CLI's ``--image``); size is checked before reading."""
        path = Path(path)
        if not path.exists():
            raise InvalidInput(f"no such file: {path}")
        if not path.is_file():
            raise InvalidInput(f"not a file: {path}")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"{path.name} is {_mb(size)}, over the upload limit of {_mb(self.max_bytes)}"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
        return self.save(data, path.name, tenant)

    def _check_image(self, data: bytes, name: str, mime: str) -> tuple[int, int]:
        """Header first (pixel count), then one decode of the first frame (integrity)."""
        try:
            with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as im:
                width, height = im.size  # read from the header; nothing decoded yet
                self._check_pixels(width, height, name)
                im.seek(0)
                im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # PIL refuses far-too-large headers itself, before allocating anything
            raise PayloadTooLarge(
                f"{name} has too many pixels (limit {self.max_pixels:,})"
            ) from None
        except UnidentifiedImageError:
            raise InvalidInput(
                f"{name} looks like {mime} but cannot be read as an image (corrupt header)"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # truncated data ("image file is truncated"), bad chunks, broken CRCs, ...
            raise InvalidInput(f"{name} is a damaged or truncated image: {exc}") from None
        if width < 1 or height < 1:
            raise InvalidInput(f"{name} has no pixels ({width}×{height})")
        return width, height

    def _check_pixels(self, width: int, height: int, name: str) -> None:
        if width * height > self.max_pixels:
            raise PayloadTooLarge(
                f"{name} is {width}×{height} = {width * height:,} pixels, over the limit of "
                f"{self.max_pixels:,}"
            )

    def _write(self, data: bytes, tenant: str, mime: str, width: int, height: int,
               name: str) -> Upload:
        directory = self._tenant_dir(tenant)
        directory.mkdir(parents=True, exist_ok=True)
        upload_id = secrets.token_urlsafe(16)
        path = directory / f"{upload_id}{IMAGE_TYPES[mime]}"
        atomic_write_bytes(path, data, private=True)  # learners' images: owner-only, as before
        meta = {"id": upload_id, "file": path.name, "mime": mime, "size": len(data),
                "width": width, "height": height, "filename": name}
        atomic_write_bytes(directory / f"{upload_id}.json", json.dumps(meta).encode(), private=True)
        return Upload(id=upload_id, path=path, mime=mime, size=len(data), width=width,
                      height=height)

    # ---- reading -----------------------------------------------------------------------

    def get(self, tenant: str, upload_id: str) -> Upload:
        """The upload ``upload_id`` of ``tenant``; ``NotFound`` for unknown or foreign ids."""
        if not isinstance(upload_id, str) or not _ID_RE.match(upload_id):
            raise NotFound(f"no upload with id {upload_id!r}")
        directory = self._tenant_dir(tenant)
        meta_path = directory / f"{upload_id}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no upload with id {upload_id!r}") from None
        except (OSError, ValueError) as exc:
            raise NotFound(f"upload {upload_id!r} is unreadable: {exc}") from None
        path = directory / Path(str(meta.get("file", ""))).name
        if not path.is_file() or not path.name.startswith(upload_id):
            raise NotFound(f"no upload with id {upload_id!r}")
        return Upload(id=upload_id, path=path, mime=str(meta["mime"]), size=int(meta["size"]),
                      width=meta.get("width"), height=meta.get("height"))

    def delete(self, tenant: str, upload_id: str) -> None:
        upload = self.get(tenant, upload_id)
        (upload.path.parent / f"{upload_id}.json").unlink(missing_ok=True)
        upload.path.unlink(missing_ok=True)

    def _tenant_dir(self, tenant: str) -> Path:
        if not isinstance(tenant, str) or not _TENANT_RE.match(tenant) or tenant in {".", ".."}:
            raise InvalidInput(f"invalid tenant name {tenant!r}")
        return self.root / tenant


def _display_name(filename: str) -> str:
    base = os.path.basename(str(filename or "")) or "upload"
    return repr(base[:120])


def _mb(n: int) -> str:
    """With the exact count: "10.0 MB" alone would name a file one byte over the limit and the
    limit alike."""
    return f"{n / (1024 * 1024):.1f} MB ({n:,} bytes)" if n >= 1024 * 1024 else f"{n:,} bytes"

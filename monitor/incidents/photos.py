"""Photos of a complication, kept as files named by their content's SHA-256.

The chain records a photo's hash, size and type (``incident_photo_attached``); the bytes live
in a folder beside the session log (``<log file>.photos/``), one file per content, written
whole (temporary file, fsync, rename) before the chain names it. A file that goes missing or
changes is found by ``check``: the hash in the chain no longer matches.

Only PNG and JPEG are taken, told by their bytes, never by the name: a PNG starts with its
8-byte signature and ends with an IEND chunk; a JPEG starts with SOI (FF D8 FF) and ends with
EOI (FF D9). A truncated upload fails the end check. A photo larger than ``MAX_PHOTO_BYTES``
is refused (clinic default, review: a phone photo is 2-6 MB). Refusals happen before a byte
is written.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monitor.incidents.errors import IncidentInputError

__all__ = ["MAX_PHOTO_BYTES", "Photo", "PhotoStore", "sniff"]

MAX_PHOTO_BYTES = 15 * 1024 * 1024  # clinic default, review
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"


@dataclass(frozen=True)
class Photo:
    sha256: str
    media_type: str  # image/png or image/jpeg
    n_bytes: int

    @property
    def suffix(self) -> str:
        return ".png" if self.media_type == "image/png" else ".jpg"


def sniff(data: bytes, name: str = "the file") -> str:
    """The media type of a whole PNG or JPEG; raises IncidentInputError for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        if not data.endswith(_PNG_IEND):
            raise IncidentInputError(f"{name} starts as a PNG but has no end (truncated?)")
        return "image/png"
    if data.startswith(_JPEG_SOI):
        # Some cameras pad after EOI; look for it near the end.
        if _JPEG_EOI not in data[-1024:]:
            raise IncidentInputError(f"{name} starts as a JPEG but has no end (truncated?)")
        return "image/jpeg"
    raise IncidentInputError(f"{name} is not a PNG or JPEG image (judged by its bytes)")


class PhotoStore:
    """A folder of photos named by content hash."""

    def __init__(self, folder: str | Path, *, max_bytes: int = MAX_PHOTO_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    @classmethod
    def beside(cls, log_path: str | Path) -> PhotoStore:
        path = Path(log_path)
        return cls(path.with_name(path.name + ".photos"))

    def read_checked(self, source: str | Path) -> tuple[Photo, bytes]:
        """A photo file read and judged, nothing written; raises IncidentInputError."""
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise IncidentInputError(
                    f"{path} is {size / 1e6:.1f} MB, above the {self.max_bytes / 1e6:.0f} MB "
                    "limit for a photo"
                )
            with path.open("rb") as f:
                data = f.read(self.max_bytes + 1)
        except OSError as e:
            raise IncidentInputError(f"cannot read the photo {path}: {e.strerror or e}") from e
        if len(data) > self.max_bytes:  # grew while read
            raise IncidentInputError(f"{path} is above the {self.max_bytes} byte limit")
        if not data:
            raise IncidentInputError(f"{path} is empty, not a photo")
        media_type = sniff(data, str(path))
        return Photo(hashlib.sha256(data).hexdigest(), media_type, len(data)), data

    def path_of(self, photo: Photo) -> Path:
        return self.folder / f"{photo.sha256}{photo.suffix}"

    def put(self, photo: Photo, data: bytes) -> Path:
        """Write the photo whole under its hash (nothing to do if it is there already)."""
        target = self.path_of(photo)
        if target.is_file() and self.check(photo) is None:
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def check(self, photo: Photo) -> str | None:
        """What is wrong with the stored file of a recorded photo; None if it is intact."""
        path = self.path_of(photo)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return f"photo {photo.sha256[:12]} is missing from {self.folder}"
        except OSError as e:
            return f"photo {photo.sha256[:12]} cannot be read: {e.strerror or e}"
        if hashlib.sha256(data).hexdigest() != photo.sha256:
            return f"photo {photo.sha256[:12]} has changed: its bytes no longer match its hash"
        return None

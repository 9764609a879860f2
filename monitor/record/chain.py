"""The session log's record format: canonical JSON, the chain hash, telemetry digests, bounds.

The format is the same whichever store keeps the rows (``monitor.record.store``): a hash
is over canonical text and canonical bytes, never over how a database stores them.

Every event is hashed over its canonical JSON; every telemetry batch over its canonical
little-endian bytes (``TELEMETRY_FORMAT``). A payload is *bounded* before it is hashed: a
string longer than the limit keeps a prefix and says how long it was and what its SHA-256
was, so a device that answers a megabyte of garbage costs the record a few hundred bytes
and the evidence (which garbage, how much) is still there::

    "unexpected reply to 'STATUS?': 'k#Qz…… (1048590 bytes, sha256 5be1…)"

Lists keep their first ``MAX_LIST_ITEMS`` items and a marker, and a payload whose canonical
text is still longer than ``MAX_PAYLOAD_BYTES`` is replaced by a bounded summary of itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "GENESIS_HASH",
    "KIND_END",
    "KIND_INTERRUPTED",
    "KIND_RECORDS_START",
    "KIND_START",
    "KIND_TELEMETRY",
    "MAX_LIST_ITEMS",
    "MAX_PAYLOAD_BYTES",
    "RECORD_STREAM_PREFIX",
    "TELEMETRY_FORMAT",
    "bound_payload",
    "bound_text",
    "canonical_json",
    "event_hash",
    "telemetry_digest",
]

GENESIS_HASH = "0" * 64
# The structural kinds: a session is its start and its end; a batch event vouches for rows.
KIND_START = "session_start"
KIND_END = "session_end"
KIND_TELEMETRY = "telemetry_batch"
KIND_INTERRUPTED = "session_interrupted"
# Clinic records that outlive a session (incidents, follow-ups) are streams of their own in
# the same chain, named with this prefix; a session's id is a uuid4 hex, so none collides.
RECORD_STREAM_PREFIX = "record:"
# A records chain that is not a treatment session (a calibration run, an incident): it starts
# with this kind (payload: its ``chain``, e.g. "calibration") and ends with ``session_end``,
# in the one hash chain of the file (docs/record.md, "Records chains").
KIND_RECORDS_START = "records_start"
# Canonical telemetry bytes: t_s as <f8, channel as <i4, value as <f8, concatenated.
TELEMETRY_FORMAT = "t_s<f8,channel<i4,value<f8"
MAX_LIST_ITEMS = 1000
MAX_PAYLOAD_BYTES = 64 * 1024
_ELLIPSIS = "…"
_BOUNDED_SUFFIX = re.compile(r"… \(\d+ bytes, sha256 [0-9a-f]{64}\)\Z")
_SUFFIX_MAX_CHARS = 100


def _json_default(obj: object) -> object:
    # NumPy scalars turn up in payloads from the interlock; store them as plain numbers.
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def canonical_json(obj: object) -> str:
    """The one serialisation that hashes are computed over."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
    )


def event_hash(
    prev_hash: str, seq: int, session_id: str, t_wall: float, kind: str, payload: object
) -> str:
    record = {
        "seq": seq,
        "session_id": session_id,
        "t_wall": t_wall,
        "kind": kind,
        "payload": payload,
    }
    return hashlib.sha256((prev_hash + canonical_json(record)).encode("utf-8")).hexdigest()


def telemetry_digest(
    t_s: npt.NDArray[np.float64], channel: npt.NDArray[np.int32], value: npt.NDArray[np.float64]
) -> str:
    """sha256 of the canonical little-endian bytes; every NaN hashes as the one quiet NaN."""
    value_canon = np.where(np.isnan(value), np.nan, value)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(t_s, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(channel, dtype="<i4").tobytes())
    h.update(np.ascontiguousarray(value_canon, dtype="<f8").tobytes())
    return h.hexdigest()


def bound_text(text: str, max_chars: int) -> str:
    """``text`` if it is short enough, else its prefix, its size in bytes and its SHA-256.

    A string bounded once is left as it is (so bounding twice keeps the first hash, the one
    of the original): at most ``max_chars`` plus the suffix, it is bounded already.
    """
    if len(text) <= max_chars or (
        len(text) <= max_chars + _SUFFIX_MAX_CHARS and _BOUNDED_SUFFIX.search(text)
    ):
        return text
    # surrogatepass: a string decoded with errors="surrogateescape" still hashes.
    raw = text.encode("utf-8", "surrogatepass")
    return (
        f"{text[:max_chars]}{_ELLIPSIS} ({len(raw)} bytes, "
        f"sha256 {hashlib.sha256(raw).hexdigest()})"
    )


def _bound(obj: Any, max_chars: int) -> Any:
    if isinstance(obj, str):
        return bound_text(obj, max_chars)
    if isinstance(obj, dict):
        return {k: _bound(v, max_chars) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [_bound(v, max_chars) for v in obj[:MAX_LIST_ITEMS]]
        if len(obj) > MAX_LIST_ITEMS:
            items.append(f"{_ELLIPSIS} ({len(obj) - MAX_LIST_ITEMS} more items not recorded)")
        return items
    return obj


def bound_payload(payload: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """A copy of ``payload`` in which nothing is unbounded (the caller's dict is not changed).

    Raises ValueError (NaN, infinity) or TypeError (not JSON-serialisable) like
    ``canonical_json``.
    """
    bounded: dict[str, Any] = _bound(payload, max_chars)
    text = canonical_json(bounded)
    if len(text) <= MAX_PAYLOAD_BYTES:
        return bounded
    # Many bounded fields can still add up: keep a bounded summary of the whole.
    return {"payload_bounded": bound_text(text, max_chars)}

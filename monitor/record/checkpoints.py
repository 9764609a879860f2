"""Signed checkpoints of the chain head, kept outside the session log's file.

A hash chain shows any edit, insertion or deletion *inside* it, but not that its newest
events were cut off: a shorter chain is still a valid chain. So the head (seq, hash) is
written, signed with the bridge's Ed25519 key, to a checkpoint file beside (and best, not on
the same disk as) the log, at every session end and periodically during a session
(``anchor.HeadAnchor``). ``anchor.compare`` then tells a log that is behind its checkpoints.

The file is one JSON document, rewritten whole (temporary file, fsync, rename, fsync of the
folder), so a kill mid-write leaves the old document or the new one, never half of either::

    {"format": "laserguard-checkpoints/1",
     "entries": [{"n": 7, "chain": "<hash of seq 1>", "seq": 812, "hash": "...",
                  "t_wall": 1767000000.0, "why": "session_end", "sig": "<hex>"}, ...]}

Each entry is signed on its own (over the canonical JSON of every field but ``sig``); ``n``
counts the checkpoints ever written, so a removed entry in the middle shows. The newest
``MAX_ENTRIES`` are kept: enough to tell a rolled-back copy from a cut tail.

Keys: the private key is a PKCS#8 PEM file, mode 0600, made once at setup
(``laserguard keys init``); the public key is written in the setup profile as
``ed25519:<64 hex digits>`` (``device_profiles.schema.RecordAnchor``), so whoever checks a
log trusts the profile, never a key file lying beside the log.

What this cannot show on its own: someone who can replace *both* the log and the checkpoint
file with older copies of themselves. The fleet store (``monitor.fleet``) keeps each head off
the machine too.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from monitor.record.chain import canonical_json
from monitor.record.errors import SessionLogError

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_ENTRIES",
    "AnchorKey",
    "Checkpoint",
    "CheckpointFile",
    "CheckpointForged",
    "CheckpointUnreadable",
    "format_public_key",
    "load_private_key",
    "make_private_key",
    "parse_public_key",
]

CHECKPOINT_FORMAT = "laserguard-checkpoints/1"
MAX_ENTRIES = 256
# A checkpoint file of MAX_ENTRIES entries is ~80 KB; anything far larger is not one.
_MAX_FILE_BYTES = 1024 * 1024
_PUBLIC_PREFIX = "ed25519:"
_HEX = frozenset("0123456789abcdef")


class CheckpointUnreadable(SessionLogError):
    """The checkpoint file or key cannot be read or is not of the expected form."""


class CheckpointForged(SessionLogError):
    """A checkpoint that the anchor key did not sign (or entries missing between two)."""


@dataclass(frozen=True)
class Checkpoint:
    """One signed head: the chain it belongs to (its seq-1 hash), its seq and hash."""

    n: int
    chain: str
    seq: int
    hash: str
    t_wall: float
    why: str
    sig: str = ""

    def signed_text(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "sig"}
        return canonical_json(fields).encode("utf-8")


def format_public_key(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _PUBLIC_PREFIX + raw.hex()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """``ed25519:<64 hex digits>`` as written in a setup profile."""
    body = text.strip().lower().removeprefix(_PUBLIC_PREFIX)
    if not text.strip().lower().startswith(_PUBLIC_PREFIX) or len(body) != 64 or set(body) - _HEX:
        raise CheckpointUnreadable(
            f"anchor public key must be 'ed25519:' and 64 hex digits, not {text[:80]!r}"
        )
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(body))


def make_private_key(path: Path) -> Ed25519PublicKey:
    """A new key in a new file, mode 0600 from the start; refuses to replace one."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointUnreadable(
            f"{path} exists: a key is made once (remove it yourself to start a new anchor)"
        ) from None
    except OSError as e:
        raise CheckpointUnreadable(f"cannot create the key file {path}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key.public_key()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The key file made by ``make_private_key``; refused if others may read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes() if path.stat().st_size <= 16 * 1024 else b""
    except FileNotFoundError:
        raise CheckpointUnreadable(
            f"no anchor key at {path} (make one with `laserguard keys init`)"
        ) from None
    except OSError as e:
        raise CheckpointUnreadable(f"cannot read the anchor key {path}: {e.strerror}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CheckpointUnreadable(
            f"the anchor key {path} may be read by others (mode {stat.S_IMODE(mode):o}): "
            "chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CheckpointUnreadable(f"{path} is not an anchor key (PEM, Ed25519): {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointUnreadable(f"{path} is not an Ed25519 key")
    return key


class AnchorKey:
    """The public key that checks checkpoints, and the private key that signs them (if held)."""

    def __init__(self, public: Ed25519PublicKey, private: Ed25519PrivateKey | None = None) -> None:
        if private is not None and format_public_key(private.public_key()) != format_public_key(
            public
        ):
            raise CheckpointUnreadable(
                "the anchor key file does not belong to the public key in the setup profile"
            )
        self.public = public
        self._private = private

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def sign(self, cp: Checkpoint) -> Checkpoint:
        if self._private is None:
            raise SessionLogError("no private anchor key: checkpoints cannot be written")
        sig = self._private.sign(cp.signed_text()).hex()
        return Checkpoint(cp.n, cp.chain, cp.seq, cp.hash, cp.t_wall, cp.why, sig)

    def check(self, cp: Checkpoint) -> None:
        try:
            self.public.verify(bytes.fromhex(cp.sig), cp.signed_text())
        except (InvalidSignature, ValueError):
            raise CheckpointForged(
                f"checkpoint {cp.n} (head seq {cp.seq}) is not signed by the setup's anchor key:"
                " forged or made with another key"
            ) from None


def _entry(raw: Any, where: Path) -> Checkpoint:
    fields = ("n", "chain", "seq", "hash", "t_wall", "why", "sig")
    if not isinstance(raw, dict) or set(raw) != set(fields):
        raise CheckpointUnreadable(f"{where}: an entry is not a checkpoint")
    ok = (
        isinstance(raw["n"], int)
        and isinstance(raw["seq"], int)
        and raw["seq"] >= 0
        and isinstance(raw["t_wall"], int | float)
        and all(isinstance(raw[k], str) for k in ("chain", "hash", "why", "sig"))
    )
    if not ok:
        raise CheckpointUnreadable(f"{where}: an entry has fields of the wrong type")
    return Checkpoint(**{k: raw[k] for k in fields})


class CheckpointFile:
    """The checkpoint file: read and checked whole, rewritten whole."""

    def __init__(self, path: Path, key: AnchorKey) -> None:
        self.path = path
        self._key = key

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> list[Checkpoint]:
        """Every entry, oldest first, each signature checked; [] if there is no file."""
        try:
            with self.path.open("rb") as f:
                data = f.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise CheckpointUnreadable(f"cannot read {self.path}: {e.strerror}") from e
        if len(data) > _MAX_FILE_BYTES:
            raise CheckpointUnreadable(f"{self.path} is larger than any checkpoint file")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: "[[[…"
            raise CheckpointUnreadable(
                f"{self.path} is not a checkpoint file (truncated or not JSON: {e})"
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointUnreadable(f"{self.path} is not a {CHECKPOINT_FORMAT} file")
        raw = doc.get("entries")
        if not isinstance(raw, list):
            raise CheckpointUnreadable(f"{self.path}: no list of entries")
        entries = [_entry(e, self.path) for e in raw]
        for cp in entries:
            self._key.check(cp)
        for a, b in itertools.pairwise(entries):
            if b.n != a.n + 1:
                raise CheckpointForged(
                    f"{self.path}: checkpoints {a.n + 1}..{b.n - 1} are missing between two"
                    " signed ones"
                )
        return entries

    def append(self, cp: Checkpoint, entries: list[Checkpoint]) -> list[Checkpoint]:
        """Sign ``cp`` (numbered after ``entries``) and write the file; returns the new list."""
        n = entries[-1].n + 1 if entries else 1
        signed = self._key.sign(Checkpoint(n, cp.chain, cp.seq, cp.hash, cp.t_wall, cp.why))
        kept = [*entries, signed][-MAX_ENTRIES:]
        doc = {"format": CHECKPOINT_FORMAT, "entries": [asdict(e) for e in kept]}
        self._write(json.dumps(doc, indent=1).encode("utf-8"))
        return kept

    def _write(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise SessionLogError(
                f"cannot write the checkpoint file {self.path}: {e.strerror or e}"
            ) from e

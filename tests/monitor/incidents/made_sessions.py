"""Sessions written straight into a log through the record API, as a bridge would leave them:
no simulator, no real time. For incident, follow-up and report tests."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_bridge.live import Ch
from monitor.record.chain_log import ChainLog

DAY_S = 86400.0
T0 = 1_780_000_000.0  # 2026-05-28, a fixed "now" for tests


@dataclass
class Made:
    skin_type: str = "III"
    patient_id: str = "PAT-0001"
    operator: str = "nurse-a"
    mode: str = "clinical"
    table: str = "nd-yag-1064"
    fluence_j_cm2: float = 120.0
    trips: Sequence[tuple[str, float]] = ()  # (check, t_s)
    relative: Sequence[str] = ()
    t_wall: float = T0
    duration_s: float = 20.0
    clinic: dict[str, object] = field(
        default_factory=lambda: {
            "clinic": "Test Clinic",
            "emergency_contact": "Test Clinic, +44 20 0000 0000",
            "aftercare_instructions": "Cool compress if warm; SPF 50.",
        }
    )


def write_session(log: ChainLog, made: Made | None = None) -> str:
    m = made or Made()
    sid = log.start_session(
        operator=m.operator,
        patient_id=m.patient_id,
        skin_type=m.skin_type,
        profile_name="demo-ndyag-1064 v3",
        profile_digest="ab" * 32,
        mode=m.mode,
        meta={
            "limit_table": m.table,
            "limit_table_version": 1,
            "limit_table_digest": "cd" * 32,
            "skin_temp_band_c": [2.0, 44.0],
        },
        t_wall=m.t_wall,
    )
    t = m.t_wall
    log.append(
        sid,
        "risk_assessment",
        {
            "arming_allowed": True,
            "answers": {"anticoagulants": bool(m.relative)},
            "relative": list(m.relative),
            "absolute": [],
            "questions_version": 2,
            "source": "form",
            "reasons": [],
        },
        t + 0.1,
    )
    log.append(sid, "skin_typing", {"skin_type": m.skin_type, "method": "clinician"}, t + 0.1)
    log.append(sid, "patient_information", dict(m.clinic), t + 0.1)
    settings = {
        "fluence_j_cm2": m.fluence_j_cm2,
        "pulse_ms": 30.0,
        "spot_mm": 3.0,
        "rep_rate_hz": 1.0,
    }
    log.append(
        sid, "settings_applied", {"t_s": 1.0, "requested": settings, "confirmed": settings}, t + 1
    )
    log.append(sid, "armed", {"t_s": 1.5, "by": m.operator, "settings": settings}, t + 1.5)
    # A skin trace that climbs pulse by pulse; the plate warms.
    ts = np.arange(0.0, m.duration_s, 0.1)
    skin = 30.0 + 0.7 * ts + 2.0 * (np.mod(ts, 1.0) < 0.2)
    plate = 5.0 + 1.0 * ts
    n = len(ts)
    chans = np.concatenate(
        [np.full(n, int(Ch.SKIN_TEMP_C)), np.full(n, int(Ch.PLATE_TEMP_C))]
    ).astype(np.int32)
    log.append_telemetry(sid, np.concatenate([ts, ts]), chans, np.concatenate([skin, plate]), t + 2)
    fl = np.array([0.5], dtype=np.float64)
    log.append_telemetry(
        sid, fl, np.array([int(Ch.FLUENCE_J_CM2)], np.int32), np.array([m.fluence_j_cm2]), t + 2
    )
    for k in range(1, int(m.duration_s)):
        log.append(
            sid, "pulses", {"t_s": float(k), "n": 1, "total": k, "settings": settings}, t + k
        )
    for check, t_s in m.trips:
        log.append(
            sid,
            "trip",
            {"t_s": t_s, "check": check, "reason": f"{check} (made)", "severity": "HALT"},
            t + t_s,
        )
        log.append(
            sid, "acknowledged", {"t_s": t_s + 2, "by": m.operator, "reason": "cooled"}, t + t_s + 2
        )
    log.end_session(sid, "made for a test", t + m.duration_s)
    return sid


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A real, small PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xc0\x80\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_png(path: Path) -> Path:
    path.write_bytes(png_bytes())
    return path

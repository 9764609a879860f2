"""A session at a glance: skin and plate temperature over time, the limits, pulses, trips.

Plain SVG, written without a plotting library, so a report opens in any browser and the
file can be archived beside the session log. Channels stored on change (the cooling plate's
setpoint) are drawn as step series: each value holds until the next row, and the last one
for at most a keyframe period (``monitor.record.policy``).
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.record.channels import ChannelMap, channel_map_of
from monitor.record.session_info import SessionInfo
from monitor.record.verify import Event

W, H = 960, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 56, 64
MAX_POINTS = 2000
# By channel name: the codes are the session's own (its recorded channel map).
SERIES = (("skin_temp_c", "skin", "#c0392b"), ("plate_temp_c", "cooling plate", "#2471a3"))
STEPS = (("cooler_setpoint_c", "plate setpoint", "#2471a3"),)
DEFAULT_KEYFRAME_S = 1.0


def _thin(t: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    keep = np.isfinite(v)
    t, v = t[keep], v[keep]
    step = max(1, len(t) // MAX_POINTS)
    return t[::step], v[::step]


def step_series(
    t: npt.NDArray[np.float64], v: npt.NDArray[np.float64], hold_s: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Corner points of an on-change channel's step series; the last value holds ``hold_s``."""
    if len(t) == 0:
        return t, v
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    ends = np.append(t[1:], t[-1] + hold_s)
    return np.column_stack([t, ends]).ravel(), np.repeat(v, 2)


def render_svg(
    info: SessionInfo,
    events: list[Event],
    t_s: npt.NDArray[np.float64],
    channel: npt.NDArray[np.int32],
    value: npt.NDArray[np.float64],
    *,
    channels: ChannelMap | None = None,
) -> str:
    """The session as SVG; ``channels`` labels its codes (default: from its start record)."""
    start = next((e.payload for e in events if e.kind == "session_start"), {})
    cmap = channel_map_of(start) if channels is None else channels

    def rows(name: str) -> npt.NDArray[np.bool_]:
        code = cmap.code(name)
        return np.zeros(len(channel), bool) if code is None else channel == code

    band = (start.get("meta") or {}).get("skin_temp_band_c")
    policy = next((e.payload for e in events if e.kind == "telemetry_policy"), {})
    hold_s = float(policy.get("keyframe_s", DEFAULT_KEYFRAME_S))
    series = [(name, color, *_thin(t_s[rows(ch)], value[rows(ch)])) for ch, name, color in SERIES]
    steps = [
        (name, color, *step_series(t_s[rows(ch)], value[rows(ch)], hold_s))
        for ch, name, color in STEPS
    ]
    steps = [(name, color, ts, vs) for name, color, ts, vs in steps if np.isfinite(vs).all()]
    values = [v for *_, v in series + steps if len(v)]
    t_end = max(
        [float(t_s.max()) if len(t_s) else 1.0] + [float(e.payload.get("t_s", 0.0)) for e in events]
    )
    lo = (
        min([float(v.min()) for v in values] + ([float(band[0])] if band else []), default=0.0)
        - 2.0
    )
    hi = (
        max([float(v.max()) for v in values] + ([float(band[1])] if band else []), default=40.0)
        + 2.0
    )

    def x(t: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * t / max(t_end, 1e-9)

    def y(c: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (hi - c) / max(hi - lo, 1e-9)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">'
        f"Session {escape(info.session_id[:8])} · patient {escape(info.patient_id)} · "
        f"skin type {escape(info.skin_type)} · {escape(info.profile_name)} · {escape(info.mode)}</text>",
        f'<text x="{LEFT}" y="40" fill="#555">operator {escape(info.operator)}; '
        f"ended: {escape(info.end_reason or 'not ended')}"
        f"{'; channels: legacy map (none recorded)' if cmap.legacy else ''}</text>",
    ]
    # Axes and grid, with units.
    for k in range(6):
        c = lo + (hi - lo) * k / 5
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(c):.1f}" y2="{y(c):.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y(c) + 4:.1f}" text-anchor="end">{c:.0f}</text>')
        t = t_end * k / 5
        out.append(
            f'<text x="{x(t):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{t:.1f}</text>'
        )
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 22}" text-anchor="middle">session time (s)</text>'
    )
    out.append(
        f'<text x="16" y="{(TOP + H - BOTTOM) / 2}" transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2})" text-anchor="middle">temperature (°C)</text>'
    )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="none" stroke="#999"/>'
    )
    if band:
        for c, label in ((band[1], "skin limit"), (band[0], "skin low limit")):
            out.append(
                f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(c):.1f}" y2="{y(c):.1f}" stroke="#c0392b" stroke-dasharray="6 4"/>'
            )
            out.append(
                f'<text x="{LEFT + 4}" y="{y(c) - 4:.1f}" fill="#c0392b">{label} {c:g} °C</text>'
            )
    # Pulses as ticks along the bottom, trips and warnings as vertical lines.
    marks = 0
    for e in events:
        if e.payload.get("t_s") is None:
            continue
        t = float(e.payload["t_s"])
        if e.kind == "pulses":
            out.append(
                f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{H - BOTTOM}" y2="{H - BOTTOM - 8}" stroke="#7d3c98"/>'
            )
        elif e.kind in ("trip", "warning"):
            color = "#c0392b" if e.kind == "trip" else "#d68910"
            marks += 1
            label = escape(str(e.payload.get("check", e.kind)))
            out.append(
                f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="{color}" stroke-width="1.5"/>'
            )
            out.append(
                f'<text x="{x(t) + 4:.1f}" y="{TOP + 28 + 14 * (marks % 3)}" fill="{color}">'
                f"{label} at {t:.2f} s</text>"
            )
    for name, color, ts, vs in series:
        if len(vs) < 2:
            continue
        points = " ".join(
            f"{x(float(a)):.1f},{y(float(b)):.1f}" for a, b in zip(ts, vs, strict=True)
        )
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"><title>{name}</title></polyline>'
        )
    for name, color, ts, vs in steps:
        if len(vs) < 2:
            continue
        points = " ".join(
            f"{x(float(a)):.1f},{y(float(b)):.1f}" for a, b in zip(ts, vs, strict=True)
        )
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1"'
            f' stroke-dasharray="2 3"><title>{name} (stored on change)</title></polyline>'
        )
    legend = [(name, color) for name, color, *_ in series] + [("pulse", "#7d3c98")]
    for i, (name, color) in enumerate(legend):
        lx = LEFT + 10 + i * 150
        out.append(
            f'<line x1="{lx}" x2="{lx + 24}" y1="{H - 8}" y2="{H - 8}" stroke="{color}" stroke-width="3"/>'
        )
        out.append(f'<text x="{lx + 30}" y="{H - 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)

"""A certificate as a page: HTML with the delivered-against-set plot (SVG) and its JSON.

Plain HTML and SVG, written without a template engine or plotting library, so a certificate
opens in any browser and can be archived beside the log. Everything shown comes from the
run's verified records (``certificate.read_certificate``). The verdict is in words as well as
colour; a run against the simulator says so at the top.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from monitor.calibration.analysis import SENSOR_WORDS, Verdict
from monitor.calibration.certificate import Certificate

__all__ = ["render_html", "render_json", "render_svg"]

W, H = 720, 480
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 48, 64
SPOT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
VERDICT_COLOURS = {Verdict.PASS: "#1e7b34", Verdict.FAIL: "#b00020", Verdict.INCOMPLETE: "#8a6d00"}


def _fmt(x: object, spec: str = ".3g") -> str:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return format(x, spec)
    return "–"


def render_svg(cert: Certificate) -> str:
    """Delivered (each shot, and each point's mean) against set energy, with the band."""
    tol = cert.tolerance
    sets = [p.set_j for p in cert.points]
    shots = [r for p in cert.points for r in p.readings_j]
    top = max([*sets, *shots, 0.1]) * (1 + tol) * 1.05
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + pw * v / top

    def y(v: float) -> float:
        return TOP + ph * (1 - v / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="15" font-weight="bold">Delivered against set '
        f"energy, ±{tol:.0%} band</text>",
    ]
    # Everything plotted is clipped to the plot area (the band runs past its top).
    out.append(
        f'<clipPath id="plot-area"><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>'
        '</clipPath><g clip-path="url(#plot-area)">'
    )
    band = [(0.0, 0.0), (top, top * (1 + tol)), (top, top * (1 - tol))]
    pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in band)
    out.append(f'<polygon points="{pts}" fill="#2ca02c" fill-opacity="0.12" stroke="none"/>')
    for k in (1 - tol, 1 + tol):
        out.append(
            f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top):.1f}" y2="{y(top * k):.1f}" '
            'stroke="#2ca02c" stroke-dasharray="4 3"/>'
        )
    out.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top):.1f}" y2="{y(top):.1f}" '
        'stroke="#555" stroke-width="1"/>'
    )
    spots = sorted({p.spot_mm for p in cert.points})
    colour = {s: SPOT_COLOURS[i % len(SPOT_COLOURS)] for i, s in enumerate(spots)}
    for p in cert.points:
        c = colour[p.spot_mm]
        for r in p.readings_j:
            out.append(
                f'<circle cx="{x(p.set_j):.1f}" cy="{y(r):.1f}" r="2.5" fill="{c}" '
                'fill-opacity="0.45"/>'
            )
        if p.over_range:
            out.append(
                f'<text x="{x(p.set_j):.1f}" y="{TOP + 14}" text-anchor="middle" fill="#b00020"'
                ' font-weight="bold">OVER</text>'
            )
        elif p.readings_j:
            mark = "#b00020" if not p.within(cert.tolerance) else c
            out.append(
                f'<rect x="{x(p.set_j) - 5:.1f}" y="{y(p.mean_j) - 5:.1f}" width="10" '
                f'height="10" fill="none" stroke="{mark}" stroke-width="2"/>'
            )
    fit = (cert.result or {}).get("energy", {}).get("fit")
    if isinstance(fit, dict):
        a, b = float(fit["slope"]), float(fit["offset_j"])
        out.append(
            f'<line x1="{x(0):.1f}" y1="{y(b):.1f}" x2="{x(top):.1f}" y2="{y(a * top + b):.1f}"'
            ' stroke="#000" stroke-dasharray="8 4" stroke-width="1.2"/>'
        )
    out.append("</g>")
    # Axes, ticks and their numbers: outside the clip, as they lie outside the plot area.
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    step = _nice_step(top)
    v = 0.0
    while v <= top + 1e-9:
        out.append(
            f'<line x1="{x(v):.1f}" y1="{TOP + ph}" x2="{x(v):.1f}" y2="{TOP + ph + 5}" '
            'stroke="#333"/>'
            f'<text x="{x(v):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{v:g}</text>'
            f'<line x1="{LEFT - 5}" y1="{y(v):.1f}" x2="{LEFT}" y2="{y(v):.1f}" stroke="#333"/>'
            f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
        v += step
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 20}" text-anchor="middle">set energy (J)</text>'
        f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + ph / 2})">delivered energy, meter reading (J)</text>'
    )
    # Legend.
    ly = TOP + 14
    items = [(f"{s:g} mm spot: shots (dots), means (squares)", colour[s]) for s in spots]
    items += [(f"±{tol:.0%} band", "#2ca02c"), ("delivered = set", "#555")]
    if isinstance(fit, dict):
        items.append(
            (
                f"fit: slope {_fmt(fit['slope'], '.4f')}, offset {_fmt(fit['offset_j'], '+.4f')} J,"
                f" R² {_fmt(fit['r2'], '.4f')}",
                "#000",
            )
        )
    for text, c in items:
        out.append(
            f'<rect x="{LEFT + 10}" y="{ly - 9}" width="10" height="10" fill="{c}"/>'
            f'<text x="{LEFT + 26}" y="{ly}">{escape(text)}</text>'
        )
        ly += 16
    out.append("</svg>")
    return "\n".join(out)


def _nice_step(top: float) -> float:
    raw = top / 6
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def _row(*cells: object, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def render_html(cert: Certificate) -> str:
    """The certificate as one self-contained HTML page."""
    pre = cert.preconditions or {}
    meter = pre.get("meter") or {}
    head = pre.get("head") or {}
    wl = pre.get("wavelength_nm") or {}
    laser = cert.laser
    policy = cert.policy
    verdict_colour = VERDICT_COLOURS[cert.verdict]
    title = "Daily output check" if cert.check == "daily" else "Laser output calibration"
    info = [
        ("Performed by", cert.who),
        ("Performed at", cert.performed_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("Laser", f"{laser.get('model', '')} ({laser.get('laser_id', '')}), "
                  f"{_fmt(laser.get('wavelength_nm'), 'g')} nm"),
        ("Laser identifies as", cert.laser_identity or "– (no identify command)"),
        ("Setup", f"{laser.get('setup', '')}, digest {str(laser.get('setup_digest', ''))[:16]}…"),
        ("Energy meter", f"{meter.get('model', '–')}, serial {meter.get('serial') or '–'}, "
                         f"firmware {meter.get('firmware') or '–'} ({pre.get('description', '–')})"),
        ("Meter head", f"{head.get('type', '–')}, serial {head.get('serial') or '–'}"),
        ("Head calibrated", f"{pre.get('head_calibrated', '–')} "
                            f"({pre.get('head_calibrated_source', '–')}), due {pre.get('head_due', '–')}"),
        ("Wavelength on the meter", f"set {_fmt(wl.get('set'), 'g')} nm, read back "
                                    f"{_fmt(wl.get('read_back'), 'g')} nm"),
        ("Spot sizes", ", ".join(f"{_fmt(s, 'g')} mm" for s in sorted({p.spot_mm for p in cert.points})) or "–"),
        ("Tolerance", f"±{cert.tolerance:.0%} ({policy.get('tolerance_source', '')})"),
        ("Interval", f"{policy.get('interval_days', '–')} days ({policy.get('interval_source', '')})"),
        ("Next due", "–" if cert.next_due is None else cert.next_due.isoformat()),
    ]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)} {escape(cert.record_id[:8])}</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:980px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0 16px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
        "th{background:#f2f2f2}.verdict{color:white;padding:10px 14px;font-size:18px;"
        "font-weight:bold}.sim{background:#333;color:#fff;padding:6px 14px}"
        ".note{color:#555;font-size:12px}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if cert.simulated:
        parts.append(
            '<div class="sim">SIMULATED: measured on the LaserGuard simulator, not on a real '
            "laser. Not valid for treatment.</div>"
        )
    parts.append(
        f'<div class="verdict" style="background:{verdict_colour}">'
        f"{escape(cert.verdict.value.upper())}: {escape(cert.reason)}</div>"
    )
    parts.append("<h2>Identities</h2><table>")
    parts += [_row(k, v) for k, v in info]
    parts.append("</table>")
    if cert.points:
        parts.append(f"<h2>Energy</h2>{render_svg(cert)}")
        parts.append("<table>")
        parts.append(
            _row(
                "spot",
                "set energy",
                "fluence",
                "shots (J)",
                "mean",
                "SD",
                "deviation",
                "verdict",
                head=True,
            )
        )
        for p in cert.points:
            verdict = "over-range" if p.over_range else (
                "within" if p.within(cert.tolerance) else "BEYOND")  # fmt: skip
            parts.append(
                _row(
                    f"{p.spot_mm:g} mm",
                    f"{p.set_j:.4g} J",
                    f"{p.fluence_j_cm2:g} J/cm²",
                    ", ".join(f"{r:.4g}" for r in p.readings_j) or "–",
                    f"{_fmt(p.mean_j, '.4g')} J",
                    f"{_fmt(p.sd_j, '.2g')} J",
                    "–" if p.over_range else f"{p.deviation:+.1%}",
                    verdict,
                )
            )
        parts.append("</table>")
        fit = (cert.result or {}).get("energy", {}).get("fit")
        if isinstance(fit, dict):
            parts.append(
                f"<p>Linear fit of delivered against set energy over {fit['n']} shots: slope "
                f"{_fmt(fit['slope'], '.4f')}, offset {_fmt(fit['offset_j'], '+.4f')} J, "
                f"R² {_fmt(fit['r2'], '.4f')}.</p>"
            )
    if cert.references:
        parts.append("<h2>Thermometers against a reference</h2><table>")
        parts.append(_row("sensor", "reference", "reading (mean)", "offset", "verdict", head=True))
        for r in cert.references:
            tol = _reference_tolerance(policy, r.sensor)
            side = "reads LOW" if r.reads_low else "reads high"
            ok = "within" if r.within(tol) else "BEYOND"
            parts.append(
                _row(
                    SENSOR_WORDS.get(r.sensor, r.sensor),
                    f"{r.reference_c:.2f} °C",
                    f"{r.mean_c:.2f} °C ({len(r.readings_c)} readings)",
                    f"{r.offset_c:+.2f} °C, {side}",
                    f"{ok} ±{tol:g} °C",
                )
            )
        parts.append("</table>")
        parts.append(
            '<p class="note">A sensor that reads low is the dangerous direction: the skin or '
            "plate is hotter than shown, and an upper limit trips late.</p>"
        )
    notes = [
        ("Refused", cert.refused),
        ("Stopped early", cert.aborted),
        ("Interrupted", cert.interrupted),
        ("Laser left in", cert.standby),
    ]
    shown = [(k, v) for k, v in notes if v]
    if shown:
        parts.append("<h2>Notes</h2><table>")
        parts += [_row(k, v) for k, v in shown]
        parts.append("</table>")
    parts.append(
        f'<p class="note">Record {escape(cert.record_id)} in the LaserGuard session log, '
        "hash-chained with every session: check it with <code>laserguard sessions verify"
        "</code>.</p></body></html>"
    )
    return "\n".join(parts)


def _reference_tolerance(policy: dict[str, Any], sensor: str) -> float:
    block = policy.get(sensor)
    if isinstance(block, dict) and isinstance(block.get("tolerance_c"), int | float):
        return float(block["tolerance_c"])
    return math.nan


def render_json(cert: Certificate) -> str:
    return json.dumps(cert.as_record(), indent=2, allow_nan=False)

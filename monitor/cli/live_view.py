"""A live terminal view of a session: state, settings, skin temperature, alarms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from monitor.core.checks import Severity
from monitor.core.dose_meter import ThermalDose
from monitor.core.records import State

if TYPE_CHECKING:
    from monitor.core.session import Session

STATE_STYLE: dict[State, str] = {
    State.READY: "bold green",
    State.STANDBY: "bold yellow",
    State.HALTED: "bold white on red",
    State.CONNECTING: "cyan",
    State.FAILED: "bold white on red",
    State.ENDED: "dim",
}
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], lo: float, hi: float) -> str:
    """One block per value on the scale ``lo``..``hi``; values beyond it show at its ends.

    Total over any input: a reversed or empty scale, NaN or infinite values never raise (a
    view that raises cannot show the alarm it was meant to show). NaN shows as a gap.
    """
    if not values:
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    span = max(hi - lo, 1e-9)
    top = len(SPARK) - 1
    out = []
    for v in values:
        if v != v:  # NaN: no reading to draw
            out.append(" ")
            continue
        k = int((min(max(v, lo), hi) - lo) / span * top)
        out.append(SPARK[min(max(k, 0), top)])
    return "".join(out)


def skin_scale(readings: list[float], limit_c: float) -> tuple[float, float]:
    """The chart's scale: from 1 °C below the coolest reading (or the limit) to 1 °C above it.

    The top is tied to the limit, so the limit is always on the chart; readings above the top
    (a real overheating, a stuck-hot sensor, a 0x7FFF sentinel) show as full blocks.
    """
    finite = [x for x in readings if math.isfinite(x)]
    floor = min(min(finite, default=limit_c), limit_c) - 1.0
    return floor, limit_c + 1.0


def dose_line(dose: ThermalDose | None) -> Text:
    """The live thermal dose in one line: the current area against its levels, the session.

    A lower bound (an unknown sample or a gap) shows ``≥``; total over any figures.
    """
    if dose is None:
        return Text("thermal dose —")
    cur, ses = dose.current, dose.session

    def cem(f: float, complete: bool) -> str:
        return ("" if complete else "≥") + ("inf" if f == float("inf") else f"{f:.3g}")

    limit = "none" if dose.cem43_halt_min is None else f"{dose.cem43_halt_min:g}"
    over_warn = cur.cem43_min >= dose.cem43_warn_min
    over_halt = dose.cem43_halt_min is not None and cur.cem43_min >= dose.cem43_halt_min
    style = "bold white on red" if over_halt else "bold yellow" if over_warn else ""
    return Text(
        f"thermal dose, area {cur.area}: {cem(cur.cem43_min, cur.complete)} CEM43 "
        f"(warn {dose.cem43_warn_min:g}, limit {limit}), Ω≈{cur.omega:.2g} from the surface; "
        f"session {cem(ses.cem43_min, ses.complete)} CEM43",
        style=style,
    )


class LiveView:
    def __init__(self, title: str, duration_s: float | None) -> None:
        self.title = title
        self.duration_s = duration_s
        self._live = Live(Text("connecting…"), refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def update(self, session: Session, t_s: float) -> None:
        try:
            panel = self.render(session, t_s)
        except Exception:
            # Still show what matters, then let the caller's guard log the failure.
            self._live.update(self.fallback(session))
            raise
        self._live.update(panel)

    @staticmethod
    def fallback(session: Session) -> Text:
        """The state and the alarms in plain words, from as little as possible."""
        trips = ", ".join(t.check for t in session.trips[-6:]) or "none"
        return Text(
            f"LaserGuard {session.state}: the live view failed (in the session log). "
            f"Trips: {trips}. Ctrl-C ends the session.",
            style="bold white on red" if session.trips else "bold",
        )

    def render(self, session: Session, t_s: float) -> Panel:
        s = session.snapshot()
        lo, hi = s.skin_temp_band_c
        state = Text(str(s.state), style=STATE_STYLE.get(s.state, ""))
        head = Table.grid(padding=(0, 2))
        head.add_row(
            "LaserGuard",
            state,
            f"laser {s.laser_state}",
            f"skin type {s.skin_type.value}",
            f"relay {'CLOSED (permit)' if s.permit else 'OPEN'}",
        )
        vals = Table(show_header=True, header_style="bold", box=None)
        dual = s.links.get("sensor2") is not None
        for col in (
            *(["skin °C", "skin 2 °C"] if dual else ["skin °C"]),
            "plate °C",
            "flow L/min",
            "fluence J/cm²",
            "pulse ms",
            "spot mm",
            "rate Hz",
            "pulses",
        ):
            vals.add_column(col, justify="right")
        st = s.settings

        def f(x: float | None, fmt: str = "{:.2f}") -> str:
            return "—" if x is None else fmt.format(x)

        skin = s.skin_temp_c
        skin_cells = [f(s.skin_temp_2_c)] if dual else []
        skin_txt = Text(
            f(skin), style="bold red" if skin is not None and not lo <= skin <= hi else "bold"
        )
        vals.add_row(
            skin_txt,
            *skin_cells,
            f(s.plate_temp_c),
            f(s.flow_l_min),
            f(st.fluence_j_cm2, "{:.1f}"),
            f(st.pulse_ms, "{:.1f}"),
            f(st.spot_mm, "{:.1f}"),
            f(st.rep_rate_hz),
            f(s.pulses, "{:.0f}"),
        )
        _, recent = session.loop.recent_skin(10.0)
        recent = recent[:: max(1, len(recent) // 60)]
        finite = [float(x) for x in recent if x == x]
        floor, top = skin_scale(finite, hi)
        spark = sparkline(finite, floor, top)
        above = " ▲ above scale" if any(x > top for x in finite) else ""
        chart = Text(
            f"skin, last 10 s  {spark}  {floor:.0f}–{top:.0f} °C scale, limit {hi:g} °C{above}"
        )
        alarms = Table(show_header=True, header_style="bold", box=None)
        alarms.add_column("t s", justify="right")
        alarms.add_column("alarm")
        alarms.add_column("reason")
        for tr in (s.trips + s.warnings)[-6:]:
            style = "red" if tr.severity is Severity.HALT else "yellow"
            alarms.add_row(f"{tr.t_s:.2f}", Text(tr.check, style=style), tr.reason)
        hint = Text("")
        if s.state is State.HALTED:
            hint = Text(
                "HALT LATCHED: the laser stays stopped until a person acknowledges it with a "
                "reason, once the cause has cleared",
                style="bold red",
            )
        if "laser_did_not_stop" in s.active_conditions:
            hint = Text(
                "*** THE LASER DID NOT STOP: the relay is the only barrier, use the emergency "
                "stop. Latched until reset by name (laser_did_not_stop) with the laser in STANDBY",
                style="bold white on red",
            )
        if s.pulses_out_of_limits:
            hint.append(
                f"\n*** {s.pulses_out_of_limits} pulse(s) fired at settings outside the "
                "approved limits (pulse_out_of_limits in the session log)",
                style="bold red",
            )
        if s.calibration_note:
            hint.append(f"\n** calibration: {s.calibration_note}", style="bold yellow")
        links = "  ".join(f"{k} {'ok' if ok else 'LOST'}" for k, ok in s.links.items())
        progress = f"{t_s:6.1f} s" + (f" / {self.duration_s:g} s" if self.duration_s else "")
        dose = dose_line(s.thermal_dose)
        body = Group(
            head, Text(""), vals, Text(""), chart, dose, Text(f"links: {links}"), hint, alarms
        )
        return Panel(
            body,
            title=f"{self.title} · session {s.session_id[:8]} · {progress}",
            subtitle="Ctrl-C ends the session",
        )

"""A live terminal view of a session: state, settings, skin temperature, alarms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from monitor.session import Session

STATE_STYLE = {
    "READY": "bold green",
    "STANDBY": "bold yellow",
    "HALTED": "bold white on red",
    "CONNECTING": "cyan",
    "FAILED": "bold white on red",
    "ENDED": "dim",
}
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], lo: float, hi: float) -> str:
    if not values:
        return ""
    span = max(hi - lo, 1e-9)
    out = []
    for v in values:
        k = int((min(max(v, lo), hi) - lo) / span * (len(SPARK) - 1))
        out.append(SPARK[k])
    return "".join(out)


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
        self._live.update(self.render(session, t_s))

    def render(self, session: Session, t_s: float) -> Panel:
        s = session.snapshot()
        lo, hi = s["limits"]["skin_temp_c"]
        state = Text(s["state"], style=STATE_STYLE.get(s["state"], ""))
        head = Table.grid(padding=(0, 2))
        head.add_row(
            "LaserGuard",
            state,
            f"laser {s['laser_state']}",
            f"skin type {s['skin_type']}",
            f"relay {'CLOSED (permit)' if s['permit'] else 'OPEN'}",
        )
        vals = Table(show_header=True, header_style="bold", box=None)
        for col in (
            "skin °C",
            "plate °C",
            "flow L/min",
            "fluence J/cm²",
            "pulse ms",
            "spot mm",
            "rate Hz",
            "pulses",
        ):
            vals.add_column(col, justify="right")
        st = s["settings"]

        def f(x: float | None, fmt: str = "{:.2f}") -> str:
            return "—" if x is None else fmt.format(x)

        skin = s["skin_temp_c"]
        skin_txt = Text(
            f(skin), style="bold red" if skin is not None and not lo <= skin <= hi else "bold"
        )
        vals.add_row(
            skin_txt,
            f(s["plate_temp_c"]),
            f(s["flow_l_min"]),
            f(st["fluence_j_cm2"], "{:.1f}"),
            f(st["pulse_ms"], "{:.1f}"),
            f(st["spot_mm"], "{:.1f}"),
            f(st["rep_rate_hz"]),
            f(s["pulses"], "{:.0f}"),
        )
        _, recent = session.loop.recent_skin(10.0)
        recent = recent[:: max(1, len(recent) // 60)]
        finite = [float(x) for x in recent if x == x]
        floor = min(finite, default=lo) - 1.0
        spark = sparkline(finite, floor, hi + 1.0)
        chart = Text(
            f"skin, last 10 s  {spark}  {floor:.0f}–{hi + 1:.0f} °C scale, limit {hi:g} °C"
        )
        alarms = Table(show_header=True, header_style="bold", box=None)
        alarms.add_column("t s", justify="right")
        alarms.add_column("alarm")
        alarms.add_column("reason")
        for tr in (s["trips"] + s["warnings"])[-6:]:
            style = "red" if tr["severity"] == "HALT" else "yellow"
            alarms.add_row(f"{tr['t_s']:.2f}", Text(tr["check"], style=style), tr["reason"])
        hint = Text("")
        if s["state"] == "HALTED":
            hint = Text(
                "HALT LATCHED: the laser stays stopped until a person acknowledges it with a "
                "reason, once the cause has cleared",
                style="bold red",
            )
        links = "  ".join(f"{k} {'ok' if ok else 'LOST'}" for k, ok in s["links"].items())
        progress = f"{t_s:6.1f} s" + (f" / {self.duration_s:g} s" if self.duration_s else "")
        body = Group(head, Text(""), vals, Text(""), chart, Text(f"links: {links}"), hint, alarms)
        return Panel(
            body,
            title=f"{self.title} · session {s['session_id'][:8]} · {progress}",
            subtitle="Ctrl-C ends the session",
        )

"""A live terminal view of a session: state, settings, skin temperature, alarms.

The view is drawn by a process of its own (``LiveViewProcess``): laying out a rich panel four
times a second is Python work, and in the safety process it held the GIL the interlock loop
waits for (in ``laserguard bench --long`` its frames overlapped 40 % of the loop's late
cycles, more than any other work the bench times: ``docs/performance.md``). The
safety process only takes a ``ViewFrame`` (the session's snapshot and the last 10 s of skin
temperature) and hands it over a pipe; a view that dies or stops drawing is a view failure
(``ViewGuard``: logged, and a halt while the laser may emit, because nobody sees the alarms).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from monitor.cli.view_guard import describe
from monitor.core.checks import Severity
from monitor.core.dose_meter import ThermalDose
from monitor.core.records import State
from monitor.core.snapshot import Snapshot

if TYPE_CHECKING:
    from monitor.core.session import Session

#: What the drawing process answers, each as (kind, text).
READY, DRAWN, FAILED = "ready", "drawn", "failed"
#: Points of the skin chart: the last 10 s, thinned to about this many.
CHART_POINTS = 60
#: A view process that has drawn nothing for this long, with a frame waiting, has stalled.
STALL_S = 5.0
#: A view process not ready to draw this long after it was started did not start (its
#: imports take about a second on an idle machine, several on a loaded one).
START_S = 30.0

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


@dataclass(frozen=True)
class ViewFrame:
    """What one drawing of the view needs, taken from the session in the safety process."""

    snapshot: Snapshot
    recent_skin_c: tuple[float, ...]  # the last 10 s, oldest first, thinned for the chart
    t_s: float


def frame_of(session: Session, t_s: float) -> ViewFrame:
    snap = session.snapshot()
    _, recent = session.loop.recent_skin(10.0)
    recent = recent[:: max(1, len(recent) // CHART_POINTS)]
    return ViewFrame(snap, tuple(float(x) for x in recent), t_s)


class LiveView:
    """The view drawn in the calling process (``LiveViewProcess`` draws it in its own)."""

    def __init__(
        self, title: str, duration_s: float | None, *, console: Console | None = None
    ) -> None:
        self.title = title
        self.duration_s = duration_s
        self._live = Live(
            Text("connecting…"), refresh_per_second=4, transient=False, console=console
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)
        console = self._live.console
        if not console.is_terminal:
            # On a terminal rich ends the last frame's line; into a pipe or a file it does
            # not, and whatever is printed next (the report) would join the panel's border.
            console.line()

    def update(self, session: Session, t_s: float) -> None:
        try:
            frame = frame_of(session, t_s)
        except Exception:
            self._live.update(fallback_text(session.state, [t.check for t in session.trips]))
            raise
        self.show(frame)

    def show(self, frame: ViewFrame) -> None:
        try:
            panel = self.render(frame)
        except Exception:
            # Still show what matters, then let the caller's guard log the failure.
            self._live.update(self.fallback(frame.snapshot))
            raise
        self._live.update(panel)

    @staticmethod
    def fallback(s: Snapshot) -> Text:
        """The state and the alarms in plain words, from as little as possible."""
        return fallback_text(s.state, [t.check for t in s.trips])

    def render(self, frame: ViewFrame) -> Panel:
        s, t_s = frame.snapshot, frame.t_s
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
        finite = [x for x in frame.recent_skin_c if x == x]
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


def fallback_text(state: State, trips: list[str]) -> Text:
    """The state and the last trips in plain words: what a failed view still shows."""
    named = ", ".join(trips[-6:]) or "none"
    return Text(
        f"LaserGuard {state}: the live view failed (in the session log). "
        f"Trips: {named}. Ctrl-C ends the session.",
        style="bold white on red" if trips else "bold",
    )


class LiveViewProcess:
    """The live view drawn by a process of its own, beside the session's.

    ``update`` (on the caller's thread, four times a second) takes a ``ViewFrame`` and sends
    it once the drawing process said it is ready; at most one frame is in flight, so a slow
    drawing skips frames and never blocks the caller. It raises, for the caller's
    ``ViewGuard`` to log, when the view failed: its drawing raised (the message comes back
    over the pipe), its process ended, it was not ready within ``START_S``, or it drew
    nothing for ``stall_s`` with a frame waiting. The first time, the state and the trips are
    also written to stderr in plain words, as the view in the session's process showed them.
    The drawing process ignores Ctrl-C (it reaches the whole terminal): the session's process
    ends the session, then the view. It ends by itself if the session's process dies.
    """

    def __init__(
        self,
        title: str,
        duration_s: float | None,
        *,
        stall_s: float = STALL_S,
        discard: bool = False,
    ) -> None:
        self.title = title
        self.duration_s = duration_s
        self.stall_s = stall_s
        self.discard = discard  # draw to nowhere (a benchmark weighing the view's cost)
        self.frames = 0  # drawn, as the drawing process answered
        self._conn: Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._sent_at: float | None = None  # the frame in flight, when it was sent
        self._started_at = 0.0
        self._ready = False  # the drawing process said it is ready to draw
        self._told = False

    def __enter__(self) -> LiveViewProcess:
        ctx = multiprocessing.get_context("spawn")  # never fork a process with live threads
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_draw, args=(theirs, self.title, self.duration_s, self.discard),
            name="laserguard-view", daemon=True,
        )  # fmt: skip
        proc.start()
        theirs.close()
        self._conn, self._proc = ours, proc
        self._started_at = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        conn, proc = self._conn, self._proc
        if conn is None or proc is None:
            return
        with contextlib.suppress(OSError):
            conn.send(None)  # draw no more; the last frame stays on the terminal
        proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        conn.close()
        self._conn = self._proc = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def update(self, session: Session, t_s: float) -> None:
        conn, proc = self._conn, self._proc
        if conn is None or proc is None:
            raise RuntimeError("the live view's process was not started")
        try:
            self._answers(conn)
            if not proc.is_alive():
                raise RuntimeError(f"the live view's process ended (exit code {proc.exitcode})")
            if not self._ready:
                waited = time.monotonic() - self._started_at
                if waited > START_S:
                    raise RuntimeError(
                        f"the live view's process did not start within {START_S:g} s"
                    )
                return  # still starting: nothing to draw on yet
            if self._sent_at is not None:
                waited = time.monotonic() - self._sent_at
                if waited > self.stall_s:
                    raise RuntimeError(
                        f"the live view has drawn nothing for {waited:.1f} s (its process "
                        "is stalled)"
                    )
                return  # still drawing the last frame: this one is skipped
            try:
                conn.send(frame_of(session, t_s))
            except OSError as e:
                raise RuntimeError(f"the live view's process is gone ({e})") from e
            self._sent_at = time.monotonic()
        except Exception:  # a failed view (or a frame that could not be taken)
            if not self._told:
                self._told = True
                trips = [t.check for t in session.trips]
                print(fallback_text(session.state, trips).plain, file=sys.stderr, flush=True)
            raise

    def _answers(self, conn: Connection) -> None:
        """Read what the drawing process answered: ready, a frame drawn, or why it failed."""
        while conn.poll(0):
            try:
                kind, text = conn.recv()
            except (EOFError, OSError):
                return  # it ended: ``update`` says so from its exit code
            if kind == READY:
                self._ready = True
                continue
            self._sent_at = None
            if kind == FAILED:
                raise RuntimeError(str(text))
            self.frames += 1


def _draw(conn: Connection, title: str, duration_s: float | None, discard: bool) -> None:
    """The drawing process: a frame in, the panel drawn, an answer out, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the session's to handle
    with contextlib.ExitStack() as stack:
        console = None
        if discard:
            sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
            console = Console(file=sink, width=100, force_terminal=True)
        view = stack.enter_context(LiveView(title, duration_s, console=console))
        with contextlib.suppress(OSError):
            conn.send((READY, ""))
        _serve_frames(conn, view)


def _serve_frames(conn: Connection, view: LiveView) -> None:
    """Draw each frame that comes in and answer it, until told to stop or orphaned."""
    while True:
        try:
            frame = conn.recv()
        except (EOFError, OSError):
            return  # the session's process is gone
        if frame is None:
            return
        answer = (DRAWN, "")
        try:
            view.show(frame)
        except Exception as e:  # a drawing that fails: the session's process logs it
            answer = (FAILED, describe(e))
        try:
            conn.send(answer)
        except OSError:
            return  # the session's process is gone

"""Every interlock check, evaluated for all channels at once into one boolean vector.

Each check lives here once. ``CHECKS`` declares them (name, severity, words); a check's slot
in ``active`` is wherever ``CHECKS`` puts it, and nothing depends on that order: the engine
builds its index maps from the names once, when it starts, and refuses to start when a
declared check is not wired to an evaluation or a wired one is not declared. Three kinds of
wiring, all by name:

- band checks as data (``band_slots``): check name, channel, low, high, hysteresis;
- per-device checks from the device names: ``<device>_stale`` and ``<device>_link``;
- the other checks (``_COMPUTED``), each written by name in ``evaluate``.

``CheckEngine.evaluate`` is the hot path: it reads the live arrays into preallocated buffers
and writes ``active`` in place, without allocating. Words for people (``reason``) are made
only when a check becomes active, after the halt is sent.

Severity: HALT checks stop emission and latch; WARN checks block arming and are shown;
NOTICE checks are shown and logged and block nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from device_profiles.clinical import SKIN_FREEZES_C, SKIN_LOW_BY_COOLING, TreatmentSite
from device_profiles.laser_state import CAN_EMIT, LaserState
from device_profiles.schema import Limits, Setup, SkinType
from device_profiles.timing import LiveBudget, reaction_budget
from firmware_bridge.live import (
    ANSWER_WINDOW,
    SETTING_CHANNELS,
    Ch,
    Dev,
    LiveState,
)
from monitor.core.dose_meter import DoseMeter
from monitor.core.gate import LimitTable
from monitor.core.skin_checks import FreezeTimer, PulseBaseline
from monitor.core.skin_sensors import SkinSensors
from monitor.core.treatment import DEMO_SITE


class Severity(IntEnum):
    NOTICE = 0  # low priority: shown and logged; blocks nothing
    WARN = 1
    HALT = 2


@dataclass(frozen=True)
class CheckSpec:
    name: str
    severity: Severity
    what: str


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("skin_temp_high", Severity.HALT, "skin temperature above its hard ceiling"),
    CheckSpec("skin_temp_low", Severity.HALT, "skin temperature below its band"),
    CheckSpec(
        "skin_baseline_high",
        Severity.HALT,
        "skin too warm before the next pulse: heat is building up or the cooling is lost",
    ),
    CheckSpec("skin_frozen", Severity.HALT, "skin below freezing longer than the cooling allows"),
    CheckSpec(
        "cooler_plate_high",
        Severity.HALT,
        "cooling plate above its treatment band while the settings require cooling",
    ),
    CheckSpec("skin_temp_invalid", Severity.HALT, "skin temperature is not a number"),
    CheckSpec("sensor_stale", Severity.HALT, "no fresh skin-temperature sample"),
    CheckSpec("cooler_stale", Severity.HALT, "no fresh cooler sample"),
    CheckSpec("laser_stale", Severity.HALT, "no fresh laser status"),
    CheckSpec("sensor_link", Severity.HALT, "lost communication with the sensor"),
    CheckSpec("cooler_link", Severity.HALT, "lost communication with the cooler"),
    CheckSpec("laser_link", Severity.HALT, "lost communication with the laser"),
    CheckSpec("interlock_link", Severity.HALT, "lost communication with the interlock relay"),
    CheckSpec("device_fault", Severity.HALT, "a device reports a fault code"),
    CheckSpec("cooler_plate_trip", Severity.HALT, "cooling plate outside its safe band"),
    CheckSpec("cooler_flow_low", Severity.HALT, "coolant flow below its minimum"),
    CheckSpec(
        "settings_readback", Severity.HALT, "settings read back from the laser out of limits"
    ),
    CheckSpec("laser_fault", Severity.HALT, "the laser reports FAULT"),
    CheckSpec("unexpected_emission", Severity.HALT, "laser READY or firing without permission"),
    CheckSpec("cooler_plate_warn", Severity.WARN, "cooling plate outside its treatment band"),
    CheckSpec("settings_not_approved", Severity.WARN, "settings on the laser out of limits"),
    CheckSpec("skin_temp_trend", Severity.WARN, "the next pulse is predicted to pass the limit"),
    CheckSpec(
        "skin_too_warm_to_arm", Severity.WARN, "skin warmer than the pre-pulse baseline limit"
    ),
    CheckSpec(
        "device_answer_slow", Severity.NOTICE, "a device answers slower than the budget assumes"
    ),
    CheckSpec(
        "reaction_time_unmet",
        Severity.WARN,
        "measured answer times break the required reaction time",
    ),
    CheckSpec(
        "reaction_time_exceeded",
        Severity.HALT,
        "measured answer times break the required reaction time while emission is permitted",
    ),
    CheckSpec(
        "laser_did_not_stop",
        Severity.HALT,
        "the laser did not stop: the relay is the only barrier, use the emergency stop",
    ),
    # Issue 13: redundant skin sensors, a stuck sensor, the thermal dose, a stuck relay.
    CheckSpec("sensor2_stale", Severity.HALT, "no fresh sample from the second skin sensor"),
    CheckSpec("sensor2_link", Severity.HALT, "lost communication with the second skin sensor"),
    CheckSpec("sensor_disagreement", Severity.HALT, "the two skin sensors disagree"),
    CheckSpec("sensor_stuck", Severity.HALT, "a skin reading stuck at one value"),
    CheckSpec("thermal_dose_warn", Severity.WARN, "thermal dose at its warning level"),
    CheckSpec("thermal_dose_high", Severity.HALT, "thermal dose at the profile's limit"),
    CheckSpec(
        "relay_stuck_closed",
        Severity.HALT,
        "the laser stayed READY after the relay opened: the relay does not cut emission",
    ),
)


def index_of(checks: Sequence[CheckSpec]) -> dict[str, int]:
    """Each check's slot in ``active``; a name declared twice is refused."""
    index = {c.name: i for i, c in enumerate(checks)}
    if len(index) != len(checks):
        twice = sorted({c.name for c in checks if sum(d.name == c.name for d in checks) > 1})
        raise ValueError(f"checks declared twice: {twice}")
    return index


def halt_mask_of(checks: Sequence[CheckSpec]) -> npt.NDArray[np.bool_]:
    return np.array([c.severity is Severity.HALT for c in checks], dtype=np.bool_)


def blocks_arming_of(checks: Sequence[CheckSpec]) -> npt.NDArray[np.bool_]:
    """Conditions that refuse arming while active (all but the NOTICE ones)."""
    return np.array([c.severity >= Severity.WARN for c in checks], dtype=np.bool_)


INDEX = index_of(CHECKS)
HALT_MASK = halt_mask_of(CHECKS)
BLOCKS_ARMING = blocks_arming_of(CHECKS)
#: A slow-answer notice stays up this long after the last slow median: a device hovering at
#: its assumed answer time gives one notice, not one every few polls.
ANSWER_SLOW_HOLD_NS = 10_000_000_000


@dataclass(frozen=True)
class BandSlot:
    """One band check as data: ``check`` is active while ``channel`` is above ``high`` or below
    ``low`` and, with ``nan_raises``, while it is NaN. An active slot clears only
    ``hysteresis`` back inside its band. Several slots may raise one check (any of them)."""

    check: str
    channel: Ch
    low: float
    high: float
    hysteresis: float
    nan_raises: bool = True


def band_slots(limits: Limits) -> tuple[BandSlot, ...]:
    """The band checks of a setup's limits. NaN skin temperature is its own check, so the
    high and low slots leave it to ``skin_temp_invalid``. The plate's treatment band is
    computed (``cooler_plate_warn``): above it, with cooling required and emission permitted,
    it is the halt ``cooler_plate_high`` instead of a warning."""
    h, inf = limits.hysteresis_c, math.inf
    skin, trip = limits.skin_temp_c, limits.cooler_plate_trip_c
    return (
        BandSlot("skin_temp_high", Ch.SKIN_TEMP_C, -inf, skin.high, h, nan_raises=False),
        BandSlot("skin_temp_low", Ch.SKIN_TEMP_C, skin.low, inf, h, nan_raises=False),
        BandSlot("skin_temp_invalid", Ch.SKIN_TEMP_C, -inf, inf, 0.0),
        BandSlot("cooler_plate_trip", Ch.PLATE_TEMP_C, trip.low, trip.high, h),
        BandSlot("cooler_flow_low", Ch.FLOW_L_MIN, limits.cooler_flow_l_min_min, inf, 0.0),
        BandSlot("device_fault", Ch.SENSOR_FAULT_CODE, 0.0, 0.0, 0.0),
        BandSlot("device_fault", Ch.COOLER_FAULT_CODE, 0.0, 0.0, 0.0),
    )


def stale_check(dev: Dev) -> str:
    return f"{dev.name.lower()}_stale"


def link_check(dev: Dev) -> str:
    return f"{dev.name.lower()}_link"


#: Checks that ``evaluate`` computes itself, each written there by its name.
_COMPUTED = (
    "skin_baseline_high",
    "skin_frozen",
    "cooler_plate_high",
    "cooler_plate_warn",
    "skin_too_warm_to_arm",
    "settings_readback",
    "settings_not_approved",
    "laser_fault",
    "unexpected_emission",
    "skin_temp_trend",
    "device_answer_slow",
    "reaction_time_unmet",
    "reaction_time_exceeded",
    "laser_did_not_stop",
    "sensor_disagreement",
    "sensor_stuck",
    "thermal_dose_warn",
    "thermal_dose_high",
    "relay_stuck_closed",
)


class PulseTrend:
    """Where the next pulse will take the skin, from the peaks after the last pulses.

    Each pulse leaves a peak in the skin temperature. With cooling that works the peaks
    settle (each rise smaller than the one before); with cooling failing they keep climbing.
    The next peak is extrapolated from the last three: ``peak now + last rise × how much the
    rise shrank``, never assuming it shrinks faster than it did. A warning one pulse ahead of
    the skin-temperature halt; forgotten after a pause in firing.
    """

    GAP_NS = 3_000_000_000  # no pulse for this long: a new series of pulses starts

    def __init__(self) -> None:
        self.pulses = float("nan")
        self.window_peak = float("-inf")  # highest skin temperature since the last pulse
        self.in_pulse_window = False  # the current window was opened by a pulse
        self.peaks = [float("nan")] * 3  # the last three post-pulse peaks, oldest first
        self.last_pulse_ns = 0
        self.predicted = float("-inf")

    @property
    def last_peak(self) -> float:
        return self.peaks[2]

    @property
    def prev_peak(self) -> float:
        return self.peaks[1]

    def update(self, now_ns: int, pulses: float, skin_c: float) -> float:
        if pulses != self.pulses and pulses == pulses:  # the counter moved (NaN never counts)
            if self.in_pulse_window and self.window_peak > float("-inf"):
                self.peaks[0], self.peaks[1], self.peaks[2] = (*self.peaks[1:], self.window_peak)
            self.in_pulse_window = self.pulses == self.pulses  # not the first reading
            self.pulses = pulses
            self.window_peak = float("-inf")
            self.last_pulse_ns = now_ns
        elif now_ns - self.last_pulse_ns > self.GAP_NS and self.in_pulse_window:
            self.in_pulse_window = False
            self.peaks[0] = self.peaks[1] = self.peaks[2] = float("nan")
        if skin_c > self.window_peak:
            self.window_peak = skin_c
        p1, p2, p3 = self.peaks
        rise, prev_rise = p3 - p2, p2 - p1
        if rise > 0 and prev_rise == prev_rise:  # three peaks, still rising
            shrink = min(1.0, rise / prev_rise) if prev_rise > 0 else 1.0
            self.predicted = max(self.window_peak, p3) + rise * shrink
        else:
            self.predicted = float("-inf")
        return self.predicted


class LatchedAlarm:
    """An alarm that outlives its condition until a person resets it by name.

    Set by the loop thread, reset by the session's thread: a reset that races a new latch
    loses to it (the condition is judged again on the next cycle), never the other way.
    """

    def __init__(self) -> None:
        self.latched = False
        self.since_ns = 0
        self.why = ""

    def latch(self, now_ns: int, why: str) -> None:
        if not self.latched:
            self.since_ns, self.why = now_ns, why
            self.latched = True

    def reset(self) -> None:
        self.latched = False


class CheckEngine:
    """The checks of one session (its setup, its patient's skin type, its treatment site).

    ``checks``, ``index``, ``halt_mask`` and ``blocks_arming`` are this engine's view of
    ``CHECKS``, taken once at start; every slot it writes is looked up by name there. The
    limit table keeps only the rows for the site and the setup's cooling method
    (``LimitTable.for_treatment``; ``NoRowsForTreatment`` if none).
    """

    def __init__(self, setup: Setup, skin_type: SkinType, site: TreatmentSite = DEMO_SITE) -> None:
        lim = setup.limits
        self.setup = setup
        self.skin_type = skin_type
        self.site = site
        self.checks: tuple[CheckSpec, ...] = tuple(CHECKS)
        self.index = index = index_of(self.checks)
        self.halt_mask = halt_mask_of(self.checks)
        self.blocks_arming = blocks_arming_of(self.checks)
        self.table = LimitTable(lim.settings).for_treatment(site, setup.cooler.method)
        self.skin_low, self.skin_high = lim.skin_temp_c.low, lim.skin_temp_c.high
        self.baseline_max = lim.skin_baseline_max_c
        # (a) the pre-pulse baseline is judged this long before the next pulse is due: the
        # reaction time, plus the laser's poll period by which a pulse is seen late.
        lead_ms = lim.required_reaction_ms + setup.laser.poll_period_ms
        self.baseline = PulseBaseline(self.baseline_max, int(lead_ms * 1e6))
        # (d) how long the skin may be below freezing, by the cooling method.
        self.freeze_hold_ms = SKIN_LOW_BY_COOLING[setup.cooler.method].freezing_hold_ms
        self.freeze = FreezeTimer(self.freeze_hold_ms)
        # (c) the live thermal dose per treatment area: ``self.dose`` (a DoseMeter) below.
        self._cooling_required = True  # until settings were read: the safe side
        self.plate_warn = (lim.cooler_plate_temp_c.low, lim.cooler_plate_temp_c.high)
        self.plate_trip = (lim.cooler_plate_trip_c.low, lim.cooler_plate_trip_c.high)
        self.flow_min = lim.cooler_flow_l_min_min
        self.hyst = lim.hysteresis_c
        self.active: npt.NDArray[np.bool_] = np.zeros(len(self.checks), dtype=np.bool_)

        # Per-device checks come from the device names. ``stale_ns`` is indexed by device; a
        # device without a staleness limit (the relay: its refresh is its own check) never
        # goes stale here, nor does a device the setup does not have (no second sensor).
        self.stale_ns = np.full(len(Dev), np.inf)
        for name, ms in lim.stale_ms.items():
            self.stale_ns[Dev[name.upper()]] = ms * 1e6
        if setup.sensor2 is not None:  # the second skin sensor is held to the first's limit
            self.stale_ns[Dev.SENSOR2] = self.stale_ns[Dev.SENSOR]
        stale_devs = [d for d in Dev if d is not Dev.INTERLOCK]
        self._present = np.array([d is not Dev.SENSOR2 or setup.sensor2 is not None for d in Dev])
        slots = band_slots(lim)
        if setup.sensor2 is not None:  # its fault code, like the first sensor's
            slots += (BandSlot("device_fault", Ch.SENSOR2_FAULT_CODE, 0.0, 0.0, 0.0),)
        self._refuse_miswired(
            {
                "band": {b.check for b in slots},
                "stale": {stale_check(d) for d in stale_devs},
                "link": {link_check(d) for d in Dev},
                "computed": set(_COMPUTED),
            }
        )

        # Band checks: every slot evaluated at once, then OR-ed into its check. The slots are
        # grouped by check so that one reduceat gives each check its "any slot out".
        self.bands = sorted(slots, key=lambda b: index[b.check])
        n = len(self.bands)
        self._slot_ch = np.array([int(b.channel) for b in self.bands], dtype=np.intp)
        self._lo = np.array([b.low for b in self.bands])
        self._hi = np.array([b.high for b in self.bands])
        self._hyst = np.array([b.hysteresis for b in self.bands])
        self._nan_raises = np.array([b.nan_raises for b in self.bands], dtype=np.bool_)
        targets = [index[b.check] for b in self.bands]
        first = [k for k in range(n) if k == 0 or targets[k] != targets[k - 1]]
        self._band_first = np.array(first, dtype=np.intp)
        self._x, self._t, self._edge = np.zeros(n), np.zeros(n), np.zeros(n)
        self._above = np.zeros(n, dtype=np.bool_)
        self._below = np.zeros(n, dtype=np.bool_)
        self._nan = np.zeros(n, dtype=np.bool_)
        self._out = np.zeros(n, dtype=np.bool_)

        self._stale_dev = np.array([int(d) for d in stale_devs], dtype=np.intp)
        self._stale_limit_ns = self.stale_ns[self._stale_dev]
        self._fresh_ns = np.zeros(len(stale_devs), dtype=np.int64)
        self._age = np.zeros(len(stale_devs))

        # The vectorised checks land in one staging vector, then in ``active`` in one scatter:
        # [one per band check | one per stale check | one per link check].
        hit_checks = (
            [targets[k] for k in first]
            + [index[stale_check(d)] for d in stale_devs]
            + [index[link_check(d)] for d in Dev]
        )
        self._hit_check = np.array(hit_checks, dtype=np.intp)
        self._hit = np.zeros(len(hit_checks), dtype=np.bool_)
        nb, ns = len(first), len(stale_devs)
        self._band_hit = self._hit[:nb]  # views: written in place by ``evaluate``
        self._stale_hit = self._hit[nb : nb + ns]
        self._link_down = self._hit[nb + ns :]

        # The skin reading each band check judges: with two sensors, the hotter for the high
        # limit, the colder for the low one (``SkinSensors``). Written over those slots.
        self.sensors = SkinSensors(setup)
        self._k_skin_high = self._slot_of("skin_temp_high")
        self._k_skin_low = self._slot_of("skin_temp_low")
        self._k_skin_invalid = self._slot_of("skin_temp_invalid")
        # The live thermal dose, fed each new checked skin sample; a longer silence than the
        # sensor's staleness limit is a gap (the dose is then a lower bound).
        self.dose = DoseMeter(lim.thermal_dose, gap_ns=float(self.stale_ns[Dev.SENSOR]))
        self.dose.set_area(str(site))  # the treatment site is the area (issue 12 item 7c)

        # The computed checks, by name.
        self._readback = index["settings_readback"]
        self._not_approved = index["settings_not_approved"]
        self._laser_fault = index["laser_fault"]
        self._unexpected = index["unexpected_emission"]
        self._trend = index["skin_temp_trend"]
        self._answer_slow = index["device_answer_slow"]
        self._reaction_unmet = index["reaction_time_unmet"]
        self._reaction_exceeded = index["reaction_time_exceeded"]
        self._did_not_stop = index["laser_did_not_stop"]
        self._baseline_high = index["skin_baseline_high"]
        self._frozen = index["skin_frozen"]
        self._plate_high = index["cooler_plate_high"]
        self._plate_warn = index["cooler_plate_warn"]
        self._too_warm = index["skin_too_warm_to_arm"]
        self._hot = index["skin_temp_high"]
        self._disagreement = index["sensor_disagreement"]
        self._stuck = index["sensor_stuck"]
        self._dose_warn = index["thermal_dose_warn"]
        self._dose_high = index["thermal_dose_high"]
        self._relay_stuck = index["relay_stuck_closed"]

        # The read-back settings change rarely: the gate runs only when they do. One row per
        # setting, in the gate's argument order (``LASER_SETTINGS``), taken from its channel.
        self._setting_ch = np.array([int(c) for c in SETTING_CHANNELS.values()], dtype=np.intp)
        self._settings = np.zeros(len(SETTING_CHANNELS))
        self._last_settings = np.full(len(SETTING_CHANNELS), np.nan)
        self._settings_moved = np.zeros(len(SETTING_CHANNELS), dtype=np.bool_)
        self._s = self._settings.reshape(-1, 1)  # a view: row k is setting k as a batch of one
        self._rank = np.array([skin_type.rank])
        self._settings_bad = True
        # The table the read-back was last judged by: a table swapped in (``use_table``, a
        # test spot narrowing it) judges the same settings again at once.
        self._judged_by: LimitTable | None = None
        self._fault = LaserState.FAULT.code
        self._firing = LaserState.FIRING.code
        self._can_emit = tuple(s.code for s in CAN_EMIT)
        self.trend = PulseTrend()
        # The reaction-time budget again, from the answer times the device workers measure.
        self.live_budget = LiveBudget(setup)
        self._assumed_ms = np.array(
            [self.live_budget.assumed.get(d.name.lower(), np.inf) for d in Dev]
        )
        self._slow = np.zeros(len(Dev), dtype=np.bool_)
        self._slow_seen_ns: int | None = None
        self.measured_reaction_ms = float("nan")
        # A halted laser has this long to confirm STOP and report STANDBY: its staleness
        # limit (a fresh status must follow the stop) plus one serial timeout (a stop that
        # timed out is retried once). Derived from the profile, not a number of its own.
        self.stop_grace_ns = int(
            (lim.stale_ms["laser"] + setup.laser.transport.timeout_ms) * 1_000_000
        )
        self.did_not_stop = LatchedAlarm()
        self._judged_halt_ns = 0  # the halt whose stop confirmation was already judged
        # Latched by the session's standby when the laser stayed READY after the relay opened
        # (``Session.standby``: the relay opens first); reset by name, like did_not_stop.
        self.relay_stuck = LatchedAlarm()

    def _slot_of(self, check: str) -> int:
        """The one band slot of ``check`` (in ``self.bands`` order)."""
        (k,) = [k for k, b in enumerate(self.bands) if b.check == check]
        return k

    def _refuse_miswired(self, wired: dict[str, set[str]]) -> None:
        """Each declared check is written by exactly one kind of wiring. A declared check that
        nothing evaluates could never fire; a wired name nobody declared has no slot; a name
        wired twice would be overwritten by whichever runs last. Each is a programming error:
        refuse to start, naming it."""
        declared = set(self.index)
        kinds: dict[str, list[str]] = {}
        for kind, names in wired.items():
            for name in names:
                kinds.setdefault(name, []).append(kind)
        problems = []
        unwired = sorted(declared - set(kinds))
        if unwired:
            problems.append(f"declared in CHECKS but never evaluated: {unwired}")
        undeclared = sorted(set(kinds) - declared)
        if undeclared:
            problems.append(f"evaluated but not declared in CHECKS: {undeclared}")
        twice = sorted(f"{n} ({' and '.join(k)})" for n, k in kinds.items() if len(k) > 1)
        if twice:
            problems.append(f"wired twice: {twice}")
        if problems:
            raise ValueError("the interlock checks are miswired: " + "; ".join(problems))

    def evaluate(
        self, live: LiveState, now_ns: int, emission_permitted: bool
    ) -> npt.NDArray[np.bool_]:
        """Fill and return ``active``. The hot path: preallocated buffers, no new arrays."""
        a, x, t, edge = self.active, self._x, self._t, self._edge
        above, below, nan, out = self._above, self._below, self._nan, self._out
        value = live.value
        value.take(self._slot_ch, out=x)
        sensors = self.sensors
        if sensors.update(live, now_ns):
            self.dose.add(sensors.hot, sensors.last_sample_ns)
        x[self._k_skin_high] = sensors.hot
        x[self._k_skin_invalid] = sensors.hot  # NaN when either sensor's reading is
        x[self._k_skin_low] = sensors.cold
        np.multiply(self._hyst, above, out=t)  # last cycle's state sets this cycle's edge
        np.subtract(self._hi, t, out=edge)
        np.greater(x, edge, out=above)
        np.multiply(self._hyst, below, out=t)
        np.add(self._lo, t, out=edge)
        np.less(x, edge, out=below)
        np.isnan(x, out=nan)
        np.logical_and(nan, self._nan_raises, out=nan)
        np.logical_or(above, below, out=out)
        np.logical_or(out, nan, out=out)
        np.logical_or.reduceat(out, self._band_first, out=self._band_hit)
        live.fresh_ns.take(self._stale_dev, out=self._fresh_ns)
        np.subtract(now_ns, self._fresh_ns, out=self._age)
        np.greater(self._age, self._stale_limit_ns, out=self._stale_hit)
        np.logical_not(live.link_ok, out=self._link_down)
        np.logical_and(self._link_down, self._present, out=self._link_down)
        a.put(self._hit_check, self._hit)
        settings = self._settings
        value.take(self._setting_ch, out=settings)
        np.not_equal(settings, self._last_settings, out=self._settings_moved)
        table = self.table
        # NaN is never equal to itself: judged again each time.
        if self._settings_moved.any() or table is not self._judged_by:
            np.copyto(self._last_settings, settings)
            self._judged_by = table
            s = self._s
            self._settings_bad = not table.evaluate(s[0], s[1], s[2], s[3], self._rank)[0]
            self._cooling_required = table.cooling_required_at(
                self.skin_type, float(settings[2]), float(settings[1])
            )
        # Out-of-limit settings on a laser that may not fire block arming; once it may, they halt.
        a[self._readback] = self._settings_bad and emission_permitted
        a[self._not_approved] = self._settings_bad and not emission_permitted
        state = value[Ch.LASER_STATE]
        a[self._laser_fault] = state == self._fault
        a[self._unexpected] = (not emission_permitted) and (state in self._can_emit)
        # With two sensors the hotter reading is judged for heat, the colder for cold.
        skin = sensors.hot
        firing = state == self._firing
        predicted = self.trend.update(now_ns, value[Ch.LASER_PULSES], skin)
        a[self._trend] = firing and predicted > self.skin_high
        # The skin-temperature checks that fit treatment (monitor.core.skin_checks).
        a[self._baseline_high] = self.baseline.update(
            now_ns, value[Ch.LASER_PULSES], skin, firing, value[Ch.REP_RATE_HZ]
        )
        warm_edge = self.baseline_max - (self.hyst if a[self._too_warm] else 0.0)
        # Skin above the hard ceiling is its own (halting) check: this warning is for less.
        a[self._too_warm] = (not emission_permitted) and skin > warm_edge and not a[self._hot]
        a[self._frozen] = self.freeze.update(now_ns, sensors.cold)
        # The plate's treatment band: outside it a warning (arming refused); above it while
        # the laser may fire at settings that require cooling, a halt instead.
        plate = value[Ch.PLATE_TEMP_C]
        plate_low, plate_high = self.plate_warn
        back_c = self.hyst if a[self._plate_warn] else 0.0
        too_warm_plate = emission_permitted and self._cooling_required and plate > plate_high
        a[self._plate_high] = too_warm_plate
        a[self._plate_warn] = (
            not (plate_low + back_c <= plate <= plate_high - back_c) and not too_warm_plate
        )
        # A device that usually answers slower than the budget assumes: say so. The worst case
        # recomputed from the recent worst answers: refuse arming, or halt, once it is too slow.
        np.greater(live.answer_typical_ms, self._assumed_ms, out=self._slow)  # NaN: False
        if self._slow.any():
            self._slow_seen_ns = now_ns
        seen = self._slow_seen_ns
        a[self._answer_slow] = seen is not None and now_ns - seen < ANSWER_SLOW_HOLD_NS
        worst = live.answer_worst_ms
        total = self.live_budget.total_ms(
            worst[Dev.SENSOR], worst[Dev.LASER], worst[Dev.INTERLOCK], worst[Dev.SENSOR2]
        )
        self.measured_reaction_ms = total
        too_slow = total > self.live_budget.required_ms
        a[self._reaction_unmet] = too_slow and not emission_permitted
        a[self._reaction_exceeded] = too_slow and emission_permitted
        self._judge_stop(live, now_ns, state)
        a[self._did_not_stop] = self.did_not_stop.latched
        a[self._disagreement] = sensors.disagreement
        a[self._stuck] = sensors.stuck
        a[self._dose_warn] = self.dose.warn
        a[self._dose_high] = self.dose.over_limit
        a[self._relay_stuck] = self.relay_stuck.latched
        return a

    def _judge_stop(self, live: LiveState, now_ns: int, state: float) -> None:
        """Latch ``laser_did_not_stop``: a grace time after a halt, the laser never confirmed
        STOP (judged once per halt), or it reports READY/FIRING (judged every cycle).

        The unexpected-emission check is off while a halt is latched (the bridge stops the
        laser again); this is what notices that the laser's own stop route does not work.
        """
        halt_ns = live.halt_ns
        if halt_ns == 0 or now_ns - halt_ns <= self.stop_grace_ns:
            return
        if halt_ns != self._judged_halt_ns:
            self._judged_halt_ns = halt_ns
            if live.stop_confirmed_ns < halt_ns:
                self.did_not_stop.latch(now_ns, "had not confirmed STOP")
        if state in self._can_emit and not self.did_not_stop.latched:  # words only once
            self.did_not_stop.latch(now_ns, f"still reported {LaserState.from_code(state)}")

    def stop_judged(self, halt_ns: int) -> bool:
        """Whether the halt latched at ``halt_ns`` has had its STOP judged (``_judge_stop``)."""
        return self._judged_halt_ns == halt_ns

    def reason(self, index: int, live: LiveState) -> str:
        """Plain words for a check that just became active (not on the hot path)."""
        v = live.value
        name = self.checks[index].name
        if name == "skin_temp_trend":
            t = self.trend
            return (
                f"next pulse predicted to reach {t.predicted:.1f} °C (post-pulse peaks "
                f"{t.prev_peak:.1f} → {t.last_peak:.1f} °C); limit {self.skin_high:g} °C: "
                "stop, let the skin cool, check the cooling"
            )
        if name in _SKIN_WORDS:
            return _SKIN_WORDS[name](self, live)
        if name == "skin_temp_invalid":
            faults = [live.fault[c] for c in (Ch.SKIN_TEMP_C, Ch.SKIN_TEMP_2_C) if live.fault[c]]
            if faults:
                return "skin temperature unknown: " + "; ".join(str(f) for f in faults)
        if name == "sensor_disagreement":
            return self.sensors.disagreement_reason(live)
        if name == "sensor_stuck":
            return self.sensors.stuck_reason(live)
        if name.startswith("thermal_dose"):
            return self.dose.reason(halting=name == "thermal_dose_high")
        if name == "relay_stuck_closed":
            return (
                f"the laser {self.relay_stuck.why}: the relay (or the laser's interlock input) "
                "does not cut emission; do not treat until it is serviced. Reset it by name "
                "(relay_stuck_closed) once the laser is in STANDBY"
            )
        if name == "device_answer_slow":
            return self._answer_slow_reason(live)
        if name.startswith("reaction_time"):
            return self._reaction_reason(live)
        if name == "skin_temp_high":
            return (
                f"skin temperature {v[Ch.SKIN_TEMP_C]:.2f} °C above the hard ceiling "
                f"{self.skin_high:g} °C (the post-pulse peak may not pass it)"
            )
        if name.startswith("skin_temp"):
            return (
                f"skin temperature {self.sensors.readings(live)} outside "
                f"{self.skin_low:g}–{self.skin_high:g} °C"
            )
        for dev in Dev:
            if name == stale_check(dev):
                limit_ms = self.stale_ns[dev] / 1e6
                return f"no fresh {dev.name.lower()} data for more than {limit_ms:g} ms"
            if name == link_check(dev):
                return f"lost communication with the {dev.name.lower()}: {live.link_error[dev]}"
        if name == "device_fault":
            codes = [
                f"{b.channel.name.lower().removesuffix('_fault_code')}={v[b.channel]:g}"
                for b in self.bands
                if b.check == name
            ]
            return "fault code " + " ".join(codes)
        if name.startswith("cooler_plate"):
            lo, hi = self.plate_trip if name.endswith("trip") else self.plate_warn
            return f"cooling plate {v[Ch.PLATE_TEMP_C]:.2f} °C outside {lo:g}–{hi:g} °C"
        if name == "cooler_flow_low":
            return f"coolant flow {v[Ch.FLOW_L_MIN]:.2f} L/min below {self.flow_min:g} L/min"
        if name == "laser_did_not_stop":
            latch = self.did_not_stop
            late_ms = (latch.since_ns - live.halt_ns) / 1e6 if live.halt_ns else float("nan")
            now_state = live.laser_state()
            if latch.why.startswith("had not") and now_state == LaserState.STANDBY.value:
                # It reports a safe state, but its own stop route went unanswered: a STOP it
                # did not confirm cannot be trusted for the next halt either.
                head = (
                    f"the laser's stop went unanswered: it {latch.why} {late_ms:.0f} ms after"
                    f" the halt, though it now reports {now_state}"
                )
            else:
                head = (
                    f"the laser did not stop: it {latch.why} {late_ms:.0f} ms after the halt"
                    f" (now {now_state})"
                )
            return (
                f"{head}; the relay is the only barrier, use the emergency stop. Reset it by"
                " name (laser_did_not_stop) once the laser is in STANDBY"
            )
        if name in ("settings_readback", "settings_not_approved"):
            return "laser reads back " + self.table.check(self.skin_type, live.settings()).explain()
        return self.checks[index].what

    def _answer_slow_reason(self, live: LiveState) -> str:
        slow = [
            f"{d.name.lower()} answers in {live.answer_typical_ms[d]:.1f} ms typically "
            f"(median of its last {ANSWER_WINDOW}), the reaction-time budget assumes "
            f"{self._assumed_ms[d]:.1f} ms"
            for d in Dev
            if self._present[d] and live.answer_typical_ms[d] > self._assumed_ms[d]
        ]
        return (
            "; ".join(slow or ["a device answered slower than assumed"])
            + f"; the worst case is {self.measured_reaction_ms:.1f} ms against the required "
            f"{self.live_budget.required_ms:g} ms: review the device's response_ms in the profile"
        )

    def _reaction_reason(self, live: LiveState) -> str:
        measured = {d.name.lower(): float(live.answer_worst_ms[d]) for d in Dev if self._present[d]}
        budget = reaction_budget(self.setup, measured)
        slow = budget.slower_than_assumed() or ["no device is slower than assumed now"]
        return (
            f"measured worst-case reaction time {budget.total_ms:.1f} ms exceeds the required "
            f"{budget.required_ms:g} ms ({'; '.join(slow)})"
        )


# --- words for the skin-temperature checks (not on the hot path) -------------------------------


def _baseline_words(engine: CheckEngine, live: LiveState) -> str:
    b = engine.baseline
    if b.fired_warm or not b.warm_before_next:
        return (
            f"the skin was at {b.last_baseline:.1f} °C before the last pulse, above the "
            f"{engine.baseline_max:g} °C baseline limit: heat is building up or the cooling "
            "is lost; let the skin cool, check the cooling and the contact"
        )
    return (
        f"the next pulse is due and the skin has not cooled below {engine.baseline_max:g} °C "
        f"since the last one (lowest {b.window_min:.1f} °C): the next pulse is refused; let "
        "the skin cool, lower the rate, check the cooling"
    )


def _too_warm_words(engine: CheckEngine, live: LiveState) -> str:
    return (
        f"skin at {live.value[Ch.SKIN_TEMP_C]:.1f} °C, above the {engine.baseline_max:g} °C "
        "pre-pulse baseline limit: let it cool (check the cooling) before arming"
    )


def _frozen_words(engine: CheckEngine, live: LiveState) -> str:
    return (
        f"skin at {live.value[Ch.SKIN_TEMP_C]:.1f} °C, below freezing ({SKIN_FREEZES_C:g} °C) "
        f"for more than {engine.freeze_hold_ms:g} ms with {engine.setup.cooler.method} "
        "cooling: longer than a cryogen spurt; stop the cryogen, check the skin"
    )


def _plate_high_words(engine: CheckEngine, live: LiveState) -> str:
    return (
        f"cooling plate {live.value[Ch.PLATE_TEMP_C]:.2f} °C above its treatment band "
        f"({engine.plate_warn[1]:g} °C) while the settings require epidermal cooling"
    )


_SKIN_WORDS = {
    "skin_baseline_high": _baseline_words,
    "skin_too_warm_to_arm": _too_warm_words,
    "skin_frozen": _frozen_words,
    "cooler_plate_high": _plate_high_words,
}

"""An energy meter driven by its description: lines out, joules and identities back.

`EnergyMeterDriver` speaks any ``device_profiles.meter.MeterDescription`` over a
``LineTransport`` (``SerialLineTransport`` on a real port or a pty). It makes no decisions:
whether a reading passes, whether a head's calibration has expired, or whether the meter
suits the laser is for its caller (the calibration procedure). It only turns the meter's
replies into typed values, and every reply that is not one into a typed error:

- a refusal (Ophir ``?...``; a SCPI meter's queued error, read with ``error_query``):
  ``DeviceRejected`` with the meter's reason;
- an over-range reading (Ophir ``*OVER``, SCPI 9.9E37): ``MeterOverRange``;
- a reply that fits nothing, a number that is not finite, a reply longer than the
  description's ``max_reply_bytes``: ``ProtocolError`` (the message shows a bounded prefix);
- no reply in time: ``LinkLost`` (from the transport);
- no new pulse within the time given: ``NoPulseMeasured``.

How a procedure reads one shot (the Ophir practice, any description)::

    meter.discard_pending()          # a pulse measured before we fired is not ours
    laser.service_shot()
    energy_j = meter.wait_pulse_energy_j(timeout_s=2.0)
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType

from device_profiles.meter import MeterCommand, MeterDescription
from firmware_bridge.errors import (
    DeviceRejected,
    LinkLost,
    MeterOverRange,
    NoPulseMeasured,
    ProtocolError,
)
from firmware_bridge.transport import LineTransport, SerialLineTransport

#: A meter may round the wavelength it took (Ophir answers whole nanometres): a read-back
#: within this of the request confirms it.
WAVELENGTH_READBACK_NM = 0.5
_SHOWN_CHARS = 60


def shown(reply: str) -> str:
    """A reply for a message: whole when short, else a prefix and its length (bounded)."""
    if len(reply) <= _SHOWN_CHARS:
        return repr(reply)
    return f"{reply[:_SHOWN_CHARS]!r}... ({len(reply)} characters)"


@dataclass(frozen=True)
class MeterIdentity:
    model: str
    serial: str | None
    firmware: str | None


@dataclass(frozen=True)
class HeadInfo:
    head_type: str
    head_serial: str | None
    calibrated: date | None  # None: the meter cannot report it (the setup states it)


def meter_transport(desc: MeterDescription, port: str | None = None) -> SerialLineTransport:
    """The meter's serial line, at its description's port or at ``port``."""
    cfg = desc.transport if port is None else desc.transport.model_copy(update={"port": port})
    return SerialLineTransport(cfg, desc.terminator)


class EnergyMeterDriver:
    """One energy meter; one owner thread (its transport is not thread-safe)."""

    def __init__(
        self,
        desc: MeterDescription,
        transport: LineTransport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc = desc
        self.transport = transport
        self._sleep = sleep
        self._clock = clock
        self._over = desc.over_range.pattern
        self._error = desc.error_reply.pattern if desc.error_reply is not None else None

    # --- one request ------------------------------------------------------------------------

    def _request(self, line: str) -> str:
        try:
            reply = self.transport.request(line)
        except LinkLost as lost:
            # A SCPI meter answers nothing to a command it refuses: ask why before calling
            # it a lost link. Its error queue answering proves the link is up.
            reason = self._queued_error()
            if reason is not None:
                raise DeviceRejected(line, reason) from lost
            raise
        if len(reply) > self.desc.max_reply_bytes:
            raise ProtocolError(
                f"reply to {line!r} is {len(reply)} characters, longer than the meter's "
                f"max_reply_bytes {self.desc.max_reply_bytes}: {shown(reply)}"
            )
        return reply

    def _queued_error(self) -> str | None:
        """The meter's queued refusal, if it has an error queue and one is waiting."""
        query = self.desc.error_query
        if query is None:
            return None
        try:
            reply = self.transport.request(query.send)
        except LinkLost:
            return None  # the queue does not answer either: the link is lost after all
        m = query.pattern.fullmatch(reply)
        if m is None:
            raise ProtocolError(f"unexpected reply to {query.send!r}: {shown(reply)}")
        if int(m["code"]) == query.no_error_code:
            return None
        return f"{m['code']}, {m['reason']}"

    def _transact(self, cmd: MeterCommand, line: str, *, energy: bool = False) -> re.Match[str]:
        reply = self._request(line)
        if energy and self._over.fullmatch(reply):
            raise MeterOverRange(line, reply)
        m = cmd.pattern.fullmatch(reply)
        if m is not None:
            return m
        if self._error is not None and (err := self._error.fullmatch(reply)) is not None:
            raise DeviceRejected(line, err["reason"] or reply)
        raise ProtocolError(f"unexpected reply to {line!r}: {shown(reply)}")

    @staticmethod
    def _number(m: re.Match[str], group: str) -> float:
        text = m[group]
        try:
            value = float(text)
        except (TypeError, ValueError) as e:
            raise ProtocolError(f"{group} is not a number in {shown(m.group(0))}") from e
        if not math.isfinite(value):
            raise ProtocolError(f"{group} is not a finite number in {shown(m.group(0))}")
        return value

    # --- what a procedure calls -------------------------------------------------------------

    def identify(self) -> MeterIdentity:
        cmd = self.desc.commands.identify
        m = self._transact(cmd, cmd.send)
        groups = m.groupdict()
        return MeterIdentity(m["model"], groups.get("serial"), groups.get("firmware"))

    def head_info(self) -> HeadInfo:
        cmd = self.desc.commands.head_info
        m = self._transact(cmd, cmd.send)
        groups = m.groupdict()
        calibrated: date | None = None
        text = groups.get("head_calibrated")
        if text is not None and cmd.calibrated_format is not None:
            try:
                calibrated = datetime.strptime(text, cmd.calibrated_format).date()
            except ValueError as e:
                raise ProtocolError(
                    f"head calibration date {text!r} is not {cmd.calibrated_format}"
                ) from e
        return HeadInfo(m["head_type"], groups.get("head_serial"), calibrated)

    def wavelength_nm(self) -> float:
        """The wavelength the meter corrects for now (needs ``get_wavelength``)."""
        cmd = self.desc.commands.get_wavelength
        if cmd is None:
            raise ValueError(f"meter {self.desc.name!r} describes no get_wavelength command")
        return self._number(self._transact(cmd, cmd.send), "wavelength_nm")

    def set_wavelength(self, nm: float) -> float:
        """Set the wavelength the meter corrects for; returns the one it confirmed.

        The meter's read-back must be within `WAVELENGTH_READBACK_NM` of ``nm``; a meter that
        kept another wavelength (a SCPI meter refuses silently) raises ``DeviceRejected``.
        """
        if not math.isfinite(nm) or nm <= 0:
            raise ValueError(f"a wavelength is a positive number of nm, not {nm}")
        cmd = self.desc.commands.set_wavelength
        line = cmd.send.format(nm=nm)
        m = self._transact(cmd, line)
        if "wavelength_nm" in cmd.pattern.groupindex:
            took = self._number(m, "wavelength_nm")
        else:
            took = self.wavelength_nm()
        if abs(took - nm) > WAVELENGTH_READBACK_NM:
            why = f"the meter kept {took:g} nm"
            queued = self._queued_error()
            raise DeviceRejected(line, why if queued is None else f"{why} ({queued})")
        return took

    def set_range_auto(self) -> bool:
        """Let the meter choose its range; False when the description has no such command."""
        cmd = self.desc.commands.range_auto
        if cmd is None:
            return False
        self._transact(cmd, cmd.send)
        return True

    def read_energy_j(self) -> float:
        """The energy of the latest pulse the meter measured, in joules (clears its flag)."""
        cmd = self.desc.commands.read_energy
        m = self._transact(cmd, cmd.send, energy=True)
        return self.desc.energy_j(self._number(m, "energy"))

    def pulse_ready(self) -> bool:
        """The meter has measured a pulse that ``read_energy_j`` has not returned yet."""
        cmd = self.desc.commands.energy_ready
        m = self._transact(cmd, cmd.send)
        if m["ready"] == cmd.ready_value:
            return True
        if m["ready"] == cmd.not_ready_value:
            return False
        raise ProtocolError(f"unexpected readiness {m['ready']!r} in {shown(m.group(0))}")

    def discard_pending(self) -> bool:
        """Throw away a pulse measured before now; True if there was one.

        Ophir's practice: a flag already set when a measurement starts belongs to an earlier
        pulse, so read it once and drop it. An over-range earlier pulse is dropped too: it
        is not the one about to be measured.
        """
        if not self.pulse_ready():
            return False
        # Reading it clears the flag; its value (even over-range) was not wanted.
        with contextlib.suppress(MeterOverRange):
            self.read_energy_j()
        return True

    def wait_pulse_energy_j(self, timeout_s: float) -> float:
        """The energy of the next pulse the meter measures, waiting up to ``timeout_s``.

        Polls the meter's readiness every ``energy_ready.poll_ms`` (Ophir: about 100 ms, so
        as not to choke it). Raises ``NoPulseMeasured`` when none arrives in time.
        """
        poll_s = self.desc.commands.energy_ready.poll_ms / 1000.0
        deadline = self._clock() + timeout_s
        while not self.pulse_ready():
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise NoPulseMeasured(
                    f"meter {self.desc.name!r} measured no pulse within {timeout_s:g} s"
                )
            self._sleep(min(poll_s, remaining))
        return self.read_energy_j()

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the meter's port; safe to call twice."""
        self.transport.close()

    def __enter__(self) -> EnergyMeterDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The clinic's records of a running session, added by a ``Recorder`` around the session's own.

The safety core knows nothing of incidents: it writes its trips, its risk assessment and its
patient information through the ``Recorder`` it is given. ``IncidentRecorder`` is that
recorder, wrapped around the session log's (``LogRecorder``), and reacts to what passes:

- the risk assessment and the clinic's patient information recorded (before anything may
  arm): the *before* sheet is rendered and recorded as given (``patient_sheet_given``, in the
  session's chain, synchronously);
- a ``trip`` whose cause the protocol book maps with ``draft_incident``: a DRAFT incident is
  opened, naming the protocol and the trip by its seq and hash. Never on the caller's thread
  (the session's bookkeeper, which must not wait): the trip is posted to this recorder's own
  thread, which waits until the trip is written and then opens the draft. A draft that
  cannot be opened is said in the session's record (``incident_draft_failed``);
- the session's end: the drafts still pending are opened, the *after* sheet is recorded as
  given, the session ends, and a follow-up is scheduled if the policy counts the patient as
  higher-risk (what goes wrong after the end, when the session's chain is sealed, is kept in
  ``problems`` for the front end to say).

What the console shows at a halt is ``protocol_for(check)``: the protocol, at once, from data
already loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from device_profiles.protocols import Protocol
from monitor.core.bookkeeper import Bookkeeper
from monitor.core.recorder import PulseGap
from monitor.core.records import EventKind, Payload, SessionStart
from monitor.incidents.clinic import ClinicRecords
from monitor.incidents.errors import IncidentInputError, IncidentRefused
from monitor.incidents.sheets import KIND_SHEET_GIVEN, after_sheet, before_sheet
from monitor.record.errors import SessionLogError
from monitor.record.recorder import LogRecorder

__all__ = ["KIND_DRAFT_FAILED", "KIND_DRAFT_OPENED", "IncidentRecorder"]

KIND_DRAFT_FAILED = "incident_draft_failed"
KIND_DRAFT_OPENED = "incident_draft_opened"  # in the session's chain: which draft, which trip
#: How long the drafting thread waits for the trip it reacts to to be written.
FLUSH_WAIT_S = 2.0


class IncidentRecorder:
    """A ``Recorder`` (``monitor.core.recorder``) that adds the clinic's records."""

    def __init__(self, inner: LogRecorder, clinic: ClinicRecords) -> None:
        self._inner = inner
        self.clinic = clinic
        self.log = inner.log
        self.drafts: list[str] = []  # incident ids opened by this session's halts
        self.problems: list[str] = []
        self.followup: str | None = None
        self._start: SessionStart | None = None
        self._risk: Payload = {}
        self._clinic_info: Payload = {}
        self._drafter = Bookkeeper("laserguard-incident-drafts", self._drafting_failed)
        self._session_id: str | None = None

    # --- what the console shows ----------------------------------------------------------

    def protocol_for(self, check: str) -> Protocol | None:
        return self.clinic.book.protocol_for_halt(check)

    # --- the Recorder protocol ------------------------------------------------------------

    @property
    def failed(self) -> str | None:
        return self._inner.failed

    def start_session(self, start: SessionStart) -> str:
        self._start = start
        self._session_id = self._inner.start_session(start)
        return self._session_id

    def record(self, session_id: str, kind: str, payload: Payload) -> None:
        self._inner.record(session_id, kind, payload)
        if kind == EventKind.RISK_ASSESSMENT:
            self._risk = dict(payload)
        elif kind == EventKind.PATIENT_INFORMATION:
            self._clinic_info = dict(payload)
            if self._start is not None:
                sheet = before_sheet(
                    self.clinic.sheets,
                    patient_id=self._start.patient_id,
                    skin_type=self._start.skin_type.value,
                    risk=self._risk,
                    questions=self.clinic.questions,
                )
                given = sheet.given(given_to=self._start.patient_id, given_by=self._start.operator)
                self._inner.record(session_id, KIND_SHEET_GIVEN, given)

    def start_writing(self, on_failure: Callable[[str], None]) -> None:
        self._inner.start_writing(on_failure)

    def event(self, session_id: str, kind: str, payload: Payload) -> None:
        self._inner.event(session_id, kind, payload)
        if kind == EventKind.TRIP:
            cause = self.clinic.book.for_halt(str(payload.get("check")))
            if cause is not None and cause.draft_incident:
                self._drafter.post(self._open_draft, session_id, dict(payload))

    def telemetry(self, session_id: str, t_s: float, channel: int, value: float) -> None:
        self._inner.telemetry(session_id, t_s, channel, value)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self._inner.flush(timeout_s)

    def pulse_gap(self, laser_id: str, session_id: str, counter_now: int | None) -> PulseGap | None:
        return self._inner.pulse_gap(laser_id, session_id, counter_now)

    def end_session(self, session_id: str, reason: str) -> None:
        self._drafter.close(timeout_s=2 * FLUSH_WAIT_S + 1.0)
        if self._start is not None:
            sheet = after_sheet(
                self.clinic.sheets, patient_id=self._start.patient_id, clinic=self._clinic_info
            )
            given = sheet.given(given_to=self._start.patient_id, given_by=self._start.operator)
            self._inner.event(session_id, KIND_SHEET_GIVEN, given)
        self._inner.end_session(session_id, reason)
        if self._start is None or self._inner.failed:
            return
        try:
            planned = self.clinic.followups.for_session(session_id, by=self._start.operator)
        except (SessionLogError, IncidentInputError, IncidentRefused) as e:
            self.problems.append(f"the session's follow-up was not scheduled: {e}")
            return
        self.followup = None if planned is None else planned.followup_id

    def close(self) -> None:
        self._drafter.close()
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- drafts -----------------------------------------------------------------------------

    def _open_draft(self, session_id: str, trip: Payload) -> None:
        """On the drafting thread: wait for the trip to be written, then open its draft."""
        if not self._inner.flush(FLUSH_WAIT_S):
            raise SessionLogError("the trip was not written in time: no draft without it")
        check, t_s = trip.get("check"), trip.get("t_s")
        logged = [
            e
            for e in self.log.events(session_id, [EventKind.TRIP])
            if e.payload.get("check") == check and e.payload.get("t_s") == t_s
        ]
        if not logged:
            raise SessionLogError(f"the {check} trip at {t_s} s is not in the session's record")
        by = "laserguard (halt on " + str(check) + ")"
        incident = self.clinic.incidents.open_draft(session_id, logged[-1], by=by)
        self.drafts.append(incident.incident_id)
        self._inner.event(
            session_id,
            KIND_DRAFT_OPENED,
            {
                "incident_id": incident.incident_id,
                "trip_seq": logged[-1].seq,
                "protocol": incident.protocol,
            },
        )

    def _drafting_failed(self, task: str, error: str) -> None:
        why = f"{task}: {error}"
        self.problems.append(f"a draft incident was not opened: {why}")
        if self._session_id is not None:
            self._inner.event(self._session_id, KIND_DRAFT_FAILED, {"error": why})

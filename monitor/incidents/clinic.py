"""The clinic's records over one session log, wired together: incidents, follow-ups, sheets.

``ClinicRecords.over(log, photos=...)`` is what the CLI and the console use. Completing an
incident (or opening one with its details) schedules its follow-up by the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from device_profiles.loader import load_contraindications
from device_profiles.protocols import LoadedSheets, load_patient_information
from device_profiles.schema import Contraindications
from monitor.incidents.followups import FollowUps
from monitor.incidents.incidents import Incident, IncidentBook
from monitor.incidents.photos import PhotoStore
from monitor.incidents.protocols import Book, load_book
from monitor.incidents.sheets import Sheet, Which, sheet_for
from monitor.incidents.streams import DEFAULT_CLOCK, Clock, resolve_session
from monitor.record.chain_log import ChainLog

__all__ = ["ClinicRecords"]


@dataclass
class ClinicRecords:
    log: ChainLog
    book: Book
    incidents: IncidentBook
    followups: FollowUps
    sheets: LoadedSheets
    questions: Contraindications

    @classmethod
    def over(
        cls,
        log: ChainLog,
        *,
        photos: PhotoStore,
        book: Book | None = None,
        sheets: LoadedSheets | None = None,
        clock: Clock = DEFAULT_CLOCK,
    ) -> ClinicRecords:
        the_book = book if book is not None else load_book()
        followups = FollowUps(log, the_book, clock)
        incidents = IncidentBook(log, the_book, photos, clock)

        def follow_up(incident: Incident, by: str) -> None:
            severity = incident.details.get("severity")
            if isinstance(severity, int):
                followups.for_incident(incident.session_id, incident.incident_id, severity, by=by)

        incidents.on_documented.append(follow_up)
        return cls(
            log,
            the_book,
            incidents,
            followups,
            sheets if sheets is not None else load_patient_information(),
            load_contraindications(),
        )

    @classmethod
    def photos_beside(cls, log_path: str | Path) -> PhotoStore:
        return PhotoStore.beside(log_path)

    def sheet(self, session_id: str, which: Which) -> tuple[Sheet, dict[str, object] | None]:
        """A session's sheet rebuilt from its verified record, and the record of the one
        given (None if none was recorded)."""
        info = resolve_session(self.log, session_id)
        record = self.log.read_verified(info.session_id)
        events = [(e.kind, e.payload) for e in record.events]
        sheet = sheet_for(which, events, self.sheets, self.questions)
        given = next(
            (
                p
                for k, p in reversed(events)
                if k == "patient_sheet_given" and p.get("sheet") == str(which)
            ),
            None,
        )
        return sheet, given

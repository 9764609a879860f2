"""What can go wrong with a clinic record, by whose fault.

::

    Exception
    ├── IncidentInputError   the request cannot be carried out as given: an unknown session or
    │                        incident, a photo that is no PNG or JPEG or too large, a follow-up
    │                        due in the past, a grade not on the scale (CLI exit 2)
    └── IncidentRefused      the record's state does not allow it: completing an incident that
                             is closed, ticking a step twice, an outcome for a follow-up that
                             has one (CLI exit 1)

The session log's own errors (``monitor.record.errors``) pass through unchanged. Every
refusal happens before anything is written: nothing is stored.
"""

from __future__ import annotations

__all__ = ["IncidentInputError", "IncidentRefused"]


class IncidentInputError(ValueError):
    """A request about a clinic record that cannot be carried out as given."""


class IncidentRefused(Exception):
    """A request the record's state does not allow; the message says why."""

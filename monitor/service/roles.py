"""Who may do what at the console: five roles, each a fixed set of permissions.

======================  ========  =========  ======  =======  =====
permission              operator  clinician  biomed  auditor  admin
======================  ========  =========  ======  =======  =====
view (live, session)    yes       yes        yes     yes      yes
read_records            yes       yes        yes     yes      no
treat                   yes       yes        no      no       no
emergency_halt          yes       yes        yes     no       no
attest                  no        yes        no      no       no
end_test_spot_pause     no        yes        no      no       no
record_incidents        yes       yes        no      no       no
sign_off_incidents      no        yes        no      no       no
calibrate, profiles     no        no         yes     no       no
manage_users            no        no         no      no       yes
read_fleet              no        yes        no      yes      yes
======================  ========  =========  ======  =======  =====

``treat``: start a session, preview and apply settings, arm, stand by, reset an alarm, end
the session, print the aftercare sheet, confirm the eye shields. ``record_incidents``: tick the
emergency protocol's checklist, record an incident, attach its photos, schedule a follow-up
and record its outcome; ``sign_off_incidents``: complete, correct and close an incident. A clinician also runs treatments (a physician at the
laser). The auditor reads and changes nothing. The administrator manages users and sees the
live view, not the patients' records. No permission widens a limit or arms past the gate:
every command is judged by the session itself.

``read_fleet``: the fleet view across clinics (``api_fleet``), read-only. Not the operator's:
an operator runs the laser in front of them, and the fleet view shows other clinics' lasers,
follow-ups and patient pseudonyms, which that work does not need (least privilege).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ROLE_PERMISSIONS", "Permission", "Role", "allowed"]


class Role(StrEnum):
    OPERATOR = "operator"
    CLINICIAN = "clinician"
    BIOMED = "biomed"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW = "view"
    READ_RECORDS = "read_records"
    TREAT = "treat"
    EMERGENCY_HALT = "emergency_halt"
    ATTEST = "attest"
    END_TEST_SPOT_PAUSE = "end_test_spot_pause"
    SIGN_OFF_INCIDENTS = "sign_off_incidents"
    RECORD_INCIDENTS = "record_incidents"
    CALIBRATE = "calibrate"
    PROFILES = "profiles"
    MANAGE_USERS = "manage_users"
    READ_FLEET = "read_fleet"


_P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(
        {_P.VIEW, _P.READ_RECORDS, _P.TREAT, _P.EMERGENCY_HALT, _P.RECORD_INCIDENTS}
    ),
    Role.CLINICIAN: frozenset(
        {
            _P.VIEW,
            _P.READ_RECORDS,
            _P.TREAT,
            _P.EMERGENCY_HALT,
            _P.ATTEST,
            _P.END_TEST_SPOT_PAUSE,
            _P.SIGN_OFF_INCIDENTS,
            _P.RECORD_INCIDENTS,
            _P.READ_FLEET,
        }
    ),
    Role.BIOMED: frozenset(
        {_P.VIEW, _P.READ_RECORDS, _P.EMERGENCY_HALT, _P.CALIBRATE, _P.PROFILES}
    ),
    Role.AUDITOR: frozenset({_P.VIEW, _P.READ_RECORDS, _P.READ_FLEET}),
    Role.ADMIN: frozenset({_P.VIEW, _P.MANAGE_USERS, _P.READ_FLEET}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[str]:
    """The roles that hold ``permission``, for a refusal's words."""
    return [str(r) for r in Role if permission in ROLE_PERMISSIONS[r]]

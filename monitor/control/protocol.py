"""The control channel's message set, version 1: one JSON object per line, 64 KiB at most.

Every message carries ``"v": 1``. A client sends commands; each has an ``id`` (an integer
the client chooses) and a ``cmd``::

    {"v": 1, "id": 7, "cmd": "arm", "who": "jo"}

The bridge answers each command with exactly one ``reply`` carrying the same ``id``::

    {"v": 1, "type": "reply", "id": 7, "ok": true, "result": {...}}
    {"v": 1, "type": "reply", "id": 7, "ok": false,
     "error": {"kind": "refused", "message": "arming needs STANDBY (now HALTED)"}}

and, unasked, sends a ``hello`` when a client connects, ``snapshot`` messages (at
``SNAPSHOT_HZ``) and ``event`` messages (every event the session records, in order), each
with a sequence number and the wall time of its data, so a reader can tell stale data.

Error kinds (``ErrorKind``): ``bad_request`` (a malformed message, or input that is not a
usable value: nothing changed), ``refused`` (the session will not do it now: the message says
why; nothing changed), ``no_session`` (the command needs a running session), ``busy`` (too
many commands queued or sent: try again), ``internal`` (a bug on the bridge's side, reported,
never raised into the session).

Commands (``Command``): ``ping`` (the console's heartbeat), ``session_info``,
``start_session``, ``propose_settings`` (the gate's verdict; changes nothing),
``apply_settings``, ``arm``, ``standby``, ``emergency_halt``, ``reset`` (one condition, with a
reason), ``end_test_spot_pause``, ``confirm_eye_shields`` (periorbital treatment arms only
after it), ``protocol_step`` (one step of the emergency protocol shown for a halt, done),
``end_session``, ``attach_console``. ``start_session`` states the treatment site (a
clinical session without one is refused by the session) and the patient's test spots. Nothing in the set can
widen a limit or arm past the gate: each command calls the session's own method.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from device_profiles.clinical import TestSpotReading, TreatmentSite
from device_profiles.schema import SkinType

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "SNAPSHOT_HZ",
    "AlarmView",
    "BadMessage",
    "BridgeStatus",
    "Command",
    "ErrorKind",
    "EventMessage",
    "Hello",
    "ReplyError",
    "SessionSnapshot",
    "Settings",
    "SnapshotMessage",
    "decode_command",
    "encode",
    "json_safe",
]

PROTOCOL_VERSION = 1
#: The longest line either side sends or accepts, newline included; a longer one is refused.
MAX_MESSAGE_BYTES = 64 * 1024
#: Snapshots per second the bridge sends to every client (the page needs 10 or more).
SNAPSHOT_HZ = 20.0
#: An event payload larger than this is sent as a stub (its size): the log holds it whole.
MAX_EVENT_PAYLOAD_BYTES = 8 * 1024

Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
NeededReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
]
# A pseudonymous id: letters, digits and a few separators, never a name with spaces.
PatientId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"
    ),
]
CheckName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
QuestionId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class ErrorKind(StrEnum):
    BAD_REQUEST = "bad_request"
    REFUSED = "refused"
    NO_SESSION = "no_session"
    BUSY = "busy"
    INTERNAL = "internal"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Settings(_Strict):
    """The four laser settings, finite numbers in their units."""

    fluence_j_cm2: StrictFloat
    pulse_ms: StrictFloat
    spot_mm: StrictFloat
    rep_rate_hz: StrictFloat

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.model_dump().items()}


class AttestationIn(_Strict):
    """A clinician accepts the relative contraindications it ``covers`` for this patient."""

    clinician: Who
    statement: NeededReason
    covers: list[QuestionId] = Field(max_length=32)


class _Cmd(_Strict):
    v: Literal[1] = 1
    id: int = Field(0, ge=0, le=2**53)


class Ping(_Cmd):
    cmd: Literal["ping"] = "ping"


class SessionInfoCmd(_Cmd):
    cmd: Literal["session_info"] = "session_info"


class StartSession(_Cmd):
    cmd: Literal["start_session"] = "start_session"
    who: Who
    patient_id: PatientId
    skin_type: SkinType | None = None
    melanin_index: StrictFloat | None = Field(None, ge=0, le=99)
    answers: dict[QuestionId, StrictBool] = Field(max_length=64)
    attestation: AttestationIn | None = None
    # Where on the body; a clinical session without it is refused (demo and test: the legs).
    # The risk questionnaire is judged for this site and the setup's laser.
    site: TreatmentSite | None = None
    # The patient's test spots and their readings (types IV-VI, and rows that ask for one).
    test_spots: list[TestSpotReading] = Field(default_factory=list, max_length=16)


class ProposeSettings(_Cmd):
    cmd: Literal["propose_settings"] = "propose_settings"
    settings: Settings


class ApplySettings(_Cmd):
    cmd: Literal["apply_settings"] = "apply_settings"
    who: Who
    settings: Settings


class Arm(_Cmd):
    cmd: Literal["arm"] = "arm"
    who: Who


class Standby(_Cmd):
    cmd: Literal["standby"] = "standby"
    who: Who


class EmergencyHalt(_Cmd):
    cmd: Literal["emergency_halt"] = "emergency_halt"
    who: Who
    reason: Reason = ""


class Reset(_Cmd):
    """Reset one latched condition, named, with a reason (refused while its cause persists)."""

    cmd: Literal["reset"] = "reset"
    who: Who
    condition: CheckName
    reason: NeededReason


class EndTestSpotPause(_Cmd):
    cmd: Literal["end_test_spot_pause"] = "end_test_spot_pause"
    who: Who
    reason: NeededReason


class ConfirmEyeShields(_Cmd):
    """``who`` checked that the patient wears eye shields (periorbital treatment arms only
    after this, recorded with the name)."""

    cmd: Literal["confirm_eye_shields"] = "confirm_eye_shields"
    who: Who


class ProtocolStep(_Cmd):
    """One immediate step of the emergency protocol shown for a halt of ``check`` is done:
    recorded in the running session's log with who and when, in the order done."""

    cmd: Literal["protocol_step"] = "protocol_step"
    who: Who
    check: CheckName
    step: StrictInt = Field(ge=1, le=64)
    note: Reason = ""


class EndSession(_Cmd):
    cmd: Literal["end_session"] = "end_session"
    who: Who
    reason: Reason = ""


class AttachConsole(_Cmd):
    """This connection becomes the running session's console (its heartbeat counts)."""

    cmd: Literal["attach_console"] = "attach_console"
    who: Who


Command = Annotated[
    Ping
    | SessionInfoCmd
    | StartSession
    | ProposeSettings
    | ApplySettings
    | Arm
    | Standby
    | EmergencyHalt
    | Reset
    | EndTestSpotPause
    | ConfirmEyeShields
    | ProtocolStep
    | EndSession
    | AttachConsole,
    Field(discriminator="cmd"),
]
_COMMAND = TypeAdapter(Command)
COMMAND_NAMES = tuple(
    str(m.model_fields["cmd"].default)
    for m in (
        Ping, SessionInfoCmd, StartSession, ProposeSettings, ApplySettings, Arm, Standby,
        EmergencyHalt, Reset, EndTestSpotPause, ConfirmEyeShields, ProtocolStep, EndSession,
        AttachConsole,
    )
)  # fmt: skip


class BadMessage(ValueError):
    """A line that is not a command of this protocol; ``id`` when the line had one."""

    def __init__(self, message: str, msg_id: int | None = None) -> None:
        super().__init__(message)
        self.msg_id = msg_id


def _problem(e: ValidationError) -> str:
    """The first problem of a validation error, in one sentence with the field's path."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or len(err["loc"]) > 1)
    if err["type"] == "union_tag_invalid":
        return f"unknown command; the commands are: {', '.join(COMMAND_NAMES)}"
    if err["type"] == "union_tag_not_found":
        return "a command needs 'cmd'"
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def decode_command(line: bytes) -> Command:
    """One line from a client as a command; ``BadMessage`` (one sentence) if it is not one."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("not a JSON object on one line") from None
    if not isinstance(raw, dict):
        raise BadMessage("a message must be a JSON object")
    msg_id = raw.get("id")
    msg_id = msg_id if isinstance(msg_id, int) and not isinstance(msg_id, bool) else None
    if raw.get("v") != PROTOCOL_VERSION:
        raise BadMessage(
            f"protocol version {raw.get('v')!r}: this bridge speaks version {PROTOCOL_VERSION}",
            msg_id,
        )
    try:
        return _COMMAND.validate_python(raw)
    except ValidationError as e:
        raise BadMessage(_problem(e), msg_id) from None


def json_safe(value: object, depth: int = 0) -> object:
    """``value`` with NaN and infinities as None and anything unknown as text: a payload
    from the session never makes the channel fail to encode."""
    if depth > 20:
        return "..."
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value]
    try:
        as_float = float(value)  # type: ignore[arg-type]  # numpy scalars and the like
    except (TypeError, ValueError):
        return str(value)
    return as_float if math.isfinite(as_float) else None


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line of UTF-8 JSON, newline included (no NaN: strict JSON)."""
    return (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()


# --- what the bridge sends ---------------------------------------------------------------------


class ReplyError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ErrorKind
    message: str
    detail: dict[str, Any] | None = None


class BridgeStatus(BaseModel):
    """The bridge process: which setup, which mode, whether a session runs and who watches."""

    model_config = ConfigDict(extra="allow")

    setup: str
    mode: str
    pid: int
    session_id: str | None
    console_attached: bool
    heartbeat_timeout_s: float
    snapshot_hz: float


class Hello(BaseModel):
    model_config = ConfigDict(extra="allow")

    v: Literal[1]
    type: Literal["hello"]
    bridge: BridgeStatus
    max_message_bytes: int


class AlarmView(BaseModel):
    """One alert condition as the page shows it (IEC 60601-1-8 priorities).

    ``latched``: a halt that needs a person's reset (even once its cause has cleared);
    ``active``: its cause is present now. Priority ``high`` is every halt, ``medium`` a
    warning, ``low`` a notice.
    """

    model_config = ConfigDict(extra="allow")

    check: str
    priority: Literal["high", "medium", "low"]
    what: str
    reason: str
    since_t_s: float | None
    active: bool
    latched: bool
    occurrences: int


class TripView(BaseModel):
    model_config = ConfigDict(extra="allow")

    check: str
    reason: str
    t_s: float
    severity: str


class SessionSnapshot(BaseModel):
    """The core's ``Snapshot.as_dict()`` (typed; fields the core adds later pass through)."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    t_s: float
    state: Literal["CONNECTING", "STANDBY", "READY", "HALTED", "FAILED", "ENDED"]
    laser_state: str
    skin_type: str
    skin_temp_c: float | None
    plate_temp_c: float | None
    flow_l_min: float | None
    settings: dict[str, float | None]
    pulses: float | None
    pulses_out_of_limits: int
    links: dict[str, bool]
    permit: bool
    active_conditions: list[str]
    trips: list[TripView]
    warnings: list[TripView]
    test_spots: dict[str, Any] | None
    reaction_time_ms: dict[str, Any]
    limits: dict[str, list[float]]


class SnapshotMessage(BaseModel):
    """What the bridge sends ``SNAPSHOT_HZ`` times a second. ``t_wall``: when the data was
    read (seconds since the epoch); ``seq`` grows by one per message the bridge sends."""

    model_config = ConfigDict(extra="allow")

    v: Literal[1]
    type: Literal["snapshot"]
    seq: int
    t_wall: float
    bridge: BridgeStatus
    session: SessionSnapshot | None
    alarms: list[AlarmView]
    trips_total: int
    warnings_total: int


class EventMessage(BaseModel):
    """One event the session recorded (the log holds the same, chained)."""

    model_config = ConfigDict(extra="allow")

    v: Literal[1]
    type: Literal["event"]
    seq: int
    t_wall: float
    session_id: str
    kind: str
    payload: dict[str, Any]

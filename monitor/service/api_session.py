"""The running treatment: start it, gate settings, arm, stand by, halt, reset, end.

Each route checks the signed-in user's role, then sends one command over the control channel
with the user's name as ``who`` (the session records it with every action) and returns the
bridge's answer. Whether the command is carried out is the session's decision alone: the gate,
the risk assessment, the latched halts. A refusal is 409 with the session's own words, and
nothing changed.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel

from monitor.control.client import ControlError
from monitor.control.protocol import (
    ApplySettings,
    Arm,
    AttestationIn,
    ConfirmEyeShields,
    EmergencyHalt,
    EndSession,
    EndTestSpotPause,
    ProposeSettings,
    ProtocolStep,
    Reset,
    Settings,
    Standby,
    StartSession,
)
from monitor.service.deps import Principal, ServiceState, get_state, need, refuse_role
from monitor.service.live import snapshot_json
from monitor.service.models import (
    HaltBody,
    ProtocolStepBody,
    ReasonBody,
    RequiredReasonBody,
    ResetBody,
    StartSessionBody,
)
from monitor.service.roles import Permission, allowed

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["session"])
State = Annotated[ServiceState, Depends(get_state)]
Viewer = Annotated[Principal, Depends(need(Permission.VIEW))]
Treater = Annotated[Principal, Depends(need(Permission.TREAT))]
Halter = Annotated[Principal, Depends(need(Permission.EMERGENCY_HALT))]
Clinician = Annotated[Principal, Depends(need(Permission.END_TEST_SPOT_PAUSE))]
Recorder = Annotated[Principal, Depends(need(Permission.RECORD_INCIDENTS))]


def send(st: ServiceState, command: BaseModel) -> dict[str, Any]:
    """One command to the bridge, within the service's command rate."""
    if not st.limiter.take():
        raise HTTPException(
            429, "too many commands: wait a moment and try again", headers={"Retry-After": "1"}
        )
    try:
        return st.port.call(command)
    finally:
        st.session_info.changed()


# The GET routes that only read what the service holds are ``async``: nothing in them blocks,
# and a route in the thread pool costs a hand-over there and back per request.
@router.get("/contraindications", summary="The risk questionnaire, from the contraindication data")
async def contraindications(who: Viewer, st: State) -> dict[str, Any]:
    form = st.form
    return {
        "version": form.version,
        "questions": [
            {
                "id": q.id,
                "question": q.question,
                "kind": q.kind,
                "advice": q.advice,
                "restrictions": q.restrictions.model_dump(),
                "needs_attestation": q.kind == "relative",
            }
            for q in form.questions
        ],
    }


@router.get("/bridge", summary="Whether the bridge answers, and what it runs")
async def bridge(who: Viewer, st: State) -> dict[str, Any]:
    snap = st.port.latest
    age = None if snap is None else round(time.time() - snap.t_wall, 3)
    return {
        "channel_connected": st.port.connected,
        "bridge": None if snap is None else snap.bridge.model_dump(),
        "snapshot_age_s": age,
    }


@router.get(
    "/session/live",
    summary="The newest snapshot (what /ws/live pushes)",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def live(who: Viewer, st: State) -> Response:
    """Encoded once per snapshot (``live.snapshot_json``), not once per request."""
    snap = st.port.latest
    if snap is None:
        raise HTTPException(503, "no snapshot from the bridge yet: is the bridge running?")
    age = round(time.time() - snap.t_wall, 3)
    text = f'{snapshot_json(snap, st.port.connected)},"age_s":{json.dumps(age)}}}'
    return Response(content=text, media_type="application/json")


@router.get("/session", summary="The running session: who, whom, typing, risk, limits")
def session_info(who: Viewer, st: State) -> dict[str, Any]:
    """Asked of the bridge once per change of the session (``session_info``), not per request."""
    try:
        return st.session_info.get(st.port)
    except ControlError as e:
        if e.kind == "no_session":
            raise HTTPException(404, str(e)) from e
        raise


@router.post("/session", status_code=201, summary="Start a session")
def start_session(body: StartSessionBody, who: Treater, st: State) -> dict[str, Any]:
    """An attestation is the signed-in clinician's own: its clinician is the user's name."""
    attestation = None
    if body.attestation is not None:
        if not allowed(who.role, Permission.ATTEST):
            raise refuse_role(who, Permission.ATTEST)
        attestation = AttestationIn(
            clinician=who.name, statement=body.attestation.statement, covers=body.attestation.covers
        )
    cmd = StartSession(
        who=who.name,
        patient_id=body.patient_id,
        skin_type=body.skin_type,
        melanin_index=body.melanin_index,
        answers=body.answers,
        attestation=attestation,
        site=body.site,
        test_spots=body.test_spots,
    )
    return send(st, cmd)


@router.post("/session/gate-preview", summary="The gate's verdict on settings; changes nothing")
def gate_preview(body: Settings, who: Treater, st: State) -> dict[str, Any]:
    return send(st, ProposeSettings(settings=body))


@router.post("/session/settings", summary="Send settings that pass the gate to the laser")
def apply_settings(body: Settings, who: Treater, st: State) -> dict[str, Any]:
    return send(st, ApplySettings(who=who.name, settings=body))


@router.post("/session/arm", summary="STANDBY to READY, if every precondition holds")
def arm(who: Treater, st: State) -> dict[str, Any]:
    return send(st, Arm(who=who.name))


@router.post("/session/standby", summary="READY to STANDBY")
def standby(who: Treater, st: State) -> dict[str, Any]:
    return send(st, Standby(who=who.name))


@router.post(
    "/session/emergency-halt", summary="Stop emission now (never refused while a session runs)"
)
def emergency_halt(who: Halter, st: State, body: HaltBody | None = None) -> dict[str, Any]:
    # Never rate-limited: a halt must not wait behind anyone's flood.
    try:
        return st.port.call(EmergencyHalt(who=who.name, reason="" if body is None else body.reason))
    finally:
        st.session_info.changed()


@router.post("/session/reset", summary="Reset one latched alarm, with a reason")
def reset(body: ResetBody, who: Treater, st: State) -> dict[str, Any]:
    """Refused (409) while the condition's cause persists; releases the halt only when no
    other alarm stays latched, and then to STANDBY: a reset never arms."""
    return send(st, Reset(who=who.name, condition=body.condition, reason=body.reason))


@router.post("/session/test-spot-pause/end", summary="A clinician ends the test-spot pause")
def end_test_spot_pause(body: RequiredReasonBody, who: Clinician, st: State) -> dict[str, Any]:
    return send(st, EndTestSpotPause(who=who.name, reason=body.reason))


@router.post(
    "/session/eye-shields",
    summary="The signed-in user checked the patient's eye shields (periorbital arms only then)",
)
def confirm_eye_shields(who: Treater, st: State) -> dict[str, Any]:
    return send(st, ConfirmEyeShields(who=who.name))


@router.post(
    "/session/protocol-steps",
    summary="One step of the emergency protocol shown for a halt, done (recorded with who)",
)
def protocol_step(body: ProtocolStepBody, who: Recorder, st: State) -> dict[str, Any]:
    """For a halt whose protocol opens no draft incident (a draft has its own checklist:
    ``POST /api/incidents/{id}/ticks``); refused for a halt this session did not have."""
    return send(st, ProtocolStep(who=who.name, check=body.check, step=body.step, note=body.note))


@router.post("/session/end", summary="End the session: laser to STANDBY, log closed")
def end_session(who: Treater, st: State, body: ReasonBody | None = None) -> dict[str, Any]:
    result = send(st, EndSession(who=who.name, reason="" if body is None else body.reason))
    if isinstance(result.get("session_id"), str):
        result["aftercare_url"] = f"/api/sessions/{result['session_id']}/aftercare"
    return result

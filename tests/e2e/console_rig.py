"""A bridge serving its control channel over a real Unix socket, a real session on the
simulator (its own process), a real SQLite log, and a console client: torn down in order."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device_profiles.loader import LoadedSetup, load_contraindications, with_endpoints
from device_profiles.schema import SkinType
from monitor.control.channel_process import ChannelProcess
from monitor.control.client import ControlClient
from monitor.control.host import HostConfig, SessionHost
from monitor.control.protocol import ApplySettings, Arm, Settings, SnapshotMessage, StartSession
from monitor.control.server import ControlServer
from monitor.core.calibration_status import CalibrationStatus
from monitor.core.recorder import Recorder
from monitor.core.records import SessionMode
from monitor.record.sqlite_store import SessionLog
from sim.control import SimControl, SimSpec
from tests.e2e.conftest import SETTINGS, wait_for

__all__ = ["ChannelRig", "all_no", "wait_snapshot"]


def all_no() -> dict[str, bool]:
    return {q.id: False for q in load_contraindications().questions}


def wait_snapshot(
    client: ControlClient, cond: Callable[[SnapshotMessage], bool], timeout_s: float, what: str
) -> SnapshotMessage:
    def ok() -> SnapshotMessage | None:
        snap = client.latest
        return snap if snap is not None and cond(snap) else None

    found: SnapshotMessage = wait_for(ok, timeout_s, what)
    return found


class ChannelRig:
    def __init__(self, loaded: LoadedSetup, tmp: Path) -> None:
        self.loaded = loaded
        self.tmp = tmp
        # A short folder: a Unix socket's path is at most 107 bytes.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="lgc-"))
        self.socket = self.sock_dir / "control.sock"
        self.db = tmp / "log.sqlite3"
        self.sim: SimControl | None = None
        self.host: SessionHost | None = None
        self.server: ControlServer | ChannelProcess | None = None
        self.clients: list[ControlClient] = []

    def start(
        self,
        scenario: str,
        *,
        speed: float = 1.0,
        heartbeat_timeout_s: float = 1.0,
        calibration_for: Callable[[Recorder], CalibrationStatus | None] | None = None,
        mode: SessionMode = SessionMode.TEST,
        recorder_factory: Callable[[Path], Recorder] | None = None,
        channel_process: bool = False,
    ) -> ControlClient:
        """``channel_process``: the channel served by a process of its own, as ``serve`` does."""
        spec = SimSpec(
            run_dir=str(self.tmp / "sim"),
            setup=self.loaded.source,
            scenario=scenario,
            speed=speed,
            log_file=str(self.tmp / "sim.log"),
        )
        self.sim = SimControl(spec).start()
        setup = with_endpoints(self.loaded.setup, self.sim.endpoints)
        config = HostConfig(
            self.loaded,
            setup,
            self.db,
            mode,
            realtime=False,
            heartbeat_timeout_s=heartbeat_timeout_s,
            calibration_for=calibration_for,
        )
        self.host = (
            SessionHost(config)
            if recorder_factory is None
            else SessionHost(config, recorder_factory=recorder_factory)
        ).start()
        if channel_process:
            self.server = ChannelProcess(self.socket, self.host).start()
        else:
            self.server = ControlServer(self.socket, self.host).start()
        return self.client()

    def client(self, *, console: bool = True) -> ControlClient:
        c = ControlClient(self.socket, console=console).start()
        assert c.wait_connected(5.0), c.last_error
        self.clients.append(c)
        wait_for(lambda: c.latest is not None or self.server is None, 3, "a first snapshot")
        return c

    def start_session(self, client: ControlClient, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"answers": all_no(), **extra}
        cmd = StartSession(who="op.jo", patient_id="PAT-0042", skin_type=SkinType.III, **fields)
        return client.call(cmd)

    def armed(self, client: ControlClient) -> dict[str, Any]:
        info = self.start_session(client)
        client.call(ApplySettings(who="op.jo", settings=Settings(**SETTINGS)))
        client.call(Arm(who="op.jo"))
        wait_snapshot(
            client, lambda s: s.session is not None and s.session.state == "READY", 3, "READY"
        )
        return info

    def log_events(self, session_id: str, kinds: list[str] | None = None) -> list[Any]:
        with SessionLog(self.db, read_only=True) as log:
            return log.events(session_id, kinds=kinds)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        if self.host is not None:
            self.host.close("test finished")  # laser to STANDBY while the devices answer
        if self.server is not None:
            self.server.close()
        if self.sim is not None:
            time.sleep(0.05)
            self.sim.stop()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

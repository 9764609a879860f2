// The emergency protocol for a halt on skin temperature (filled in by issue 10's screens).
export class ProtocolPanel {
  constructor(root) { this.root = root; }
  reset(sessionId) { this.sessionId = sessionId; }
  event(ev) {}
  alarms(list) {}
}

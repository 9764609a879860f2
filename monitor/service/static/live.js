// The live feed: /ws/live, reconnecting; and how old the data shown is.
//
// Staleness uses the data's own times, never the tablet's clock against the server's: each
// snapshot says when its data was read (t_wall) and when the service sent it (sent_wall), both
// on the server's clock; the age is (sent_wall - t_wall) plus the time since it arrived here.
// A closed socket, or nothing for STALE_AFTER_S, is stale: the page must not show old values
// as current.

export const STALE_AFTER_S = 1.0;

export class LiveFeed {
  constructor(onSnapshot, onEvent, onChannel) {
    this.onSnapshot = onSnapshot;
    this.onEvent = onEvent;
    this.onChannel = onChannel;
    this.ws = null;
    this.lastSeq = -1;
    this.lastArrived = 0;      // performance.now() at the newest snapshot
    this.ageAtSend = Infinity; // seconds between its data and its sending (server clock)
    this.retryMs = 500;
    this.stopped = true;
    this.channelDown = null;   // the service's words while the bridge cannot be reached
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/live`);
    this.ws = ws;
    ws.onopen = () => { this.retryMs = 500; };
    ws.onmessage = (m) => this.take(m.data);
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      if (!this.stopped) setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 4000);
    };
    ws.onerror = () => ws.close();
  }

  take(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    if (msg && msg.type === "batch" && Array.isArray(msg.messages)) {
      msg.messages.forEach((m) => this.takeOne(m)); // one tick's messages, in order
    } else {
      this.takeOne(msg);
    }
  }

  takeOne(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "snapshot") {
      if (typeof msg.seq !== "number" || typeof msg.t_wall !== "number") return;
      if (msg.seq <= this.lastSeq && this.lastSeq - msg.seq < 1000) {
        return; // an old or repeated snapshot is not news (a restarted bridge counts anew)
      }
      this.lastSeq = msg.seq;
      this.lastArrived = performance.now();
      const sent = typeof msg.sent_wall === "number" ? msg.sent_wall : msg.t_wall;
      this.ageAtSend = Math.max(0, sent - msg.t_wall);
      this.channelDown = msg.channel_connected === false ? "the bridge cannot be reached" : null;
      this.onSnapshot(msg);
    } else if (msg.type === "event") {
      this.onEvent(msg);
    } else if (msg.type === "channel" && msg.connected === false) {
      this.channelDown = msg.why || "the bridge cannot be reached";
      this.onChannel(this.channelDown);
    }
  }

  /** Seconds since the newest snapshot's data was read; Infinity when there is none. */
  ageS() {
    if (this.lastArrived === 0) return Infinity;
    return this.ageAtSend + (performance.now() - this.lastArrived) / 1000;
  }

  /** Why the live data is stale, or null when it is current. */
  staleWhy() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return "connection to the console lost";
    if (this.channelDown) return this.channelDown;
    const age = this.ageS();
    if (!Number.isFinite(age)) return "no live data yet";
    if (age > STALE_AFTER_S) return `live data ${age.toFixed(1)} s old`;
    return null;
  }
}

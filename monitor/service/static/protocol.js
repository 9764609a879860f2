// The emergency protocol for a halt, shown at once, with the checklist the operator ticks.
// The protocol comes from the service's book (GET /api/protocols), matched to the halt's cause
// as soon as the alarm appears; nothing waits for the log. Each tick goes to the service with
// the signed-in user: onto the draft incident the halt opened (POST /api/incidents/{id}/ticks)
// once it exists, else into the running session's log (POST /api/session/protocol-steps).
// The page shows ticks as the service recorded them (who, when), in the order done.

import { api } from "./api.js";

export class ProtocolPanel {
  constructor(root, canTick) {
    this.root = root;
    this.canTick = canTick;
    this.book = null;
    this.reset(null);
  }

  reset(sessionId) {
    this.sessionId = sessionId;
    this.shown = new Map(); // protocol id -> {protocol, check, incident, ticks: [{step, by, at}]}
    this.root.textContent = "";
  }

  async loadBook() {
    if (this.book) return this.book;
    const r = await api("GET", "/api/protocols");
    if (r.ok) this.book = r.data;
    return this.book;
  }

  event(ev) {
    // A step recorded in the session's log (from this page or another console).
    if (ev.kind === "console_protocol_step" && ev.session_id === this.sessionId) {
      const entry = this.shown.get(ev.payload.protocol_id);
      if (entry && !entry.ticks.some((t) => t.step === ev.payload.step)) {
        entry.ticks.push({ step: ev.payload.step, by: ev.payload.by, at: new Date(ev.t_wall * 1000).toISOString() });
        this.render();
      }
    }
  }

  async alarms(list) {
    if (!this.sessionId) return;
    const halts = list.filter((a) => a.priority === "high");
    if (!halts.length) return;
    const book = await this.loadBook();
    if (!book) return;
    let added = false;
    for (const a of halts) {
      const cause = book.halt_causes[a.check];
      if (!cause || !cause.protocol || this.shown.has(cause.protocol)) continue;
      const protocol = book.protocols.find((p) => p.id === cause.protocol);
      if (!protocol) continue;
      this.shown.set(protocol.id, { protocol, check: a.check, incident: null, ticks: [] });
      added = true;
    }
    if (added) { this.render(); this.findDrafts(); }
  }

  async findDrafts() {
    // The draft opens moments after the halt is written: look a few times.
    for (let i = 0; i < 10 && this.sessionId; i++) {
      const r = await api("GET", `/api/incidents?session_id=${this.sessionId}&status=draft`);
      if (r.ok) {
        let missing = false;
        for (const entry of this.shown.values()) {
          if (entry.incident) continue;
          const draft = r.data.find((d) => d.protocol && d.protocol.id === entry.protocol.id);
          if (draft) {
            entry.incident = draft.incident_id;
            for (const t of draft.ticks) {
              if (!entry.ticks.some((x) => x.step === t.step)) entry.ticks.push(t);
            }
          } else if (entry.protocol) missing = true;
        }
        this.render();
        if (!missing) return;
      }
      await new Promise((done) => setTimeout(done, 1000));
    }
  }

  async tick(entry, step, button, out) {
    button.disabled = true;
    const r = entry.incident
      ? await api("POST", `/api/incidents/${entry.incident}/ticks`, { step })
      : await api("POST", "/api/session/protocol-steps", { check: entry.check, step });
    if (!r.ok) { button.disabled = false; out.textContent = r.detail; return; }
    if (entry.incident) {
      entry.ticks = r.data.ticks;
    } else if (!entry.ticks.some((t) => t.step === step)) {
      entry.ticks.push({ step, by: "you", at: new Date().toISOString() });
    }
    this.render();
  }

  render() {
    this.root.textContent = "";
    for (const entry of this.shown.values()) {
      const p = entry.protocol;
      const box = document.createElement("section");
      box.className = "protocol";
      box.dataset.protocol = p.id;
      if (entry.incident) box.dataset.incident = entry.incident;
      const h = document.createElement("h2");
      h.textContent = `Emergency protocol: ${p.title}`;
      const why = document.createElement("p");
      why.className = "hint";
      why.textContent = `Halt on ${entry.check}. ` + (entry.incident
        ? `Draft incident ${entry.incident.slice(0, 8)}: a clinician closes or completes it.`
        : "Steps are recorded in this session's log.");
      const signs = document.createElement("p");
      signs.textContent = `Signs: ${p.signs}`;
      const list = document.createElement("ol");
      list.className = "checklist";
      p.immediate_steps.forEach((text, i) => {
        const step = i + 1;
        const li = document.createElement("li");
        li.dataset.step = String(step);
        const done = entry.ticks.find((t) => t.step === step);
        const words = document.createElement("span");
        words.textContent = text + " ";
        li.append(words);
        const out = document.createElement("span");
        out.className = "refusal";
        if (done) {
          li.classList.add("done");
          const stamp = document.createElement("span");
          stamp.className = "tick";
          stamp.textContent = `✓ done by ${done.by} at ${String(done.at).replace("T", " ")}`;
          li.append(stamp);
        } else if (this.canTick()) {
          const b = document.createElement("button");
          b.className = "tick-button";
          b.textContent = "Done";
          b.addEventListener("click", () => this.tick(entry, step, b, out));
          li.append(b);
        }
        li.append(out);
        list.append(li);
      });
      const notify = document.createElement("p");
      notify.textContent = `Tell: ${p.notify.join("; ")}. Refer when: ${p.refer_when.join("; ")}.`;
      const source = document.createElement("p");
      source.className = "hint";
      source.textContent = `Source: ${p.source}`;
      box.append(h, why, signs, list, notify, source);
      this.root.append(box);
    }
  }
}

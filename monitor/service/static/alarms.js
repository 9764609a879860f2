// The alarm list, IEC 60601-1-8 style: high (every halt) red flashing at 2 Hz, medium
// (a warning) yellow flashing at 0.6 Hz, low cyan steady; the priority also in words and in
// shape (!!! / !! / !). A latched halt has its own reset: a reason, one condition at a time.
// The service refuses a reset while the cause persists; its words stay under the alarm.

const SHAPE = { high: "!!!", medium: "!!", low: "!" };
const WORD = { high: "HIGH PRIORITY", medium: "MEDIUM PRIORITY", low: "LOW PRIORITY" };

export class AlarmList {
  constructor(root, onReset) {
    this.root = root;
    this.onReset = onReset; // async (check, reason) => {ok, detail}
    this.rows = new Map();  // check -> {el, parts}
    this.refusals = new Map(); // check -> the service's words
  }

  el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  row(check) {
    let r = this.rows.get(check);
    if (r) return r;
    const el = this.el("div", "alarm");
    el.dataset.check = check;
    el.setAttribute("role", "alert");
    const shape = this.el("div", "shape");
    const body = this.el("div");
    const head = this.el("div", "words");
    const prio = this.el("span", "prio");
    const what = this.el("span", "what");
    head.append(prio, what);
    const detail = this.el("div", "detail");
    body.append(head, detail);
    const reset = this.el("form", "reset");
    const reason = this.el("input");
    reason.placeholder = "reason for the reset";
    reason.maxLength = 500;
    reason.className = "reset-reason";
    const button = this.el("button", "reset-button", "Reset");
    button.type = "submit";
    reset.append(reason, button);
    reset.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const why = reason.value.trim();
      if (!why) { this.refuse(check, "a reset needs a reason: say why it is safe to go on"); return; }
      button.disabled = true;
      const result = await this.onReset(check, why);
      button.disabled = false;
      if (result.ok) {
        reason.value = "";
        this.refusals.delete(check);
        refused.hidden = true;
      } else {
        this.refuse(check, result.detail);
      }
    });
    const refused = this.el("div", "refused");
    refused.hidden = true;
    el.append(shape, body, reset, refused);
    r = { el, shape, prio, what, detail, reset, refused };
    this.rows.set(check, r);
    this.root.append(el);
    return r;
  }

  refuse(check, words) {
    this.refusals.set(check, words);
    const r = this.rows.get(check);
    if (r) { r.refused.textContent = `Reset refused: ${words}`; r.refused.hidden = false; }
  }

  /** Show the snapshot's alarms (already ordered: high first, newest first within). */
  show(alarms) {
    const seen = new Set();
    alarms.forEach((a, i) => {
      seen.add(a.check);
      const r = this.row(a.check);
      const prio = ["high", "medium", "low"].includes(a.priority) ? a.priority : "high";
      r.el.className = `alarm ${prio}${a.latched && !a.active ? " cleared" : ""}`;
      r.el.dataset.priority = prio;
      r.el.dataset.active = String(a.active);
      r.el.dataset.latched = String(a.latched);
      r.shape.className = `shape ${prio}`;
      r.shape.textContent = SHAPE[prio];
      r.prio.textContent = WORD[prio];
      r.what.textContent = a.what;
      const state = a.latched
        ? (a.active ? "cause present: HALT latched" : "cause cleared: HALT latched until reset")
        : "active";
      const times = a.occurrences > 1 ? ` · ${a.occurrences} times` : "";
      r.detail.textContent = `${a.reason} · ${state}${times} · ${a.check}`;
      r.reset.hidden = !a.latched;
      if (this.root.children[i] !== r.el) this.root.insertBefore(r.el, this.root.children[i] || null);
    });
    for (const [check, r] of this.rows) {
      if (!seen.has(check)) { r.el.remove(); this.rows.delete(check); this.refusals.delete(check); }
    }
  }
}

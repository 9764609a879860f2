// Incidents, follow-ups and reports: the clinic's records in the console. Every change goes to
// the service with the signed-in user; refusals are shown in the service's own words.
// The operator records (opens, attaches photos, schedules follow-ups, records outcomes); the
// clinician also signs off (completes a draft, corrects, closes); the auditor reads.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const FIELDS = ["type", "severity", "body_site", "noticed_at", "noticed_by", "actions_taken", "referral"];

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function link(text, href) {
  const a = el("a", text, "small");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener";
  return a;
}

export class Records {
  constructor(can) {
    this.can = can;
    this.book = null;
    $("summary-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      window.open(this.summaryUrl("html"), "_blank", "noopener");
    });
    for (const id of ["summary-from", "summary-to"]) {
      $(id).addEventListener("change", () => {
        $("summary-csv").href = this.summaryUrl("csv");
        $("summary-json").href = this.summaryUrl("json");
      });
    }
  }

  summaryUrl(format) {
    return `/api/reports/clinic?from=${$("summary-from").value}&to=${$("summary-to").value}&format=${format}`;
  }

  say(text) { $("records-error").textContent = text; }

  async open() {
    this.say("");
    if (!this.book) {
      const b = await api("GET", "/api/protocols");
      if (b.ok) this.book = b.data;
    }
    await this.listIncidents();
    await this.listFollowups();
  }

  async listIncidents() {
    const r = await api("GET", "/api/incidents");
    const body = $("incidents").querySelector("tbody");
    body.textContent = "";
    if (!r.ok) { this.say(r.detail); return; }
    for (const i of r.data.slice().reverse()) {
      const tr = el("tr");
      tr.dataset.incident = i.incident_id;
      tr.dataset.status = i.status;
      tr.append(el("td", i.incident_id.slice(0, 8)), el("td", `${i.session_id.slice(0, 8)} (${i.patient_id})`),
        el("td", i.status), el("td", i.protocol ? i.protocol.title : "–"),
        el("td", i.details.severity === undefined ? "–" : String(i.details.severity)));
      const td = el("td");
      const b = el("button", "Open", "small open-incident");
      b.addEventListener("click", () => this.show(i.incident_id));
      td.append(b);
      tr.append(td);
      body.append(tr);
    }
  }

  async listFollowups() {
    const r = await api("GET", "/api/followups?due=true");
    const all = await api("GET", "/api/followups");
    const body = $("followups").querySelector("tbody");
    body.textContent = "";
    if (!r.ok || !all.ok) { this.say(r.detail || all.detail); return; }
    const due = new Set(r.data.map((f) => f.followup_id));
    // Due and overdue first, then the rest not done (scheduled).
    const rows = [...r.data, ...all.data.filter((f) => !due.has(f.followup_id) && f.status === "scheduled")];
    for (const f of rows) {
      const tr = el("tr");
      tr.dataset.followup = f.followup_id;
      tr.dataset.status = f.status;
      tr.append(el("td", f.followup_id.slice(0, 8)), el("td", f.patient_id), el("td", f.due_by),
        el("td", f.status.toUpperCase(), f.status === "overdue" ? "refusal" : ""), el("td", f.method));
      const td = el("td");
      if (this.can("record_incidents")) {
        const pick = el("select");
        for (const o of ["resolved", "improving", "unchanged", "worse", "referred", "not_reached"]) pick.append(new Option(o, o));
        const note = el("input");
        note.placeholder = "note";
        const b = el("button", "Record outcome", "small");
        const out = el("span", "", "refusal");
        b.addEventListener("click", async () => {
          const res = await api("POST", `/api/followups/${f.followup_id}/outcome`, { outcome: pick.value, note: note.value });
          if (!res.ok) { out.textContent = res.detail; return; }
          await this.listFollowups();
        });
        td.append(pick, note, b, out);
      }
      tr.append(td);
      body.append(tr);
    }
  }

  async show(id) {
    const r = await api("GET", `/api/incidents/${id}`);
    const box = $("incident");
    box.hidden = false;
    box.textContent = "";
    if (!r.ok) { box.append(el("p", r.detail, "refusal")); return; }
    const i = r.data;
    box.dataset.incident = i.incident_id;
    box.dataset.status = i.status;
    box.append(el("h3", `Incident ${i.incident_id.slice(0, 8)}: ${i.status}` +
      (i.protocol ? ` (${i.protocol.title})` : "")));
    box.append(el("p", `Session ${i.session_id.slice(0, 8)}, patient ${i.patient_id}; opened ${i.opened_at} by ${i.opened_by}` +
      (i.trigger ? `; after the halt on ${i.trigger.check} (${i.trigger.reason})` : "")));
    const reports = el("p");
    reports.append(link("Session report", `/api/reports/session/${i.session_id}`), " ",
      link("Information sheet (before)", `/api/reports/session/${i.session_id}/sheet/before`), " ",
      link("Aftercare sheet (after)", `/api/reports/session/${i.session_id}/sheet/after`));
    box.append(reports);
    if (Object.keys(i.details).length) {
      const dl = el("dl", "", "details");
      for (const k of FIELDS) if (k in i.details) dl.append(el("dt", k), el("dd", String(i.details[k])));
      box.append(dl);
    }
    if (i.checklist) {
      const ol = el("ol", "", "checklist");
      i.checklist.forEach((text, n) => {
        const t = i.ticks.find((x) => x.step === n + 1);
        ol.append(el("li", t ? `${text} ✓ ${t.by} ${t.at}` : `${text} (not ticked)`));
      });
      box.append(el("h4", "Checklist"), ol);
    }
    for (const p of i.photos) {
      const img = el("img");
      img.src = `/api/incidents/${i.incident_id}/photos/${p.sha256}`;
      img.alt = p.caption || "photo";
      img.className = "photo";
      box.append(img);
    }
    for (const problem of i.photo_problems || []) box.append(el("p", problem, "refusal"));
    const hist = el("ol", "", "history");
    for (const h of i.history) hist.append(el("li", `${h.at} ${h.by}: ${h.what}`));
    box.append(el("h4", "History (never overwritten)"), hist);
    const out = el("p", "", "refusal");
    out.id = "incident-result";
    if (this.can("sign_off_incidents") && i.status !== "closed") this.signOff(box, i, out);
    if (this.can("record_incidents") && i.status !== "closed") this.recordParts(box, i, out);
    box.append(out);
  }

  detailsForm(i, title, button, send) {
    const form = el("form", "", "incident-form");
    form.append(el("h4", title));
    const inputs = {};
    for (const k of FIELDS) {
      const label = el("label", `${k} `);
      let input;
      if (k === "type") {
        input = el("select");
        for (const p of (this.book ? this.book.protocols : [])) input.append(new Option(p.title, p.id));
        if (i.protocol) input.value = i.protocol.id;
      } else if (k === "severity") {
        input = el("select");
        for (const g of (this.book ? this.book.severity_scale : [])) input.append(new Option(`${g.grade} ${g.name}`, String(g.grade)));
      } else {
        input = el("input");
        if (k === "noticed_at") input.value = new Date().toISOString().slice(0, 16);
      }
      if (i.details[k] !== undefined) input.value = String(i.details[k]);
      input.name = k;
      inputs[k] = input;
      label.append(input);
      form.append(label);
    }
    const b = el("button", button);
    b.type = "submit";
    form.append(b);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const details = {};
      for (const k of FIELDS) details[k] = k === "severity" ? Number(inputs[k].value) : inputs[k].value;
      await send(details);
    });
    return form;
  }

  async after(r, i, out) {
    if (!r.ok) { out.textContent = r.detail; return; }
    await this.show(i.incident_id);
    await this.listIncidents();
    await this.listFollowups();
  }

  signOff(box, i, out) {
    if (i.status === "draft") {
      box.append(this.detailsForm(i, "Complete (a clinician)", "Complete the incident", async (details) =>
        this.after(await api("POST", `/api/incidents/${i.incident_id}/complete`, details), i, out)));
      const reason = el("input");
      reason.placeholder = "why no injury";
      reason.className = "no-injury-reason";
      const b = el("button", "Close as no injury", "no-injury");
      b.addEventListener("click", async () => this.after(await api("POST",
        `/api/incidents/${i.incident_id}/close`, { outcome: "no_injury", reason: reason.value }), i, out));
      box.append(el("h4", "Or close it"), reason, b);
      return;
    }
    const why = el("input");
    why.placeholder = "why the correction";
    why.className = "amend-why";
    box.append(this.detailsForm(i, "Correct (a new entry; both versions kept)", "Record the correction", async (details) => {
      const changes = {};
      for (const k of FIELDS) if (String(details[k]) !== String(i.details[k])) changes[k] = details[k];
      await this.after(await api("POST", `/api/incidents/${i.incident_id}/amend`, { why: why.value, changes }), i, out);
    }), why);
    const reason = el("input");
    reason.placeholder = "reason";
    const pick = el("select");
    for (const o of ["resolved", "referred"]) pick.append(new Option(o, o));
    const b = el("button", "Close");
    b.addEventListener("click", async () => this.after(await api("POST",
      `/api/incidents/${i.incident_id}/close`, { outcome: pick.value, reason: reason.value }), i, out));
    box.append(el("h4", "Close"), pick, reason, b);
  }

  recordParts(box, i, out) {
    const file = el("input");
    file.type = "file";
    file.accept = "image/png,image/jpeg";
    file.className = "photo-file";
    const caption = el("input");
    caption.placeholder = "caption";
    const up = el("button", "Attach photo", "attach-photo");
    up.addEventListener("click", async () => {
      const f = file.files[0];
      if (!f) { out.textContent = "choose a PNG or JPEG first"; return; }
      let r;
      try {
        const res = await fetch(`/api/incidents/${i.incident_id}/photos?caption=${encodeURIComponent(caption.value)}`,
          { method: "POST", credentials: "same-origin", headers: { "content-type": f.type || "application/octet-stream" }, body: f });
        const data = await res.json().catch(() => ({ detail: `refused (${res.status})` }));
        r = res.ok ? { ok: true, data } : { ok: false, detail: data.detail };
      } catch (e) { r = { ok: false, detail: "the console service cannot be reached" }; }
      await this.after(r, i, out);
    });
    box.append(el("h4", "Photo (PNG or JPEG, stored by its content hash)"), file, caption, up);

    const due = el("input");
    due.type = "datetime-local";
    due.className = "followup-due";
    const method = el("input");
    method.value = "phone call";
    method.className = "followup-method";
    const reason = el("input");
    reason.placeholder = "reason";
    reason.className = "followup-reason";
    const b = el("button", "Schedule follow-up", "schedule-followup");
    b.addEventListener("click", async () => {
      const body = { session_id: i.session_id, incident_id: i.incident_id, due_by: due.value,
        method: method.value, reason: reason.value };
      await this.after(await api("POST", "/api/followups", body), i, out);
    });
    box.append(el("h4", "Follow-up"), due, method, reason, b);
  }
}

// The fleet page: every laser of the clinic chain and the clinic summary, read-only, from
// /api/fleet. Values are written as text (textContent), never as HTML.
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

function notice(text) {
  const el = $("notice");
  el.textContent = text || "";
  el.hidden = !text;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbody, rows, columns) {
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of columns) cell(tr, typeof c === "function" ? c(r) : r[c]);
    tbody.appendChild(tr);
  }
  if (!rows.length) cell(tbody.appendChild(document.createElement("tr")), "none");
}

function asOfParam() {
  const d = $("as-of-input").value;
  return d ? `&as_of=${encodeURIComponent(d)}` : "";
}

function calibration(c) {
  const last = c.last_calibration;
  const words = {
    ok: "valid", due: "due soon", overdue: "OVERDUE", failed: "FAILED", none: "NONE on record",
  }[c.state] || c.state;
  const when = last ? ` (${last.performed_at.slice(0, 10)}; due ${last.next_due || "-"})` : "";
  return [words + when, `cal-${c.state}`];
}

async function loadLasers() {
  const clinic = $("clinic").value;
  const q = `?${clinic ? `clinic=${encodeURIComponent(clinic)}` : ""}${asOfParam()}`;
  const r = await api("GET", `/api/fleet/lasers${q}`);
  if (!r.ok) {
    notice(r.status === 401 ? "Sign in at the console first." : r.detail);
    return;
  }
  notice("");
  $("as-of").textContent = `as of ${new Date(r.data.as_of * 1000).toISOString().slice(0, 16)}Z`;
  const tbody = $("lasers").querySelector("tbody");
  tbody.replaceChildren();
  for (const l of r.data.lasers) {
    const tr = document.createElement("tr");
    cell(tr, l.bridge_id);
    cell(tr, l.clinic);
    cell(tr, l.last_session ? `${l.last_session.started_at} (${l.last_session.end_reason || "open"})` : "none");
    cell(tr, l.sessions);
    cell(tr, Object.entries(l.halts_by_cause).map(([k, n]) => `${k} ${n}`).join(", ") || "none");
    const [words, cls] = calibration(l.calibration);
    cell(tr, "").appendChild(Object.assign(document.createElement("span"), { textContent: words, className: cls }));
    const f = l.followups;
    cell(tr, `${f.open} open, ${f.due} due, ${f.overdue} overdue`, f.overdue ? "overdue" : "");
    cell(tr, l.incidents_open);
    cell(tr, `seq ${l.head_seq} at ${l.shipped_at}` + (l.refusals ? `; ${l.refusals} refused: ${l.last_refusal}` : ""),
      l.refusals ? "overdue" : "");
    tbody.appendChild(tr);
  }
  if (!r.data.lasers.length) cell(tbody.appendChild(document.createElement("tr")), "no laser has shipped yet");
}

async function loadClinics() {
  const r = await api("GET", "/api/fleet/clinics");
  if (!r.ok) return;
  for (const c of r.data.clinics) {
    if (c === null) continue;
    $("clinic").appendChild(Object.assign(document.createElement("option"), { value: c, textContent: c }));
  }
}

function summaryQuery() {
  const clinic = $("clinic").value;
  return `from=${encodeURIComponent($("from").value)}&to=${encodeURIComponent($("to").value)}` +
    (clinic ? `&clinic=${encodeURIComponent(clinic)}` : "") + asOfParam();
}

async function loadSummary(ev) {
  if (ev) ev.preventDefault();
  const r = await api("GET", `/api/fleet/summary?${summaryQuery()}`);
  if (!r.ok) {
    $("summary-refusal").textContent = r.detail;
    $("summary").hidden = true;
    return;
  }
  $("summary-refusal").textContent = "";
  const s = r.data;
  $("summary").hidden = false;
  const v = s.verification;
  $("verification").textContent = v.ok ? "Every chain verified, intact." : `VERIFICATION FAILED: ${v.reason}`;
  $("verification").className = v.ok ? "ok-text" : "refusal";
  $("totals").textContent = `${s.sessions} sessions, ${s.incidents} incidents ` +
    `(${s.incidents_per_100_sessions} per 100 sessions), ${s.drafts_open.length} drafts waiting for a clinician`;
  fill($("halts").querySelector("tbody"), Object.entries(s.halts_by_cause), [(x) => x[0], (x) => x[1]]);
  fill($("by-type").querySelector("tbody"), s.incidents_by_type, ["type", "incidents", "per_100_sessions"]);
  fill($("breakdown").querySelector("tbody"), s.breakdown,
    ["dimension", "value", "sessions", "incidents", "per_100_sessions"]);
  fill($("overdue").querySelector("tbody"), s.followups_overdue,
    [(f) => f.followup_id.slice(0, 8), (f) => f.patient_id, "due_by", "reason"]);
  $("csv").href = `/api/fleet/summary?${summaryQuery()}&format=csv`;
}

function init() {
  const today = new Date();
  const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1));
  const next = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
  $("from").value = first.toISOString().slice(0, 10);
  $("to").value = next.toISOString().slice(0, 10);
  $("clinic").addEventListener("change", loadLasers);
  $("as-of-input").addEventListener("change", loadLasers);
  $("summary-form").addEventListener("submit", loadSummary);
  loadClinics().then(loadLasers);
}

init();

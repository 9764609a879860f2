// The operator's page: sign in, start a session, settings through the gate, arm / stand by,
// the live state and alarms, resets, the emergency halt, end and aftercare.
// The page decides nothing: every command goes to the service, which the bridge's session
// judges; a refusal's words are shown as they come.

import { api } from "./api.js";
import { LiveFeed } from "./live.js";
import { TempChart } from "./chart.js";
import { AlarmList } from "./alarms.js";
import { ProtocolPanel } from "./protocol.js";
import { Records } from "./records.js";
import { TestSpotForm } from "./testspots.js";

const $ = (id) => document.getElementById(id);
const SETTINGS = ["fluence_j_cm2", "pulse_ms", "spot_mm", "rep_rate_hz"];
const STATE_SHAPE = { HALTED: "!!! ", FAILED: "!!! " };

const page = {
  me: null,
  info: null,           // GET /api/session of the running session
  sessionId: null,
  endedId: null,        // the session this page just ended: its last snapshots are not news
  lastSnapshot: null,
  previewed: null,      // the settings (JSON) whose gate verdict passed, unchanged since
  questions: [],
};

const chart = new TempChart($("chart"));
const alarms = new AlarmList($("alarms"), (check, reason) =>
  api("POST", "/api/session/reset", { condition: check, reason }).then((r) => {
    if (r.ok) say("command-result", r.data.released
      ? `Reset ${check}: the halt is released, the laser is in ${r.data.state} (arm again to go on)`
      : `Reset ${check}; still latched: ${r.data.still_latched.join(", ") || "none"}`, true);
    return r;
  }));
const protocol = new ProtocolPanel($("protocol"), () => can("record_incidents"));
const records = new Records(can);
const feed = new LiveFeed(onSnapshot, onEvent, () => {});

function can(permission) {
  return page.me !== null && page.me.permissions.includes(permission);
}

function say(id, text, good = false) {
  const el = $(id);
  el.textContent = text;
  el.className = good ? "ok-text" : "refusal";
}

function show(view) {
  for (const v of ["signin", "start", "session", "ended", "records"]) $(`view-${v}`).hidden = v !== view;
  page.view = view;
}

function num(v, digits = 1) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–";
}

// --- sign in ----------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  say("signin-error", "");
  const r = await api("POST", "/api/auth/sign-in", {
    username: $("signin-name").value.trim(),
    password: $("signin-password").value,
  });
  $("signin-password").value = "";
  if (!r.ok) { say("signin-error", r.detail); return; }
  await signedIn(r.data);
});

$("sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/sign-out");
  feed.stop();
  page.me = null;
  document.body.classList.add("signed-out");
  $("halt-button").hidden = true;
  show("signin");
});

async function signedIn(me) {
  page.me = me;
  document.body.classList.remove("signed-out");
  $("who-name").textContent = `${me.username} (${me.role})`;
  $("halt-button").hidden = !can("emergency_halt");
  $("records-button").hidden = !can("read_records");
  feed.start();
  await findSession();
}

async function findSession() {
  const r = await api("GET", "/api/session");
  if (r.ok) { enterSession(r.data); return; }
  page.info = null;
  page.sessionId = null;
  // A person who opened the records meanwhile stays there; "Back" leads to this view.
  const settle = (view) => { if (page.view === "records") page.before = view; else show(view); };
  if (can("treat")) { await loadQuestions(); settle("start"); }
  else { settle("session"); $("notice").textContent = "No session is running."; $("notice").hidden = false; }
}

// --- start a session --------------------------------------------------------------------------

async function loadQuestions() {
  if (page.questions.length) return;
  const r = await api("GET", "/api/contraindications");
  if (!r.ok) { say("start-error", r.detail); return; }
  page.questions = r.data.questions;
  $("form-version").textContent = `(form version ${r.data.version})`;
  const list = $("questions");
  list.textContent = "";
  for (const q of r.data.questions) {
    const li = document.createElement("li");
    li.dataset.question = q.id;
    const text = document.createElement("span");
    text.textContent = `${q.question} `;
    const kind = document.createElement("span");
    kind.className = `kind ${q.kind}`;
    kind.textContent = q.kind;
    const answer = document.createElement("span");
    answer.className = "answer";
    for (const [value, word] of [["yes", "Yes"], ["no", "No"]]) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = `q-${q.id}`;
      input.value = value;
      input.addEventListener("change", attestationNeeded);
      label.append(input, ` ${word}`);
      answer.append(label);
    }
    li.append(text, kind, answer);
    list.append(li);
  }
}

function answers() {
  const out = {};
  const missing = [];
  for (const q of page.questions) {
    const picked = document.querySelector(`input[name="q-${q.id}"]:checked`);
    if (picked === null) missing.push(q.id); else out[q.id] = picked.value === "yes";
  }
  return { out, missing };
}

function attestationNeeded() {
  const { out } = answers();
  const relative = page.questions.filter((q) => q.needs_attestation && out[q.id] === true);
  $("attestation").hidden = relative.length === 0;
  $("attest-covers").textContent = relative.length
    ? `Covers: ${relative.map((q) => q.id).join(", ")}` : "";
  $("attest-role").hidden = can("attest");
  $("attest-statement").disabled = !can("attest");
  return relative.map((q) => q.id);
}

const testSpots = new TestSpotForm($("test-spot-list"), $("add-test-spot"));

$("start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  say("start-error", "");
  const { out, missing } = answers();
  if (missing.length) { say("start-error", `Answer every question (yes or no): ${missing.join(", ")}`); return; }
  if (!$("site").value) { say("start-error", "Choose the treatment site."); return; }
  const spots = testSpots.values();
  if (spots.error) { say("start-error", spots.error); return; }
  const body = {
    patient_id: $("patient-id").value.trim(), answers: out, site: $("site").value,
    test_spots: spots.spots,
  };
  if ($("skin-type").value) body.skin_type = $("skin-type").value;
  if ($("melanin-index").value !== "") body.melanin_index = Number($("melanin-index").value);
  const covers = attestationNeeded();
  if (covers.length && can("attest") && $("attest-statement").value.trim()) {
    body.attestation = { statement: $("attest-statement").value.trim(), covers };
  }
  const r = await api("POST", "/api/session", body);
  if (!r.ok) { say("start-error", r.detail); return; }
  testSpots.reset();
  enterSession(r.data);
});

// --- the session ------------------------------------------------------------------------------

function enterSession(info) {
  page.info = info;
  page.sessionId = info.session_id;
  page.previewed = null;
  chart.clear();
  protocol.reset(info.session_id);
  $("notice").hidden = true;
  $("s-patient").textContent = info.patient_id;
  $("s-skin").textContent = info.skin_type;
  $("s-operator").textContent = info.operator;
  $("s-mode").textContent = `${info.mode} mode`;
  $("s-site").textContent = info.site || "";
  eyeShields(info);
  const rows = info.limits_for_skin_type || [];
  for (const key of SETTINGS) $(`l-${key}`).textContent = limitsText(rows, key);
  $("verdict").hidden = true;
  $("apply-button").disabled = true;
  say("command-result", "");
  const canTreat = can("treat");
  for (const id of ["preview-button", "apply-button", "arm-button", "standby-button", "end-button"]) {
    $(id).hidden = !canTreat;
  }
  show("session");
}

function eyeShields(info) {
  const needed = Boolean(info.eye_shields_needed);
  $("eye-shields").hidden = !needed;
  $("eye-shields").className = info.eye_shields_confirmed_by ? "ok-text" : "refusal";
  $("eye-shields-button").hidden = !needed || Boolean(info.eye_shields_confirmed_by) || !can("treat");
  if (info.eye_shields_confirmed_by) {
    $("eye-shields").textContent = `Eye shields checked by ${info.eye_shields_confirmed_by}.`;
  }
}

$("eye-shields-button").addEventListener("click", async () => {
  const r = await api("POST", "/api/session/eye-shields");
  if (!r.ok) { say("command-result", r.detail); return; }
  eyeShields({ ...page.info, eye_shields_confirmed_by: r.data.eye_shields_confirmed_by });
});

$("records-button").addEventListener("click", async () => {
  page.before = page.view === "records" ? page.before : page.view;
  show("records");
  await records.open();
});

$("records-back").addEventListener("click", () => show(page.before || "session"));

function limitsText(rows, key) {
  if (!rows.length) return "no row for this skin type: treatment refused";
  return rows.map((r) => {
    if (r.contraindicated) return `not for this skin type (spot ${r.spot_mm.min}–${r.spot_mm.max})`;
    const spot = rows.length > 1 && key !== "spot_mm" ? ` (spot ${r.spot_mm.min}–${r.spot_mm.max})` : "";
    if (key === "rep_rate_hz") return `≤ ${r.rep_rate_hz_max}${spot}`;
    const range = r[key];
    return range ? `${range.min}–${range.max}${spot}` : "–";
  }).join("; ");
}

function holds(row, settings, key) {
  const v = settings[key];
  if (typeof v !== "number") return true;
  if (key === "rep_rate_hz") return v <= row.rep_rate_hz_max;
  return v >= row[key].min && v <= row[key].max;
}

// For the display only (the gate decides): a setting is out when no row of this skin type's
// table holds all the settings together, and no row holds this one.
function outOfLimits(rows, settings, key) {
  if (typeof settings[key] !== "number") return false;
  const usable = rows.filter((r) => !r.contraindicated);
  if (usable.some((r) => SETTINGS.every((k) => holds(r, settings, k)))) return false;
  return !usable.some((r) => holds(r, settings, key));
}

function proposed() {
  const out = {};
  for (const key of SETTINGS) {
    const raw = $(`p-${key}`).value;
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v)) return { error: `give a number for ${key}` };
    out[key] = v;
  }
  return { settings: out };
}

for (const key of SETTINGS) {
  $(`p-${key}`).addEventListener("input", () => {
    page.previewed = null;
    $("apply-button").disabled = true;
    $("verdict").hidden = true;
  });
}

$("preview-button").addEventListener("click", async () => {
  const p = proposed();
  if (p.error) { say("command-result", p.error); return; }
  const r = await api("POST", "/api/session/gate-preview", p.settings);
  if (!r.ok) { say("command-result", r.detail); return; }
  say("command-result", "");
  const v = $("verdict");
  v.hidden = false;
  v.className = r.data.ok ? "pass" : "fail";
  const notes = (r.data.notes || []).join("; ");
  v.textContent = r.data.ok
    ? `The gate passes these settings: ${r.data.explanation}${notes ? ` (${notes})` : ""}. Nothing is sent until you apply.`
    : `The gate refuses these settings: ${r.data.explanation}`;
  page.previewed = r.data.ok ? JSON.stringify(p.settings) : null;
  $("apply-button").disabled = !r.data.ok;
});

$("apply-button").addEventListener("click", async () => {
  const p = proposed();
  if (p.error || JSON.stringify(p.settings) !== page.previewed) {
    say("command-result", "the settings changed since the gate's verdict: check them again");
    $("apply-button").disabled = true;
    return;
  }
  const r = await api("POST", "/api/session/settings", p.settings);
  if (!r.ok) { say("command-result", r.detail); return; }
  say("command-result", "Settings sent to the laser and read back.", true);
});

async function command(path, done) {
  const r = await api("POST", path);
  if (!r.ok) { say("command-result", r.detail); return; }
  say("command-result", done(r.data), true);
}

$("arm-button").addEventListener("click", () => command("/api/session/arm", (d) => `Laser ${d.state}.`));
$("standby-button").addEventListener("click", () => command("/api/session/standby", (d) => `Laser ${d.state}.`));

$("halt-button").addEventListener("click", async () => {
  const r = await api("POST", "/api/session/emergency-halt", { reason: "emergency halt button on the console" });
  if (!r.ok) { $("notice").textContent = `Emergency halt: ${r.detail}`; $("notice").hidden = false; return; }
  say("command-result", `Emergency halt: laser ${r.data.state}.`, true);
});

$("end-button").addEventListener("click", async () => {
  const reason = $("end-reason").value.trim();
  const r = await api("POST", "/api/session/end", reason ? { reason } : undefined);
  if (!r.ok) { say("command-result", r.detail); return; }
  ended(r.data);
});

function ended(summary) {
  page.info = null;
  page.sessionId = null;
  page.endedId = summary.session_id;
  const trips = (summary.trips || []).map((t) => t.check);
  $("ended-summary").textContent = `Session ${summary.session_id.slice(0, 8)} ended (${summary.state}). ` +
    (trips.length ? `Halts: ${[...new Set(trips)].join(", ")}.` : "No halt.") +
    (summary.pulses_out_of_limits ? ` ${summary.pulses_out_of_limits} pulses out of limits.` : "");
  const link = $("aftercare-link");
  link.href = summary.aftercare_url || `/api/sessions/${summary.session_id}/aftercare`;
  link.hidden = !can("read_records");
  $("report-link").href = `/api/reports/session/${summary.session_id}`;
  $("report-link").hidden = !can("read_records");
  for (const which of ["before", "after"]) {
    const a = $(`sheet-${which}-link`);
    a.href = `/api/reports/session/${summary.session_id}/sheet/${which}`;
    a.hidden = !can("read_records");
  }
  show("ended");
}

$("new-session-button").addEventListener("click", async () => { await findSession(); });

// --- live -------------------------------------------------------------------------------------

function onEvent(ev) {
  protocol.event(ev);
}

function onSnapshot(msg) {
  page.lastSnapshot = msg;
  const s = msg.session;
  if (page.me && !page.finding && ((s && s.session_id !== page.sessionId &&
      s.session_id !== page.endedId) ||
      (!s && page.sessionId && page.view === "session"))) {
    // A session started or ended from another console, or the page was reloaded.
    page.finding = true;
    findSession().finally(() => { page.finding = false; });
  }
  showState(msg);
  alarms.show(msg.alarms || []);
  protocol.alarms(msg.alarms || []);
  if (!s) return;
  chart.band = s.limits && s.limits.skin_temp_c ? s.limits.skin_temp_c : null;
  chart.add(msg.t_wall, s.skin_temp_c, s.plate_temp_c);
  $("v-skin").textContent = num(s.skin_temp_c);
  $("v-band").textContent = chart.band ? `${chart.band[0]}–${chart.band[1]}` : "–";
  $("v-plate").textContent = num(s.plate_temp_c);
  $("v-flow").textContent = num(s.flow_l_min, 2);
  $("v-pulses").textContent = s.pulses === null ? "–" : String(Math.round(s.pulses));
  const dose = s.thermal_dose && s.thermal_dose.current;
  $("dose-box").hidden = !dose;
  if (dose) {
    const halt = s.thermal_dose.cem43_halt_min;
    const limit = halt === null || halt === undefined
      ? `warn at ${s.thermal_dose.cem43_warn_min}` : `halt at ${halt}`;
    $("v-dose").textContent = `${num(Number(dose.cem43_min), 2)} (${limit})`;
  }
  const trend = (msg.alarms || []).some((a) => a.check === "skin_temp_trend" && a.active);
  chart.trend = trend;
  $("trend").hidden = !trend;
  const rows = page.info ? page.info.limits_for_skin_type || [] : [];
  for (const key of SETTINGS) {
    const cell = $(`r-${key}`);
    cell.textContent = num(s.settings[key], key === "fluence_j_cm2" ? 0 : 1);
    cell.classList.toggle("out", outOfLimits(rows, s.settings, key));
  }
  const cal = $("s-calibration");
  cal.hidden = !s.calibration_note;
  cal.textContent = s.calibration_note ? `Calibration: ${s.calibration_note}` : "";
  // Red when the note refuses arming (the bridge says so in its own field), amber when it
  // only warns: never decided from the note's words.
  cal.classList.toggle("blocks", Boolean(s.calibration_note) && s.calibration_blocks_arming === true);
}

function showState(msg) {
  const s = msg.session;
  let word = "NO SESSION";
  if (s) {
    word = s.state;
    if (s.state === "READY" && s.laser_state === "FIRING") word = "FIRING";
  }
  const box = $("state");
  box.dataset.state = s ? word : "NONE";
  $("state-shape").textContent = STATE_SHAPE[word] || "";
  $("state-word").textContent = word;
  const relay = $("relay");
  if (s) {
    relay.textContent = s.permit ? "relay CLOSED: emission permitted" : "relay OPEN: no emission";
    relay.className = `badge ${s.permit ? "" : "good"}`;
  } else {
    relay.textContent = "relay ?";
    relay.className = "badge";
  }
  const links = $("links");
  links.textContent = "";
  for (const [dev, up] of Object.entries(s ? s.links : {})) {
    const b = document.createElement("span");
    b.className = `badge ${up ? "good" : "bad"}`;
    b.textContent = `${dev} ${up ? "ok" : "LOST"}`;
    links.append(b);
  }
}

// Staleness, ten times a second: the page never shows old values as current.
setInterval(() => {
  if (!page.me) return;
  const why = feed.staleWhy();
  document.body.classList.toggle("stale", why !== null);
  $("stale").textContent = why === null ? "" : `STALE: ${why}`;
  chart.draw();
}, 100);

// --- start ------------------------------------------------------------------------------------

(async () => {
  const r = await api("GET", "/api/auth/me");
  if (r.ok) await signedIn(r.data); else show("signin");
})();

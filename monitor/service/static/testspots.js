// The patient's test spots, entered when a session starts: where and when each was done, at
// which settings, and (once read, days later) when, by whom and what was seen. The service
// judges them (POST /api/session, `test_spots`); this form only collects them and says which
// field is missing. Types IV–VI need a test spot read with no reaction; without one the
// session only does the test spot (test-spot mode), in the service's words.

const SITES = [
  ["face", "face"], ["periorbital", "periorbital"], ["legs", "legs"], ["body", "body"],
];
const RESULTS = [
  ["", "not read yet"], ["no_reaction", "read: no reaction"], ["adverse", "read: adverse reaction"],
];
// name, label, unit, input attributes
const NUMBERS = [
  ["wavelength_nm", "wavelength", "nm", { min: "200", max: "11000", step: "1" }],
  ["fluence_j_cm2", "fluence", "J/cm²", { min: "0", step: "0.1" }],
  ["pulse_ms", "pulse", "ms", { min: "0", step: "0.1" }],
  ["spot_mm", "spot", "mm", { min: "0", step: "0.1" }],
];

function field(label, input) {
  const l = document.createElement("label");
  l.append(label, input);
  return l;
}

function select(options) {
  const s = document.createElement("select");
  for (const [value, text] of options) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    s.append(o);
  }
  return s;
}

export class TestSpotForm {
  constructor(list, addButton) {
    this.list = list;
    this.rows = [];
    addButton.addEventListener("click", () => this.add());
  }

  reset() {
    this.rows = [];
    this.list.textContent = "";
  }

  add() {
    const li = document.createElement("li");
    li.className = "test-spot";
    const row = { li, inputs: {} };
    const date = (name, label) => {
      const input = document.createElement("input");
      input.type = "date";
      input.name = name;
      row.inputs[name] = input;
      li.append(field(label, input));
    };
    date("done_on", "done on");
    row.inputs.site = select([["", "site"], ...SITES]);
    row.inputs.site.name = "site";
    li.append(field("site", row.inputs.site));
    for (const [name, label, unit, attrs] of NUMBERS) {
      const input = document.createElement("input");
      input.type = "number";
      input.name = name;
      input.inputMode = "decimal";
      for (const [k, v] of Object.entries(attrs)) input.setAttribute(k, v);
      row.inputs[name] = input;
      li.append(field(`${label} (${unit})`, input));
    }
    row.inputs.result = select(RESULTS);
    row.inputs.result.name = "result";
    li.append(field("result", row.inputs.result));
    date("read_on", "read on");
    const by = document.createElement("input");
    by.name = "read_by";
    by.maxLength = 64;
    by.autocomplete = "off";
    row.inputs.read_by = by;
    li.append(field("read by", by));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove-spot";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      li.remove();
      this.rows = this.rows.filter((r) => r !== row);
    });
    li.append(remove);
    this.rows.push(row);
    this.list.append(li);
    return li;
  }

  /** {spots} for the request, or {error} naming the first missing field, in words. */
  values() {
    const spots = [];
    for (const [i, row] of this.rows.entries()) {
      const v = (name) => row.inputs[name].value.trim();
      const which = `Test spot ${i + 1}`;
      if (!v("done_on")) return { error: `${which}: give the date it was done.` };
      if (!v("site")) return { error: `${which}: choose its site.` };
      const spot = { done_on: v("done_on"), site: v("site") };
      for (const [name, label, unit] of NUMBERS) {
        const n = Number(v(name));
        if (v(name) === "" || !Number.isFinite(n) || n <= 0) {
          return { error: `${which}: give its ${label} in ${unit}.` };
        }
        spot[name] = n;
      }
      if (v("result")) {
        if (!v("read_on") || !v("read_by")) {
          return { error: `${which}: a read test spot needs the date it was read and who read it.` };
        }
        Object.assign(spot, { result: v("result"), read_on: v("read_on"), read_by: v("read_by") });
      } else if (v("read_on") || v("read_by")) {
        return { error: `${which}: say what was seen, or leave the reading empty.` };
      }
      spots.push(spot);
    }
    return { spots };
  }
}

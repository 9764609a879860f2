// The console's REST calls: same-origin, the sign-in cookie, JSON in and out.
// A refusal comes back as {ok: false, status, detail}: the service's one sentence, shown as is.

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, detail: "the console service cannot be reached" };
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { detail: text.slice(0, 300) }; }
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `refused (${response.status})`;
    return { ok: false, status: response.status, detail, data };
  }
  return { ok: true, status: response.status, data };
}

// Rendering of the console, the result and refusals. Everything the guest or
// the gateway sends is set as textContent, never parsed as HTML.

/** el makes an element with a class and text content. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

/** field appends a "name: value" line to parent. */
function field(parent, name, value, className) {
  const row = el("div", "row " + (className || ""));
  row.append(el("span", "name", name), el("span", "value", value));
  parent.append(row);
  return row;
}

/** appendLog adds one console line ({level, stream, message, time}). */
export function appendLog(list, ev) {
  const li = el("li", "log " + (ev.stream === "stderr" ? "stderr" : "stdout"));
  li.dataset.level = ev.level || "log";
  const t = new Date(ev.time);
  const time = isNaN(t) ? "" : t.toISOString().slice(11, 23); // UTC hh:mm:ss.mmm
  li.append(el("span", "time", time), el("span", "level", ev.level || "log"), el("span", "message", ev.message));
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}

/** showResult renders an execution's result event; elapsed is the round trip in ms. */
export function showResult(box, res, elapsed) {
  box.replaceChildren();
  box.dataset.state = res.success ? "success" : "failure";
  const head = el("div", "head");
  head.append(el("span", "badge", res.success ? "success" : "failed"));
  if (res.error) head.append(el("span", "code", res.error.code));
  head.append(el("span", "timing", `${Math.round(res.durationMs)} ms in the runtime · ${Math.round(elapsed)} ms round trip`));
  box.append(head);
  if (res.error) {
    field(box, "error", res.error.message, "error-message");
    if (res.error.stack) box.append(el("pre", "stack", res.error.stack));
  }
  if (res.mode) field(box, "mode", res.mode);
  if (res.returnValue !== undefined) {
    field(box, "returned", "", "returned");
    box.append(el("pre", "body return-value", JSON.stringify(res.returnValue, null, 2)));
  }
  if (res.response) showResponse(box, res.response);
  for (const o of res.outbound || []) {
    const status = o.denied ? "denied" : (o.status ?? "");
    const via = o.capability ? ` (capability ${o.capability})` : "";
    field(box, "outbound", `${o.method} ${o.url} ${status}${via}`, o.denied ? "denied" : "");
  }
  if (res.truncated) field(box, "truncated", "output was cut at the server's cap");
  if (res.warm) field(box, "warm", "ran in a reused isolate");
  field(box, "id", res.id || "", "id");
}

function showResponse(box, r) {
  field(box, "response", `${r.status}`, "response-status");
  const type = r.headers && (r.headers["content-type"] || r.headers["Content-Type"]);
  if (type) field(box, "content-type", type);
  if (r.body) {
    const note = r.bodyEncoding === "base64" ? " (base64)" : "";
    box.append(el("pre", "body", r.body + note));
  }
}

/**
 * showProblem renders a refusal (application/problem+json) or any other
 * non-200 answer; a 401 says how to fix it.
 */
export function showProblem(box, status, problem) {
  box.replaceChildren();
  box.dataset.state = "problem";
  const head = el("div", "head");
  head.append(el("span", "badge", `HTTP ${status}`), el("span", "code", problem.code || "error"));
  box.append(head);
  field(box, problem.title || "error", problem.detail || "", "error-message");
  for (const e of problem.errors || []) {
    field(box, e.field || "request", `${e.detail || ""} (${e.code || "invalid"})`);
  }
  if (status === 401) {
    box.append(el("p", "auth-help",
      "This gateway needs an API key: enter one in the API key field and run again."));
  }
}

/** showFailure renders an error of the page itself (network, broken stream). */
export function showFailure(box, message) {
  box.replaceChildren();
  box.dataset.state = "problem";
  box.append(el("div", "head", message));
}

// The playground page: wires the editor and fields to POST /execute and
// renders its NDJSON stream as it arrives.
import { createEditor } from "./editor.js";
import { examples } from "./examples.js";
import { curlCommand } from "./curl.js";
import { readRequest, fill, showHosts, showCapabilities, apiKey, encodeState, decodeState } from "./form.js";
import { appendLog, showResult, showProblem, showFailure } from "./output.js";

const $ = (id) => document.getElementById(id);
const keyRequired = document.body.dataset.keyRequired === "true";
let running = null; // the AbortController of the execution in flight

const editor = createEditor($("editor"), {
  nonce: document.body.dataset.styleNonce,
  onRun: () => run(),
  onChange: () => updateCurl(),
});

/** updateCurl shows the curl command for the fields as they are now. */
function updateCurl() {
  const { body } = readRequest(editor);
  $("curl").textContent = curlCommand(location.origin + "/execute", body, keyRequired || apiKey.value !== "");
}

function setStatus(text) { $("status").textContent = text; }

/** run sends the request and renders the answer as it streams in. */
async function run() {
  if (running) return;
  const { body, errors } = readRequest(editor);
  $("field-error").textContent = errors.join("; ");
  if (errors.length) return;
  $("console").replaceChildren();
  $("result").replaceChildren();
  delete $("result").dataset.state;
  running = new AbortController();
  $("run").disabled = true;
  $("stop").disabled = false;
  setStatus("running…");
  const started = performance.now();
  try {
    await execute(body, running.signal, started);
  } catch (err) {
    showFailure($("result"), err.name === "AbortError" ? "stopped" : `request failed: ${err.message}`);
  } finally {
    running = null;
    $("run").disabled = false;
    $("stop").disabled = true;
    setStatus("");
  }
}

/** execute posts body and dispatches the answer: a stream or a problem. */
async function execute(body, signal, started) {
  const headers = { "Content-Type": "application/json", "Accept": "application/x-ndjson" };
  if (apiKey.value) headers.Authorization = "Bearer " + apiKey.value;
  const resp = await fetch("/execute", { method: "POST", headers, body: JSON.stringify(body), signal });
  if (!resp.ok) {
    let problem = {};
    try { problem = await resp.json(); } catch { problem = { detail: resp.statusText }; }
    showProblem($("result"), resp.status, problem);
    if (resp.status === 401) $("key").focus();
    return;
  }
  let result = null;
  for await (const ev of ndjson(resp.body)) {
    if (ev.type === "install") installed(ev);
    else if (ev.type === "start") setStatus(`running ${ev.id}…`);
    else if (ev.type === "log") appendLog($("console"), ev);
    else if (ev.type === "restart") restarted(ev);
    else if (ev.type === "result") { result = ev; showResult($("result"), ev, performance.now() - started); }
  }
  if (!result) showFailure($("result"), "the stream ended without a result");
}

/**
 * installed shows an install event: the packages being resolved, then the
 * versions they resolved to, as a line of the console (the guest's own
 * lines follow).
 */
function installed(ev) {
  const pkgs = Object.entries(ev.packages || {}).map(([n, v]) => `${n}@${v}`).join(", ");
  if (ev.phase === "resolving") {
    setStatus(`resolving ${pkgs}…`);
    return;
  }
  const how = ev.cached ? "from the cache" : `resolved in ${Math.round(ev.durationMs || 0)} ms`;
  appendLog($("console"), { level: "install", stream: "stdout", message: `dependencies: ${pkgs} (${how})`, time: new Date().toISOString() });
}

/**
 * restarted handles a restart event: the gateway runs the execution again
 * from the start (its runtime was lost), so the lines shown so far belong
 * to a void run and go; the new run's follow.
 */
function restarted(ev) {
  $("console").replaceChildren();
  setStatus(`running again (${ev.reason || "restart"})…`);
}

let capsAsked = 0; // numbers the GET /capabilities calls: only the last one counts

/**
 * loadCapabilities asks GET /capabilities with the key as it is now and
 * offers what the key may use. A refusal (401 before a key is entered) or
 * a failure offers nothing and shows no error: Run reports those.
 */
async function loadCapabilities() {
  const n = ++capsAsked;
  let list = [];
  try {
    const headers = apiKey.value ? { Authorization: "Bearer " + apiKey.value } : {};
    const resp = await fetch("/capabilities", { headers });
    if (resp.ok) list = (await resp.json()).capabilities || [];
  } catch {
    list = [];
  }
  if (n !== capsAsked) return;
  showCapabilities(list, updateCurl);
  updateCurl();
}

/** ndjson yields the JSON objects of a newline-delimited stream as they arrive. */
async function* ndjson(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buf.trim()) yield JSON.parse(buf);
}

function init() {
  for (const ex of examples) $("example").append(new Option(ex.name, ex.id));
  $("example").addEventListener("change", () => {
    fill(editor, examples.find((ex) => ex.id === $("example").value));
    updateCurl();
  });
  $("language").addEventListener("change", () => { editor.setLanguage($("language").value); updateCurl(); });
  $("outbound").addEventListener("change", () => { showHosts(); updateCurl(); });
  for (const id of ["env", "secrets", "timeout", "hosts", "key"]) $(id).addEventListener("input", updateCurl);
  $("key").addEventListener("input", loadCapabilities);
  $("run").addEventListener("click", () => run());
  $("stop").addEventListener("click", () => running && running.abort());
  $("copy").addEventListener("click", copyCurl);
  $("share").addEventListener("click", () => history.replaceState(null, "", encodeState(readRequest(editor).body)));
  if (keyRequired) $("key-hint").textContent = "this gateway needs one";
  apiKey.init();
  const shared = decodeState(location.hash);
  if (shared) {
    $("example").prepend(new Option("(from the link)", "link"));
    $("example").value = "link";
  }
  fill(editor, shared || examples[0]);
  updateCurl();
  loadCapabilities();
}

async function copyCurl() {
  try {
    await navigator.clipboard.writeText($("curl").textContent);
    $("copy").textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copy").textContent = "Selected: copy it";
  }
  setTimeout(() => { $("copy").textContent = "Copy"; }, 1500);
}

init();


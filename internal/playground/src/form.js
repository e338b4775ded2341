// The request fields: reading them into an execution request, filling them
// from an example or a shared link (never its grants), and the API key.

const $ = (id) => document.getElementById(id);
const keyStore = "gateway-playground-key";

/** jsonField parses a JSON-object textarea; empty means absent. */
function jsonField(id, name, errors) {
  const text = $(id).value.trim();
  if (!text) return undefined;
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (err) {
    errors.push(`${name} must be a JSON object (${err.message})`);
    return undefined;
  }
}

/**
 * readRequest returns the POST /execute body the fields describe, and the
 * problems that keep it from being sent.
 */
export function readRequest(editor) {
  const errors = [];
  const body = { code: editor.code };
  if ($("language").value === "typescript") body.language = "typescript";
  const env = jsonField("env", "env", errors);
  if (env) body.env = env;
  const secrets = jsonField("secrets", "secrets", errors);
  if (secrets) body.secrets = secrets;
  const deps = jsonField("deps", "dependencies", errors);
  if (deps) body.dependencies = deps;
  const timeout = $("timeout").value.trim();
  if (timeout) body.timeoutMs = Number(timeout);
  const outbound = $("outbound").value;
  if (outbound === "true") body.allowOutbound = true;
  if (outbound === "list") {
    body.allowOutbound = $("hosts").value.split(",").map((h) => h.trim()).filter(Boolean);
  }
  const caps = [...document.querySelectorAll("#caps input:checked")].map((c) => c.value);
  if (caps.length) body.capabilities = caps;
  return { body, errors };
}

// wanted are the capabilities the last filled request asked for: ticked
// when the list (which depends on the key) offers them.
let wanted = [];

/**
 * showCapabilities offers each capability of list (GET /capabilities) as a
 * checkbox, keeping the ticks of those still offered; nothing when the
 * list is empty.
 */
export function showCapabilities(list, onChange) {
  const ticked = new Set([...document.querySelectorAll("#caps input:checked")].map((c) => c.value).concat(wanted));
  const boxes = list.map((c) => {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = c.name;
    box.checked = ticked.has(c.name);
    box.addEventListener("change", onChange);
    const label = document.createElement("label");
    label.className = "check";
    label.title = `${c.methods.join(", ")} under ${c.basePath}`;
    label.append(box, " " + c.name);
    return label;
  });
  $("caps").replaceChildren(...boxes);
  $("caps-field").hidden = boxes.length === 0;
}

/** fill sets the fields from an example or a shared state. */
export function fill(editor, s) {
  $("language").value = s.language === "typescript" ? "typescript" : "javascript";
  editor.setLanguage($("language").value);
  editor.code = s.code || "";
  $("env").value = s.env ? JSON.stringify(s.env, null, 2) : "";
  $("secrets").value = s.secrets ? JSON.stringify(s.secrets, null, 2) : "";
  $("deps").value = s.dependencies ? JSON.stringify(s.dependencies) : "";
  $("timeout").value = s.timeoutMs ? String(s.timeoutMs) : "";
  const ob = s.allowOutbound;
  $("outbound").value = Array.isArray(ob) ? "list" : ob === true ? "true" : "false";
  $("hosts").value = Array.isArray(ob) ? ob.join(", ") : "";
  wanted = Array.isArray(s.capabilities) ? s.capabilities.filter((c) => typeof c === "string") : [];
  for (const box of document.querySelectorAll("#caps input")) box.checked = wanted.includes(box.value);
  showHosts();
}

/** showHosts shows the hosts field only when outbound is a list. */
export function showHosts() {
  $("hosts-label").hidden = $("outbound").value !== "list";
}

/**
 * The API key lives in this page's memory; with "keep for this tab" also in
 * sessionStorage (gone when the tab closes). It is sent only to this origin's
 * POST /execute and GET /capabilities and never put in a link or the curl
 * command.
 */
export const apiKey = {
  init() {
    const kept = sessionStorage.getItem(keyStore);
    if (kept) { $("key").value = kept; $("remember").checked = true; }
    const save = () => {
      if ($("remember").checked && $("key").value) sessionStorage.setItem(keyStore, $("key").value);
      else sessionStorage.removeItem(keyStore);
    };
    $("key").addEventListener("input", save);
    $("remember").addEventListener("change", save);
  },
  get value() { return $("key").value.trim(); },
};

/**
 * linkFields are all a link carries, written by the Link button and read
 * when a link is opened. Never the key or the secrets' values: an address
 * lands in the browser's history and in whatever a link is pasted to. Never
 * a grant (allowOutbound, capabilities): a link is someone else's request,
 * and whoever opens it with their key must tick those themselves before
 * their key lets its code reach the network or their capabilities.
 */
const linkFields = ["code", "language", "env", "dependencies", "timeoutMs"];

/** linkState keeps of s only the fields a link may carry. */
function linkState(s) {
  const out = {};
  for (const k of linkFields) if (Object.hasOwn(s, k)) out[k] = s[k];
  return out;
}

/** encodeState returns a URL fragment holding the request's linkFields. */
export function encodeState(body) {
  const bytes = new TextEncoder().encode(JSON.stringify(linkState(body)));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "#r=" + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * decodeState reads a fragment made by encodeState, keeping only its
 * linkFields (whatever else a crafted link holds is dropped); null if there
 * is none.
 */
export function decodeState(hash) {
  if (!hash.startsWith("#r=")) return null;
  try {
    const bin = atob(hash.slice(3).replace(/-/g, "+").replace(/_/g, "/"));
    const s = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    return s && typeof s === "object" && typeof s.code === "string" ? linkState(s) : null;
  } catch {
    return null;
  }
}

// Which URL a capability call may reach (capability.js), kept apart so
// node tests can load it.
//
// The guest's binding (the wrapper's adapter, guest/__dw_wrapper.js)
// resolves a relative URL against ORIGIN plus the capability's base path,
// since a Request needs an absolute URL; ORIGIN stands for the base's
// origin, which the guest is never told. An absolute URL must lie under
// the base itself. Either way the URL has been parsed by the runtime's URL
// parser in the guest (dot segments resolved, backslashes made slashes)
// before it gets here; place takes it as given and only narrows.

// ORIGIN is the origin a guest's relative URL is resolved against.
export const ORIGIN = "http://capability.invalid";

// The longest URL recorded for a refused call.
const MAX_RECORDED_URL = 2048;

// Percent-encodings a server may decode into a path separator or a dot
// segment (or decode twice: %25), and NUL: refused anywhere in the path.
const ENCODED = /%(2f|5c|2e|25|00)/i;

// place decides where a call may go. raw is the request's URL, base the
// capability's base URL (its path ends in /). It returns {url} (a URL under
// base) or {why}; either way shown, what the call's record names: the path
// and query on the service, or for a URL elsewhere, raw itself.
export function place(raw, base) {
  const root = new URL(base);
  let url;
  try {
    url = new URL(raw);
  } catch {
    return refuse("it is not a URL", raw);
  }
  if (url.origin === ORIGIN && url.username === "" && url.password === "") {
    // Set, not parsed: a path starting "//" must stay a path.
    const mapped = new URL(root.origin);
    mapped.pathname = url.pathname;
    mapped.search = url.search;
    url = mapped;
  }
  if (url.username !== "" || url.password !== "") return refuse("a URL with user info is not allowed", raw);
  if (url.protocol !== root.protocol || url.hostname !== root.hostname || url.port !== root.port) {
    return refuse("the URL is not under the capability's base", raw);
  }
  const shown = url.pathname + url.search;
  if (ENCODED.test(url.pathname) || url.pathname.includes("\\")) {
    return refuse("an encoded slash, backslash, dot or percent sign is not allowed in the path", shown);
  }
  if (!url.pathname.startsWith(root.pathname)) return refuse("the URL is not under the capability's base", shown);
  url.hash = "";
  return { url, shown };
}

function refuse(why, shown) {
  return { why, shown: String(shown).slice(0, MAX_RECORDED_URL) };
}

// The curl command equivalent to what is on screen. It never holds the API
// key's value: it reads it from $GATEWAY_KEY.

/** shellQuote quotes s for a POSIX shell. */
export function shellQuote(s) {
  return "'" + s.replace(/'/g, `'\\''`) + "'";
}

/**
 * curlCommand returns a command that sends body to url as the page does.
 * The body goes through a quoted here-document, so nothing in it is expanded;
 * JSON escapes every newline inside strings, so no line of it can be the
 * delimiter.
 */
export function curlCommand(url, body, withKey) {
  const lines = [
    `curl -sS -N ${shellQuote(url)}`,
    `  -H 'Content-Type: application/json'`,
    `  -H 'Accept: application/x-ndjson'`,
  ];
  if (withKey) lines.push(`  -H "Authorization: Bearer $GATEWAY_KEY"`);
  lines.push(`  --data-binary @- <<'JSON'`);
  return lines.join(" \\\n") + "\n" + JSON.stringify(body, null, 2) + "\nJSON";
}

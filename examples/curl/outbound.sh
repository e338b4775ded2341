#!/bin/sh
# Guest code has no network unless allowOutbound says so. Every request it
# attempts is listed in the result's "outbound" ("denied": true if refused).
# Loopback and private addresses are refused in every mode.
set -eu
. "$(dirname "$0")/common.sh"

title 'no allowOutbound: no network at all'
execute <<'JSON'
{
  "code": "export default { async fetch() { try { await fetch('https://example.com/'); } catch (e) { console.error('fetch failed:', e.message); } return new Response('done'); } }"
}
JSON

title 'a host list: example.com allowed, example.org denied'
execute <<'JSON'
{
  "code": "export default { async fetch() { for (const url of ['https://example.com/', 'https://example.org/']) { try { const r = await fetch(url); console.log(url, r.status); } catch (e) { console.error(url, 'failed:', e.message); } } return new Response('done'); } }",
  "allowOutbound": ["example.com"]
}
JSON

title 'true: any public host, but never loopback or private addresses'
execute <<'JSON'
{
  "code": "export default { async fetch() { for (const url of ['https://example.com/', 'http://127.0.0.1:8080/healthz', 'http://169.254.169.254/']) { try { const r = await fetch(url); console.log(url, r.status); } catch (e) { console.error(url, 'failed:', e.message); } } return new Response('done'); } }",
  "allowOutbound": true
}
JSON

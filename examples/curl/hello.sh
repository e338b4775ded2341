#!/bin/sh
# The seed example: one module, one console line, one Response.
#
#   GATEWAY_URL=http://127.0.0.1:8080 examples/curl/hello.sh
set -eu
. "$(dirname "$0")/common.sh"

execute <<'JSON'
{
  "code": "export default { async fetch(request, env, ctx) { console.log('Isolated worker running!'); return new Response('Done'); } }"
}
JSON

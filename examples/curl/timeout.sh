#!/bin/sh
# timeoutMs bounds the whole execution by the wall clock (up to the gateway's
# maximum). The guest below would take 5 s; it gets 1 s and the result says
# "timeout", with the logs printed before it.
set -eu
. "$(dirname "$0")/common.sh"

execute <<'JSON'
{
  "code": "export default { async fetch() { console.log('starting a long job'); await new Promise(r => setTimeout(r, 5000)); return new Response('finished'); } }",
  "timeoutMs": 1000
}
JSON

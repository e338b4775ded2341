#!/bin/sh
# The same events as Server-Sent Events (event: log / data: {...}), with a
# ": heartbeat" comment while the guest is silent.
set -eu
. "$(dirname "$0")/common.sh"

execute -N -H 'Accept: text/event-stream' <<'JSON'
{
  "code": "export default { async fetch() { console.log('waiting'); await new Promise(r => setTimeout(r, 2000)); console.log('awake'); return new Response('ok'); } }"
}
JSON

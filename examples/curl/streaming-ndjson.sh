#!/bin/sh
# A stream of NDJSON events: start, one log per console call the moment the
# guest makes it, then exactly one result. -N stops curl from buffering.
set -eu
. "$(dirname "$0")/common.sh"

execute -N -H 'Accept: application/x-ndjson' <<'JSON'
{
  "code": "export default { async fetch() { for (let i = 1; i <= 3; i++) { console.log('step', i); await new Promise(r => setTimeout(r, 700)); } console.warn('done'); return new Response('ok'); } }"
}
JSON

#!/bin/sh
# Sends plugin.ts, a Worker written in TypeScript, and the types.ts module it
# imports types from, as "modules" with plugin.ts as the main module, and a
# POST request for its fetch handler. Needs jq, to put the files in JSON.
#
#   GATEWAY_URL=http://127.0.0.1:8080 examples/typescript/run.sh
set -eu
dir=$(dirname "$0")
. "$dir/../curl/common.sh"

command -v jq >/dev/null || { echo "run.sh needs jq (https://jqlang.org)" >&2; exit 2; }

jq -n --rawfile plugin "$dir/plugin.ts" --rawfile types "$dir/types.ts" '{
  modules: {"plugin.ts": $plugin, "types.ts": $types},
  mainModule: "plugin.ts",
  env: {GREETING: "Welcome"},
  request: {
    method: "POST",
    url: "https://plugin.example/greet",
    headers: {"content-type": "application/json"},
    body: ({name: "Ada", tier: "pro"} | tojson)
  }
}' | execute

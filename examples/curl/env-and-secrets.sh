#!/bin/sh
# env and secrets both reach the guest's env; secret values come back masked
# as [REDACTED] wherever the guest prints or returns them.
set -eu
. "$(dirname "$0")/common.sh"

execute <<'JSON'
{
  "code": "export default { fetch(request, env) { console.log('region', env.REGION, 'retries', env.RETRIES, 'features', env.FEATURES); console.log('token', env.API_TOKEN); return Response.json({ token: env.API_TOKEN, tokenLength: env.API_TOKEN.length }); } }",
  "env": {"REGION": "eu", "RETRIES": 3, "FEATURES": {"beta": true}},
  "secrets": {"API_TOKEN": "tok_live_0123456789"}
}
JSON

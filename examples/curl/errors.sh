#!/bin/sh
# How failures answer. An execution that ran is 200 with "success": false and
# an error code; a request the gateway refuses is an application/problem+json
# with a stable "code" (and, for 422, every problem in "errors").
set -eu
. "$(dirname "$0")/common.sh"

status='\nHTTP %{http_code}\n'

title 'the guest throws: 200, error.code exception'
execute -w "$status" <<'JSON'
{"code": "export default { fetch() { console.log('about to fail'); throw new Error('boom'); } }"}
JSON

title 'a syntax error: 200, error.code syntax_error'
execute -w "$status" <<'JSON'
{"code": "export default { fetch() { return new Response( } }"}
JSON

title 'no fetch handler: 200, error.code invalid_module'
execute -w "$status" <<'JSON'
{"code": "export default { hello() {} }"}
JSON

title 'an invalid request: 422 invalid_request, every problem listed'
execute -w "$status" <<'JSON'
{"code": "export default {}", "timeoutMs": -1, "compatibilityDate": "tomorrow", "colour": "blue"}
JSON

title 'not JSON: 400 malformed_json'
execute -w "$status" <<'JSON'
{"code": 
JSON

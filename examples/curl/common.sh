# Sourced by the example scripts. Set GATEWAY_URL (default
# http://127.0.0.1:8080) and, for a gateway with API keys, GATEWAY_API_KEY.

GATEWAY_URL=${GATEWAY_URL:-http://127.0.0.1:8080}
GATEWAY_URL=${GATEWAY_URL%/}

# The key goes to curl in a header file, not on its command line, where
# other users could read it in the process list.
auth_header=$(mktemp)
trap 'rm -f "$auth_header"' EXIT
if [ -n "${GATEWAY_API_KEY:-}" ]; then
	printf 'Authorization: Bearer %s\n' "$GATEWAY_API_KEY" >"$auth_header"
fi

# execute [CURL OPTION...] posts the JSON request read from standard input to
# POST /execute and prints the answer.
execute() {
	curl -sS "$GATEWAY_URL/execute" -H @"$auth_header" \
		-H 'Content-Type: application/json' --data-binary @- "$@"
	echo
}

# title TEXT prints a heading to standard error, between the answers.
title() {
	printf '\n== %s\n' "$1" >&2
}

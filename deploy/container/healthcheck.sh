#!/bin/sh
# The image's HEALTHCHECK, from inside the container, on the address lighttpd serves
# (AZURE_OPENAI_PROXY_ADDRESS, 0.0.0.0:8080 by default): GET /healthz (lighttpd and the
# FastCGI program) and, unless AZURE_OPENAI_PROXY_REALTIME=off, a plain GET of
# /v1/realtime, which lighttpd hands to the realtime companion and the companion answers
# 426 (not a WebSocket upgrade) without asking Azure: both programs answer.
set -u
address="${AZURE_OPENAI_PROXY_ADDRESS:-0.0.0.0:8080}"
host="${address%:*}"
case "$host" in
0.0.0.0 | '' | '[::]' | '*') host=127.0.0.1 ;;
esac
base="http://$host:${address##*:}"
curl --fail --silent --show-error --output /dev/null --max-time 2 "$base/healthz" || exit 1
[ "${AZURE_OPENAI_PROXY_REALTIME:-on}" = off ] && exit 0
status=$(curl --silent --show-error --output /dev/null --write-out '%{http_code}' --max-time 2 "$base/v1/realtime")
[ "$status" = 426 ] && exit 0
echo "the realtime companion: GET /v1/realtime answered ${status:-nothing}, not 426" >&2
exit 1

#!/bin/sh
# The image's HEALTHCHECK: GET /healthz on the address lighttpd serves
# (AZURE_OPENAI_PROXY_ADDRESS, 0.0.0.0:8080 by default), from inside the container.
address="${AZURE_OPENAI_PROXY_ADDRESS:-0.0.0.0:8080}"
host="${address%:*}"
case "$host" in
0.0.0.0 | '' | '[::]' | '*') host=127.0.0.1 ;;
esac
exec curl --fail --silent --show-error --output /dev/null --max-time 3 "http://$host:${address##*:}/healthz"

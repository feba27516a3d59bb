#!/bin/sh
# `make demo`: the proxy in front of the local Azure-like upstream, on 127.0.0.1:8080
# (AZURE_OPENAI_PROXY_ADDRESS changes it). No Azure account needed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/azure-openai-demo.XXXXXX")

# Everything started here stops with the script: at its end, and at SIGTERM (which make
# passes on to it), SIGINT or SIGHUP. Each runs in the background and is waited for, so
# that a signal is acted on at once rather than when the command in front ends.
upstream="" server=""
stop_all() {
    for pid in $server $upstream; do kill -TERM "$pid" 2>/dev/null; done
    wait
    rm -rf "$run_dir"
}
trap stop_all EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

node "$root/tests/upstream/azure-mock.mjs" --port 0 --api-key demo-key >"$run_dir/upstream.log" 2>&1 &
upstream=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$run_dir/upstream.log" 2>/dev/null && break
    sleep 0.05
done
endpoint=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$run_dir/upstream.log")
[ -n "$endpoint" ] || { echo "the local upstream did not start:" >&2; cat "$run_dir/upstream.log" >&2; exit 1; }

address="${AZURE_OPENAI_PROXY_ADDRESS:-127.0.0.1:8080}"
cat <<HELP
azure-openai-proxy demo: a local Azure-like upstream at $endpoint, key demo-key.
Try, in another terminal:

  curl http://$address/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}]}'

  curl -N http://$address/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

HELP
AZURE_OPENAI_ENDPOINT="$endpoint" AZURE_OPENAI_TOKEN=demo-key AZURE_OPENAI_PROXY_ADDRESS="$address" \
    AZURE_OPENAI_PROXY_MODE=azure "$root/scripts/serve.sh" &
server=$!
wait "$server"

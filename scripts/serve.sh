#!/bin/sh
# `make run`: serves the proxy over HTTP at AZURE_OPENAI_PROXY_ADDRESS through lighttpd,
# in the foreground, until Ctrl-C or SIGTERM.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
program="${AOP_PROGRAM:-$root/build/azure-openai-proxy}"

# The proxy checks its own settings, so errors read the same here as at its start.
if ! check=$("$program" --check-config 2>&1); then
    echo "$check" >&2
    case "$check" in
    *"AZURE_OPENAI_ENDPOINT: not set"*)
        cat >&2 <<'HELP'

make run needs your Azure OpenAI resource, for example:

    AZURE_OPENAI_ENDPOINT=https://my-resource.openai.azure.com make run

Clients then send their Azure key as "Authorization: Bearer <key>", or set
AZURE_OPENAI_TOKEN=<key> to use one server-side key for everyone.
Optional: AZURE_OPENAI_MODEL_MAPPER=gpt-4o=my-4o-deployment,...  AZURE_OPENAI_PROXY_ADDRESS=0.0.0.0:8080
(or AZURE_OPENAI_PROXY_MODE=openai to relay to api.openai.com instead).

No Azure account? `make demo` serves the proxy against a local Azure-like upstream.
HELP
        ;;
    esac
    exit 2
fi

address="${AZURE_OPENAI_PROXY_ADDRESS:-0.0.0.0:8080}"
host="${address%:*}"
port="${address##*:}"
case "$host" in
\[*\]) ;;
*:*) host="[$host]" ;;
esac

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/azure-openai-proxy.XXXXXX")
export AOP_HTTP_HOST="$host" AOP_HTTP_PORT="$port" AOP_PROGRAM="$program" AOP_RUN_DIR="$run_dir"
export AOP_PROCS="${AOP_PROCS:-1}"

# The proxy prints its settings as lighttpd starts it: they are not printed here too.
echo "azure-openai-proxy: serving http://$address/v1 through lighttpd (Ctrl-C stops)"
lighttpd -D -f "$root/deploy/lighttpd/lighttpd.conf" &
server=$!
stop() { kill -TERM "$server" 2>/dev/null; }
trap stop INT TERM
wait "$server"
status=$?
# `wait` returns early when a trapped signal arrives: wait again for lighttpd to finish.
kill -0 "$server" 2>/dev/null && wait "$server"
rm -rf "$run_dir"
exit "$status"

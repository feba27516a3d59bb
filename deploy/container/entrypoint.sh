#!/bin/bash
# The image's entrypoint, started by tini (PID 1: it reaps every child and passes SIGTERM
# on). It serves the proxy through lighttpd exactly as `make run` does (scripts/serve.sh,
# copied beside it), with what a container needs first:
#   - the proxy's event loops follow the container's CPU quota (cgroup cpu.max), not the
#     host's core count, unless AZURE_OPENAI_PROXY_THREADS is set;
#   - everything it writes lives under TMPDIR (/tmp: the sockets, lighttpd's request
#     bodies) and /dev/shm (the shared state), so the root filesystem may be read-only.
# Beside lighttpd it runs the realtime companion (azure-openai-proxy-realtime: WebSocket
# sessions at /v1/realtime) on a unix socket in TMPDIR, which lighttpd's shipped snippet
# proxies to; AZURE_OPENAI_PROXY_REALTIME=off leaves it out (/v1/realtime then answers 501).
# Either program ending takes the other down and ends the container with a failure status,
# so the orchestrator restarts it.
# SIGTERM reaches both: lighttpd stops at once and the proxy within 2 s; a stream under way
# is cut (its answer ends without the closing chunk), a request waiting for Azure gets a
# 503; realtime sessions end with the companion (their clients see the connection close).
# bash, not sh: `wait -n -p` says which of the two ended first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# Whole CPUs the container may use: the cgroup v2 quota ("max 100000" when none), else
# v1's, and never more than the CPUs it is allowed to run on (nproc reads the affinity).
cpu_quota() {
    cpus=$(nproc)
    quota=max period=100000
    if [ -r /sys/fs/cgroup/cpu.max ]; then
        read -r quota period </sys/fs/cgroup/cpu.max
    elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -r /sys/fs/cgroup/cpu/cpu.cfs_period_us ]; then
        quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
    fi
    case "$quota" in
    max | -1 | '' | *[!0-9]*) ;;
    *)
        whole=$(((quota + period - 1) / period))
        [ "$whole" -ge 1 ] && [ "$whole" -lt "$cpus" ] && cpus=$whole
        ;;
    esac
    echo "$cpus"
}

: "${AZURE_OPENAI_PROXY_THREADS:=$(cpu_quota)}"
: "${TMPDIR:=/tmp}"
export AZURE_OPENAI_PROXY_THREADS TMPDIR
export AOP_PROGRAM=/usr/local/bin/azure-openai-proxy
realtime_program=/usr/local/bin/azure-openai-proxy-realtime
realtime="${AZURE_OPENAI_PROXY_REALTIME:-on}"
case "$realtime" in
on | off) ;;
*)
    echo "azure-openai-proxy: AZURE_OPENAI_PROXY_REALTIME: on or off, not '${realtime:0:16}'" >&2
    exit 2
    ;;
esac

# A missing endpoint reads as the seed's users expect, not as `make run` help.
if ! check=$("$AOP_PROGRAM" --check-config 2>&1); then
    echo "$check" >&2
    echo "usage: docker run -p 8080:8080 -e AZURE_OPENAI_ENDPOINT=https://my-resource.openai.azure.com" \
        "[-e AZURE_OPENAI_MODEL_MAPPER=gpt-4o=my-4o-deployment] IMAGE" >&2
    exit 2
fi

realtime_pid="" realtime_dir=""
# lighttpd includes the file AOP_REALTIME_LIGHTTPD names (deploy/container/lighttpd.conf):
# the shipped snippet pointed at the companion's socket, or nothing when realtime is off.
export AOP_REALTIME_LIGHTTPD=/dev/null
if [ "$realtime" = on ]; then
    realtime_dir=$(mktemp -d "$TMPDIR/azure-openai-proxy-realtime.XXXXXX")
    socket="$realtime_dir/realtime.sock"
    sed "s|/run/azure-openai-proxy/realtime.sock|$socket|" \
        "$here/deploy/lighttpd/azure-openai-proxy-realtime.conf" >"$realtime_dir/lighttpd.conf"
    AOP_REALTIME_LIGHTTPD="$realtime_dir/lighttpd.conf"
    "$realtime_program" --listen "$socket" &
    realtime_pid=$!
    # Listening before lighttpd serves, so the first session is not a 503; a companion
    # that refuses its settings stops the start (its line says why).
    until [ -S "$socket" ]; do
        if ! kill -0 "$realtime_pid" 2>/dev/null; then
            wait "$realtime_pid" && status=0 || status=$?
            rm -rf "$realtime_dir"
            echo "azure-openai-proxy: the realtime companion did not start (AZURE_OPENAI_PROXY_REALTIME=off" \
                "serves without realtime sessions)" >&2
            exit $((status ? status : 1))
        fi
        sleep 0.02
    done
fi

"$here/scripts/serve.sh" &
server_pid=$!
stopping=""
stop() {
    stopping=yes
    kill -TERM "$server_pid" $realtime_pid 2>/dev/null || true
}
trap stop TERM INT

# The first to end: a signal (stop ran), or one program on its own.
set +e
wait -n -p ended "$server_pid" $realtime_pid
status=$?
if [ -z "$stopping" ]; then
    name=lighttpd
    [ "${ended:-}" = "$realtime_pid" ] && name=azure-openai-proxy-realtime
    echo "azure-openai-proxy: $name ended (status $status): stopping the container" >&2
    stop
    [ "$status" -eq 0 ] && status=1  # it was not asked to stop
else
    status=0
fi
# The rest end too; a program that fails while stopping makes the container's status.
# (`wait` is interrupted by a second signal: wait again; 127: reaped by `wait -n` already.)
for pid in "$server_pid" $realtime_pid; do
    wait "$pid"
    code=$?
    while [ "$code" -gt 128 ] && kill -0 "$pid" 2>/dev/null; do
        wait "$pid"
        code=$?
    done
    [ "$code" -ne 0 ] && [ "$code" -ne 127 ] && [ "$status" -eq 0 ] && status=$code
done
[ -n "$realtime_dir" ] && rm -rf "$realtime_dir"
exit "$status"

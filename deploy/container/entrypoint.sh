#!/bin/sh
# The image's entrypoint, started by tini (PID 1: it reaps every child and passes SIGTERM
# on). It serves the proxy through lighttpd exactly as `make run` does (scripts/serve.sh,
# copied beside it), with what a container needs first:
#   - the proxy's event loops follow the container's CPU quota (cgroup cpu.max), not the
#     host's core count, unless AZURE_OPENAI_PROXY_THREADS is set;
#   - everything it writes lives under TMPDIR (/tmp: the socket, lighttpd's request
#     bodies) and /dev/shm (the shared state), so the root filesystem may be read-only.
# SIGTERM: lighttpd stops at once and the proxy within 2 s; a stream under way is cut
# (its answer ends without the closing chunk), a request waiting for Azure gets a 503.
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

# A missing endpoint reads as the seed's users expect, not as `make run` help.
if ! check=$("$AOP_PROGRAM" --check-config 2>&1); then
    echo "$check" >&2
    echo "usage: docker run -p 8080:8080 -e AZURE_OPENAI_ENDPOINT=https://my-resource.openai.azure.com" \
        "[-e AZURE_OPENAI_MODEL_MAPPER=gpt-4o=my-4o-deployment] IMAGE" >&2
    exit 2
fi
exec "$here/scripts/serve.sh"

#!/bin/sh
# `make image`: builds the Containerfile with buildah, podman or docker, whichever is there,
# tagged azure-openai-proxy:VERSION (or TAG).
#   deploy/container/build-image.sh VERSION [TAG]
# buildah reads BUILDAH_ISOLATION (chroot: RUN steps without a container runtime, where
# runc/crun cannot start one). Without Docker Hub, make the base from a Debian mirror first:
# deploy/container/make-base.sh.
set -eu
version=${1:?usage: build-image.sh VERSION [TAG]}
tag=${2:-azure-openai-proxy:$version}
cd "$(dirname "$0")/../.."
set -- --build-arg "VERSION=$version" -t "$tag" -f Containerfile .
if command -v buildah >/dev/null 2>&1; then
    # The docker format keeps HEALTHCHECK (OCI image configs have no such field).
    buildah bud --format docker --layers "$@"
elif command -v podman >/dev/null 2>&1; then
    podman build --format docker --layers "$@"
elif command -v docker >/dev/null 2>&1; then
    docker build "$@"
else
    echo "make image needs buildah, podman or docker (apt-get install buildah)" >&2
    exit 1
fi
echo "built $tag"

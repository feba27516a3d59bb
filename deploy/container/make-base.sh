#!/bin/sh
# Makes the Containerfile's base image, Debian 12 slim, from Debian's own packages
# (mmdebstrap, minbase, docs and man pages left out as the official slim image does) and
# stores it under the tag the Containerfile names, so `buildah bud` finds it without a
# registry. For machines that reach a Debian mirror but not Docker Hub; elsewhere the
# build pulls docker.io/library/debian:bookworm-slim itself.
#   deploy/container/make-base.sh [MIRROR]   (default: http://deb.debian.org/debian)
# An existing image under the tag is kept (delete it with `buildah rmi` to remake it).
set -eu
tag=docker.io/library/debian:bookworm-slim
mirror=${1:-http://deb.debian.org/debian}
security=${AOP_SECURITY_MIRROR:-$(dirname "$mirror")/debian-security}

if buildah inspect --type image "$tag" >/dev/null 2>&1; then
    echo "make-base: $tag is there already"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/var/tmp}/aop-base.XXXXXX")
container=""
cleanup() {
    [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# /usr merged by the hook (as the official image) rather than by usrmerge, which would pull
# in perl; what the official slim image leaves out (the copyright files stay).
mmdebstrap --variant=minbase --quiet \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -rf "$1"/usr/share/doc/*/changelog* "$1"/var/log/*.log "$1"/var/cache/ldconfig/aux-cache' \
    bookworm "$work/rootfs.tar" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main"

container=$(buildah from scratch)
buildah add --quiet "$container" "$work/rootfs.tar" / >/dev/null
buildah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
buildah commit --quiet "$container" "$tag" >/dev/null
echo "make-base: $tag made from $mirror"

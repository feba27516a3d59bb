#!/bin/sh
# Installs the Debian packages named as arguments when one is missing (as root), or
# prints the exact command that would.
missing=""
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # The tests start their own web servers on loopback: keep the packaged services
    # (apache2, nginx, lighttpd) from starting, and from fighting over port 80, on install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null && exit 0
    echo "apt-get install failed for:$missing" >&2
    exit 1
fi
echo "missing Debian packages; run as root:" >&2
echo "  apt-get update && apt-get install -y$missing" >&2
exit 1

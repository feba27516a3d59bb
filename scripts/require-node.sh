#!/bin/sh
# The integration tests and the local upstream run on Node.js (18 or later).
if command -v node >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 18 ] && exit 0
    echo "Node.js $major is too old: the tests need 18 or later" >&2
    exit 1
fi
exec "$(dirname "$0")/require-packages.sh" nodejs

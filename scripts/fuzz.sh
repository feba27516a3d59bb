#!/bin/sh
# Runs each libFuzzer target named on the command line for $FUZZ_SECONDS seconds, starting
# from its seed corpus in fuzz/corpus/<target>/ (new inputs go to build/fuzz/corpus/, the
# repository's corpus is never changed). Prints one line per target; exits 1 if any found
# a crash or a broken invariant (the input is kept as build/fuzz/<target>-crash-*).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
failed=0
for target in "$@"; do
    work="build/fuzz/corpus/$target"
    mkdir -p "$work"
    log="build/fuzz/$target.log"
    if build/fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build/fuzz/$target-" "$work" "fuzz/corpus/$target" >"$log" 2>&1; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
        echo "fuzz $target: ok, ${runs:-?} runs in ${seconds} s"
    else
        echo "fuzz $target: FAILED (see $log)"
        tail -n 30 "$log"
        failed=1
    fi
done
exit $failed

#!/bin/sh
# Runs each libFuzzer target named on the command line for $FUZZ_SECONDS seconds, starting
# from its seed corpus in fuzz/corpus/<target>/ (new inputs go to build/fuzz/corpus/, the
# repository's corpus is never changed). Prints one line per target; exits 1 if any found
# a crash or a broken invariant (the input is kept as build/fuzz/<target>-crash-*).
# A libFuzzer process uses one core: $FUZZ_JOBS targets (default one per core) run at
# once, each still for its whole $FUZZ_SECONDS on a core of its own.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}

# One target; its verdict goes to build/fuzz/<target>.verdict, printed in order below.
fuzz_one() {
    target=$1
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
    fi >"build/fuzz/$target.verdict"
}

# The targets $jobs at a time: each group ends together, all running the same time.
running=0
for target in "$@"; do
    rm -f "build/fuzz/$target.verdict"
    fuzz_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

failed=0
for target in "$@"; do
    if [ -f "build/fuzz/$target.verdict" ]; then
        cat "build/fuzz/$target.verdict"
    else
        echo "fuzz $target: FAILED (no verdict)"
    fi
    grep -q '^fuzz [^ ]*: ok,' "build/fuzz/$target.verdict" 2>/dev/null || failed=1
done
exit $failed

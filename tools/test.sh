#!/usr/bin/env bash
# Sets up the machine, runs every test (bazel test //...), and ends with one
# line "N passed, M failed, K skipped" counting GoogleTest cases. Exits
# non-zero on any failed test or build error.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

bazel test //... "$@"
status=$?

# Count test cases from the XML reports of the tests that exist now (a stale
# report of a deleted test must not count).
targets=$(bazel query 'tests(//...)' 2>/dev/null)
python3 - "$status" $targets <<'PY'
import os, sys, xml.etree.ElementTree as ET
status = int(sys.argv[1])
passed = failed = skipped = 0
for target in sys.argv[2:]:
    package, name = target.lstrip("/").split(":")
    report = os.path.join("bazel-testlogs", package, name, "test.xml")
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        print(f"no test report for {target} (build error?)")
        failed += 1
        continue
    cases = root.iter("testcase")
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
if status != 0 and failed == 0:
    failed = 1  # bazel failed without a failing case: a build or runner error
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY

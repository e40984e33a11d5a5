# Sourced by the packaging tests: named cases that pass, fail or are skipped
# (with the reason), and the JUnit report Bazel reads (XML_OUTPUT_FILE), so
# that tools/test.sh counts each case, a skipped one as skipped.
#
#   fail "what went wrong"        (counts in $failures)
#   pass_case NAME / skip_case NAME "reason" / result[NAME]=failed
#   write_junit SUITE NAME...     (the cases in report order)

failures=0
declare -A result reason
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass_case() { result[$1]=passed; echo "PASS: $1"; }
skip_case() { result[$1]=skipped; reason[$1]=$2; echo "SKIPPED: $1: $2"; }

# A case that failed nothing since $1 (the failure count when it began)
# passed, else it failed.
end_case() {
  local name=$1 before=$2
  if [ "$failures" -eq "$before" ]; then pass_case "$name"; else result[$name]=failed; fi
}

write_junit() {
  local suite=$1 c
  shift
  [ -n "${XML_OUTPUT_FILE:-}" ] || return 0
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuites tests=\"$#\" failures=\"$failures\" errors=\"0\">"
    echo "  <testsuite name=\"$suite\" tests=\"$#\" failures=\"$failures\" errors=\"0\">"
    for c in "$@"; do
      case "${result[$c]:-failed}" in
        passed) echo "    <testcase name=\"$c\" result=\"completed\"/>" ;;
        skipped)
          local why=${reason[$c]//&/&amp;}
          why=${why//</&lt;}
          echo "    <testcase name=\"$c\" result=\"skipped\"><skipped message=\"${why//\"/&quot;}\"/></testcase>" ;;
        *) echo "    <testcase name=\"$c\" result=\"completed\"><failure message=\"see the log\"/></testcase>" ;;
      esac
    done
    echo '  </testsuite>'
    echo '</testsuites>'
  } >"$XML_OUTPUT_FILE"
}

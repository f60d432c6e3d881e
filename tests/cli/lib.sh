# Shared by the command-line tests (sourced): a temporary folder, pass/fail counting, and
# expect_error. HETPIPE names the binary; `here` is the folder of the sourcing script.
set -uo pipefail
: "${HETPIPE:?set HETPIPE to the hetpipe binary}"
samples=$here/../../samples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
# The Python with numpy and scipy (tests/CMakeLists.txt passes the system one): a pyenv shim first
# on PATH has neither. Exported, so that subshells and `bash -c` get it too.
if [[ -n ${HETPIPE_PYTHON:-} ]]; then
  python3() { "$HETPIPE_PYTHON" "$@"; }
  export -f python3
fi
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# Whether HETPIPE was built with AddressSanitizer or ThreadSanitizer (scripts/sanitize.sh), which
# reserve terabytes of address space: such a build cannot run under ulimit -v, nor ask malloc for
# more than 1 TiB and get null back; and whose checks need file descriptors (not under ulimit -n 8).
sanitized() { grep -qE "__(a|t)san_init" "$HETPIPE"; }

# Closes the descriptors above 2 that this shell holds (ones a test runner left open): a test
# under ulimit -n N then gives hetpipe N - 3 to spare. In a subshell, before the ulimit.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    [[ -e $fd ]] || continue  # the glob's own descriptor, closed since (no 2>/dev/null here:
    fd=${fd##*/}              # bash would save stderr in a descriptor this loop then closes)
    ((fd > 2)) && eval "exec $fd>&-"
  done
  return 0
}

# expect_error NAME EXPECTED_EXIT STDERR_PATTERN -- ARGS...: one line "hetpipe: ..." and no stdout.
expect_error() {
  local name=$1 code=$2 pattern=$3
  shift 4
  "$HETPIPE" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [[ $rc -ne $code ]]; then bad "$name: exit $rc, expected $code ($(cat "$tmp/err"))"; return; fi
  if [[ $(wc -l <"$tmp/err") -ne 1 ]] || ! grep -q "^hetpipe: .*$pattern" "$tmp/err"; then
    bad "$name: stderr was: $(cat "$tmp/err")"; return
  fi
  [[ -s "$tmp/out" ]] && { bad "$name: wrote to stdout"; return; }
  ok
}

# interrupt_job PID [DELAY] [SIGNAL]: SIGNAL (INT) to the job after DELAY seconds (0.5), then up
# to 5 s for it to end; returns its exit status, or 255 (after killing it) when it did not stop.
# Sets interrupt_ms: the milliseconds from the signal to the job's end, as seen in 50 ms steps
# (the CLI's 2 s deadline ends any job; a wait the first signal itself ends takes far less).
interrupt_job() {
  local job=$1 t0 sig mask
  # First until the job catches the signal (its handlers are installed once the command line is
  # parsed: a signal before that ends it without its last words, or is ignored when the shell
  # started it with the signal ignored), at most 5 s; then the delay.
  sig=$(kill -l "${3:-INT}")
  for _ in $(seq 100); do
    mask=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$job/status" 2>/dev/null)
    [[ -n $mask ]] && (((16#$mask >> (sig - 1)) & 1)) && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  sleep "${2:-0.5}"
  t0=$(date +%s%N)
  kill -"${3:-INT}" "$job"
  for _ in $(seq 100); do kill -0 "$job" 2>/dev/null || break; sleep 0.05; done
  interrupt_ms=$((($(date +%s%N) - t0) / 1000000))
  if kill -0 "$job" 2>/dev/null; then
    kill -9 "$job"; wait "$job" 2>/dev/null; return 255
  fi
  wait "$job"
}

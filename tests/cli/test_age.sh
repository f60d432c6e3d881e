#!/usr/bin/env bash
# `hetpipe keygen / encrypt / decrypt` end to end: interoperability with the age command both ways
# (sizes around the 64 KiB chunk, binary and armored), passphrases, standard streams, and every
# bad input: a clear error, a non-zero exit and no output file. HETPIPE names the binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

d=$tmp/age
mkdir -p "$d"
"$HETPIPE" keygen -o "$d/key.txt" 2>"$tmp/err" && [[ $(stat -c %a "$d/key.txt") == 600 ]] &&
  grep -q "^Public key: age1" "$tmp/err" && ok || bad "keygen: $(cat "$tmp/err")"
expect_error "keygen does not overwrite" 1 "key.txt: exists already" -- keygen -o "$d/key.txt"
R=$(sed -n 's/^# public key: //p' "$d/key.txt")
"$HETPIPE" keygen >"$d/other.txt" && ok || bad "keygen to stdout"

have_age=0
command -v age >/dev/null && have_age=1
[[ $have_age -eq 1 ]] || echo "SKIP: age not installed; interoperability not checked" >&2
for n in 0 1 65535 65536 65537 3000000; do
  head -c "$n" /dev/urandom >"$d/p"
  for c in 64K 4M; do
    "$HETPIPE" encrypt -r "$R" --chunk-size "$c" -o "$d/p.age" "$d/p" &&
      "$HETPIPE" decrypt -i "$d/key.txt" --chunk-size "$c" -o "$d/p.out" "$d/p.age" &&
      cmp -s "$d/p" "$d/p.out" && ok || bad "round trip n=$n chunk $c"
    rm -f "$d/p.out"
  done
  if [[ $have_age -eq 1 ]]; then
    age -d -i "$d/key.txt" "$d/p.age" | cmp -s - "$d/p" && ok || bad "hetpipe -> age, n=$n"
    age -r "$R" -o "$d/a.age" "$d/p" && "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/a.out" "$d/a.age" &&
      cmp -s "$d/p" "$d/a.out" && ok || bad "age -> hetpipe, n=$n"
    "$HETPIPE" encrypt -a -r "$R" -o "$d/p.asc" "$d/p" && age -d -i "$d/key.txt" "$d/p.asc" | cmp -s - "$d/p" &&
      ok || bad "hetpipe -a -> age, n=$n"
    age -a -r "$R" -o "$d/a.asc" "$d/p" && "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/a2.out" "$d/a.asc" &&
      cmp -s "$d/p" "$d/a2.out" && ok || bad "age -a -> hetpipe, n=$n"
    rm -f "$d/a.out" "$d/a2.out"
  fi
done

# Whitespace before the armor's BEGIN line, as age::dearmor allows (an armored file pasted with a
# margin): the header reader used to look for the armor in the first 64 bytes only.
head -c 3000 /dev/urandom >"$d/p"
"$HETPIPE" encrypt -a -r "$R" -o "$d/p.asc" "$d/p" &&
  { printf '%*s\n\t\r\n' 60 ''; cat "$d/p.asc"; } >"$d/lead.asc" &&
  "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/lead.out" "$d/lead.asc" && cmp -s "$d/p" "$d/lead.out" &&
  ok || bad "armored file after leading whitespace"
rm -f "$d/p.asc" "$d/lead.asc" "$d/lead.out"

# Armored input is dearmored as it is read, by a thread feeding the pipeline: memory stays that of
# a few chunks (the whole text, its binary form and the plaintext were held: 1.09 GB for 256 MiB),
# and bad armor anywhere, at the end too, fails the file with the armor's own error and leaves no
# output, even where the payload before it authenticates.
head -c 48000000 /dev/urandom >"$d/p"
"$HETPIPE" encrypt -a -r "$R" -o "$d/p.asc" "$d/p"
peak_kb() {  # peak resident memory of a command, in KiB
  python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else "failed")' "$@"
}
# (A sanitizer's quarantine of freed memory and its shadow make peaks mean nothing there.)
if sanitized; then
  echo "SKIP: armored peak memory (a sanitized build holds freed memory back)" >&2
  "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" "$d/p.asc" && cmp -s "$d/p" "$d/p.out" && ok ||
    bad "armored 48 MB decrypt"
else
  "$HETPIPE" encrypt -r "$R" -o "$d/p.age" "$d/p"
  kb_bin=$(peak_kb "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" "$d/p.age")
  kb=$(peak_kb "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" "$d/p.asc")
  cmp -s "$d/p" "$d/p.out" && [[ $kb != failed && $kb_bin != failed ]] && ((kb - kb_bin < 24000)) &&
    ok || bad "armored 48 MB decrypt: peak $kb KiB, binary $kb_bin KiB (the text alone is 65 MB)"
  rm -f "$d/p.age"
  # Encryption's peak counts the mapped input; the armor adds a few pieces on their way out, not the
  # text (it had been built whole, then copied: 130 MB more).
  kb_bin=$(peak_kb "$HETPIPE" encrypt -r "$R" -o /dev/null "$d/p")
  kb=$(peak_kb "$HETPIPE" encrypt -a -r "$R" -o /dev/null "$d/p")
  [[ $kb != failed && $kb_bin != failed ]] && ((kb - kb_bin < 48000)) && ok ||
    bad "armored 48 MB encrypt: peak $kb KiB, binary $kb_bin KiB"
fi
cat "$d/p.asc" | "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" - && cmp -s "$d/p" "$d/p.out" &&
  ok || bad "armored from a pipe"
# Armored output to a stream: a pipe, a FIFO, and standard output redirected to a file after a
# preamble (the armor's last line and END line went by pwrite at an offset: "invalid seek" on a
# pipe, and written over the lines before them in the file).
"$HETPIPE" encrypt -a -r "$R" "$d/p" | cat >"$d/piped.asc" &&
  "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" "$d/piped.asc" && cmp -s "$d/p" "$d/p.out" &&
  ok || bad "encrypt -a into a pipe"
{ echo preamble; "$HETPIPE" encrypt -a -r "$R" "$d/p"; } >"$d/pre.asc" &&
  tail -n +2 "$d/pre.asc" | "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" - &&
  cmp -s "$d/p" "$d/p.out" && ok || bad "encrypt -a to a redirected standard output"
mkfifo "$d/out.fifo"
cat "$d/out.fifo" >"$d/fifo.asc" &
reader=$!
"$HETPIPE" encrypt -a -r "$R" -o "$d/out.fifo" "$d/p" && wait $reader &&
  "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/p.out" "$d/fifo.asc" && cmp -s "$d/p" "$d/p.out" &&
  ok || bad "encrypt -a -o FIFO"
rm -f "$d/out.fifo" "$d/piped.asc" "$d/pre.asc" "$d/fifo.asc"
rm -f "$d/p.out"
{ cat "$d/p.asc"; echo garbage; } >"$d/after.asc"
expect_error "text after the END line" 1 "after.asc: armor: does not end" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/after.asc"
head -n -1 "$d/p.asc" >"$d/noend.asc"
expect_error "no END line" 1 "noend.asc: armor: does not end" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/noend.asc"
sed '300000s/^./*/' "$d/p.asc" >"$d/star.asc"
expect_error "a bad character midway" 1 "star.asc: armor: invalid character" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/star.asc"
sed '300000s/.$//' "$d/p.asc" >"$d/short.asc"
expect_error "a short line midway" 1 "short.asc: armor: line shorter than 64" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/short.asc"
expect_error "armored, the wrong key" 1 "p.asc: no identity matched" -- decrypt -i "$d/other.txt" -o "$d/x.out" "$d/p.asc"
[[ ! -e $d/x.out ]] && ok || bad "bad armor left an output"
# The wrong key for an armored FIFO whose writer stalls: said at once (the dearmoring thread,
# waiting for the rest, is woken), not when the writer goes.
mkfifo "$d/fifo"
{ head -c 100000 "$d/p.asc"; sleep 20; } >"$d/fifo" &
writer=$!
SECONDS=0
timeout 10 "$HETPIPE" decrypt -i "$d/other.txt" -o "$d/x.out" "$d/fifo" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $SECONDS -lt 5 ]] && grep -q "no identity matched" "$tmp/err" && ok ||
  bad "armored FIFO, the wrong key: exit $rc after $SECONDS s: $(cat "$tmp/err")"
kill $writer 2>/dev/null
wait $writer 2>/dev/null
rm -f "$d"/*.asc "$d/fifo"
head -c 3000 /dev/urandom >"$d/p"

# The largest chunk size: 1 GiB of plaintext is more than 1 GiB sealed, and decrypt used to ask
# for that (refused: "--chunk-size must be between 4K and 1G").
"$HETPIPE" encrypt -r "$R" --chunk-size 1G --slots 2 -o "$d/p.age" "$d/p" &&
  "$HETPIPE" decrypt -i "$d/key.txt" --chunk-size 1G --slots 2 -o "$d/p.out" "$d/p.age" &&
  cmp -s "$d/p" "$d/p.out" && ok || bad "round trip with --chunk-size 1G"
rm -f "$d/p.out"

# Several recipients, a recipients file, standard streams, a passphrase from the environment.
R2=$(sed -n 's/^# public key: //p' "$d/other.txt")
printf '# team\n%s\n\n%s\n' "$R" "$R2" >"$d/recipients"
head -c 200000 /dev/urandom >"$d/p"
cat "$d/p" | "$HETPIPE" encrypt -R "$d/recipients" | "$HETPIPE" decrypt -i "$d/other.txt" | cmp -s - "$d/p" &&
  ok || bad "stdin to stdout with a recipients file"
export HETPIPE_TEST_PW="correct horse battery staple"
"$HETPIPE" encrypt --passphrase-env HETPIPE_TEST_PW --work-factor 10 -o "$d/pw.age" "$d/p" &&
  "$HETPIPE" decrypt --passphrase-env HETPIPE_TEST_PW -o "$d/pw.out" "$d/pw.age" && cmp -s "$d/p" "$d/pw.out" &&
  ok || bad "passphrase round trip"
HETPIPE_TEST_PW=wrong expect_error "wrong passphrase" 1 "pw.age: wrong passphrase" -- decrypt --passphrase-env HETPIPE_TEST_PW -o "$d/x.out" "$d/pw.age"
expect_error "encrypt --json" 2 "encrypt: --json has nothing to print" -- encrypt --json -r "$R" -o "$d/x.age" "$d/p"
expect_error "decrypt --json" 2 "decrypt: --json has nothing to print" -- decrypt --json -i "$d/key.txt" -o "$d/x.out" "$d/pw.age"
[[ ! -e $d/x.age && ! -e $d/x.out ]] && ok || bad "--json left an output"
expect_error "passphrase with recipients" 2 "cannot be combined" -- encrypt --passphrase-env HETPIPE_TEST_PW -r "$R" -o "$d/x.age" "$d/p"

# Bad inputs: each a one-line error, exit 1, and no output file.
"$HETPIPE" encrypt -r "$R" -o "$d/good.age" "$d/p"
size=$(stat -c %s "$d/good.age")
flip() {  # flip FILE OFFSET: XOR one byte with 1 (always a change)
  python3 -c 'import sys; p, i = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, "rb").read()); b[i] ^= 1; open(p, "wb").write(b)' "$1" "$2"
}
cp "$d/good.age" "$d/flip.age" && flip "$d/flip.age" $((size - 1000))
expect_error "modified chunk" 1 "flip.age: .*failed authentication" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/flip.age"
# The chunk named is the one changed (the last of 4), not every chunk the pipeline chunk held.
expect_error "modified chunk, named" 1 "flip.age: payload chunk 3 failed authentication" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/flip.age"
head -c $((size - 70000)) "$d/good.age" >"$d/trunc.age"
expect_error "truncated file" 1 "trunc.age: .*failed authentication" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/trunc.age"
python3 - "$d/good.age" "$d/nofinal.age" "$d/extra.age" "$d/nopayload.age" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
end = data.index(b"\n---") + 1
end = data.index(b"\n", end) + 1 + 16  # header, then the nonce
payload = data[end:]
full = 65536 + 16
open(sys.argv[2], "wb").write(data[:end] + payload[:3 * full])   # whole chunks, final one missing
open(sys.argv[3], "wb").write(data + b"trailing data")            # data after the final chunk
open(sys.argv[4], "wb").write(data[:end])                         # no payload at all
PY
expect_error "missing final chunk" 1 "nofinal.age: .*failed authentication" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/nofinal.age"
expect_error "data after the final chunk" 1 "extra.age: .*failed authentication" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/extra.age"
expect_error "no payload" 1 "nopayload.age: the payload is missing" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/nopayload.age"
expect_error "wrong key" 1 "good.age: no identity matched" -- decrypt -i "$d/other.txt" -o "$d/x.out" "$d/good.age"
cp "$d/good.age" "$d/hdr.age" && flip "$d/hdr.age" $(($(grep -abo -- '-> X25519 ' "$d/good.age" | head -1 | cut -d: -f1) + 10))
expect_error "corrupted header" 1 "hdr.age: " -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/hdr.age"
python3 - "$d/good.age" "$d/share.age" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.index(b"-> X25519 ") + len(b"-> X25519 ") + 42   # the share's 43rd (last) character
abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
data[i] = abc[abc.index(data[i]) | 1]   # its two unused low bits are no longer zero
open(sys.argv[2], "wb").write(data)
PY
expect_error "non-canonical X25519 share" 1 "share.age: X25519 stanza share is not canonical" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/share.age"
python3 - "$d/good.age" "$d/mac.age" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.index(b"\n--- ") + 5
data[i] = ord("A") if data[i] != ord("A") else ord("B")
open(sys.argv[2], "wb").write(data)
PY
expect_error "header MAC" 1 "mac.age: .*MAC" -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/mac.age"
# A pipe or FIFO named by its path: its header is read from the stream, and the payload after it
# (once read again from offset 0 of a new open: "payload failed authentication"; a FIFO hung).
head -c 200000 /dev/urandom >"$d/s" && "$HETPIPE" encrypt -r "$R" -o "$d/s.age" "$d/s" && ok || bad "encrypt s"
"$HETPIPE" decrypt -i "$d/key.txt" -o "$d/s1.out" <(cat "$d/s.age") 2>"$tmp/err" && cmp -s "$d/s" "$d/s1.out" &&
  ok || bad "decrypt <(cat file): $(cat "$tmp/err")"
mkfifo "$d/fifo"
(cat "$d/s.age" >"$d/fifo") &
timeout 20 "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/s2.out" "$d/fifo" 2>"$tmp/err" && cmp -s "$d/s" "$d/s2.out" &&
  ok || bad "decrypt FIFO: $(cat "$tmp/err")"
wait
# A file smaller than the pipe's buffer: its writer is gone before the header is read. The payload
# is read on from the header's descriptor (opened again, the FIFO waited for a writer for ever).
head -c 3000 /dev/urandom >"$d/small" && "$HETPIPE" encrypt -r "$R" -o "$d/small.age" "$d/small"
cat "$d/small.age" >"$d/fifo" &
writer=$!
sleep 0.3
timeout -k 3 10 "$HETPIPE" decrypt -i "$d/key.txt" -o "$d/small.out" "$d/fifo" 2>"$tmp/err" &&
  cmp -s "$d/small" "$d/small.out" && ok || bad "decrypt a FIFO whose writer has gone: $(cat "$tmp/err")"
wait $writer
rm -f "$d/fifo"
# SIGINT during the passphrase's key derivation (before the job starts): exit 130, no output (the
# job, shorter than the monitor's first wait, once ran to the end).
PW=x "$HETPIPE" encrypt --passphrase-env PW --work-factor 20 -o "$d/sig.age" "$d/s" 2>"$tmp/err" &
interrupt_job $! 0.3
rc=$?
[[ $rc -eq 130 && ! -e $d/sig.age ]] && ok || bad "SIGINT during scrypt: exit $rc, $(cat "$tmp/err")"
# Waits that never end stop at the first SIGINT: an identity or recipients file, or the input,
# that is a FIFO no writer opens, and standard input whose writer is idle (each once needed a
# second signal). No output is left.
mkfifo "$d/idle"
for args in "decrypt -i $d/idle -o $d/w.out $d/s.age" "encrypt -R $d/idle -o $d/w.age $d/s" \
  "decrypt -i $d/key.txt -o $d/w.out $d/idle"; do
  # shellcheck disable=SC2086
  "$HETPIPE" $args 2>"$tmp/err" </dev/null &
  interrupt_job $! 0.5
  rc=$?
  [[ $rc -eq 130 && $interrupt_ms -lt 1200 && ! -e $d/w.out && ! -e $d/w.age ]] && ok ||
    bad "SIGINT while waiting on a FIFO ($args; 255: still waiting 5 s later): exit $rc after $interrupt_ms ms"
done
sleep 30 >"$d/idle" &
holder=$!
"$HETPIPE" decrypt -i "$d/key.txt" -o "$d/w.out" <"$d/idle" 2>"$tmp/err" &
interrupt_job $! 0.5
rc=$?
[[ $rc -eq 130 && $interrupt_ms -lt 1200 && ! -e $d/w.out ]] && ok ||
  bad "SIGINT while standard input is idle (decrypt): exit $rc after $interrupt_ms ms"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
rm -f "$d/idle"
# A write to a pipe whose reader never reads cannot see the flag: 2 s after the first SIGINT the
# process ends as at a second one (exit 130, "interrupted"). It once waited for the reader.
mkfifo "$d/stall"
exec 3<>"$d/stall"  # a reader that never reads
"$HETPIPE" encrypt -r "$R" -o - "$d/s" >"$d/stall" 2>"$tmp/err" &
interrupt_job $! 0.3
rc=$?
exec 3<&-
[[ $rc -eq 130 ]] && grep -q '^hetpipe: interrupted$' "$tmp/err" && ok ||
  bad "SIGINT while standard output is stalled: exit $rc, $(cat "$tmp/err")"
rm -f "$d/stall"
# Ctrl-C at the passphrase prompt (a terminal of its own): exit 130 at once, echo back on.
if python3 -c 'import os; os.openpty()' 2>/dev/null; then
PYTHONPATH=$here python3 - "$HETPIPE" "$d/s" "$d/w.age" <<'PY' >"$tmp/out" 2>&1 && ok || bad "Ctrl-C at the prompt: $(cat "$tmp/out")"
import os, pty, select, sys, termios, time
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "encrypt", "-p", "-o", sys.argv[3], sys.argv[2]])
seen = b""
t0 = time.time()
while b"passphrase: " not in seen and time.time() - t0 < 10:
    if select.select([fd], [], [], 0.1)[0]:
        seen += os.read(fd, 100)
echo_at_prompt = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
os.write(fd, b"\x03")  # the terminal's interrupt character: SIGINT to the job
code, seen = wait_exit(pid, fd, seen)
echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
print("echo at prompt", echo_at_prompt, "exit", code, "echo after", echo_after, seen[-80:])
sys.exit(0 if not echo_at_prompt and code == 130 and echo_after and not os.path.exists(sys.argv[3]) else 1)
PY
# Binary ciphertext to a terminal is refused before the passphrase is asked for (it was asked
# twice, then refused).
PYTHONPATH=$here python3 - "$HETPIPE" "$d/s" <<'PY' >"$tmp/out" 2>&1 && ok || bad "encrypt -p to a terminal: $(cat "$tmp/out")"
import os, pty, sys
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "encrypt", "-p", sys.argv[2]])
code, seen = wait_exit(pid, fd)
print("exit", code, seen)
sys.exit(0 if code == 2 and b"passphrase" not in seen.lower() and b"terminal" in seen else 1)
PY
# A passphrase with recipients is refused before the prompt too.
PYTHONPATH=$here python3 - "$HETPIPE" "$d/s" "$R" "$d/w.age" <<'PY' >"$tmp/out" 2>&1 && ok || bad "encrypt -p -r: $(cat "$tmp/out")"
import os, pty, sys
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "encrypt", "-p", "-r", sys.argv[3], "-o", sys.argv[4], sys.argv[2]])
code, seen = wait_exit(pid, fd)
print("exit", code, seen)
sys.exit(0 if code == 2 and b"Enter passphrase" not in seen and b"cannot be combined" in seen else 1)
PY
# decrypt without -i asks for a passphrase only for a file that needs one: one encrypted to
# recipients is told so at once (it was prompted for, or told there was no terminal to ask on),
# and a passphrase file still gets its prompt, after its header was read.
"$HETPIPE" encrypt -r "$R" -o "$d/r.age" "$d/s"
HETPIPE_TEST_PW=pw "$HETPIPE" encrypt --passphrase-env HETPIPE_TEST_PW --work-factor 10 -o "$d/w2.age" "$d/s"
PYTHONPATH=$here python3 - "$HETPIPE" "$d/r.age" "$d/w2.age" "$d/s" <<'PY' >"$tmp/out" 2>&1 && ok || bad "decrypt's prompt only when needed: $(cat "$tmp/out")"
import os, pty, select, sys, time
from pty_job import wait_exit
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "decrypt", "-o", os.devnull, sys.argv[2]])
code, seen = wait_exit(pid, fd)
print("recipients file: exit", code, seen)
ok = code == 1 and b"passphrase" not in seen.lower() and b"give an identity file (-i)" in seen
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "decrypt", "-o", sys.argv[4] + ".out", sys.argv[3]])
seen = b""
t0 = time.time()
while b"passphrase: " not in seen and time.time() - t0 < 10:
    if select.select([fd], [], [], 0.1)[0]:
        seen += os.read(fd, 100)
os.write(fd, b"pw\n")
code, seen = wait_exit(pid, fd, seen, seconds=20)
same = open(sys.argv[4] + ".out", "rb").read() == open(sys.argv[4], "rb").read()
print("passphrase file: exit", code, "same", same, seen[-80:])
sys.exit(0 if ok and code == 0 and same else 1)
PY
rm -f "$d/r.age" "$d/w2.age" "$d/s.out"
else
  echo "SKIP: no pseudo-terminal here; Ctrl-C at the passphrase prompt not checked" >&2
fi
printf 'not an age file\n' >"$d/text"
expect_error "not an age file" 1 "text: " -- decrypt -i "$d/key.txt" -o "$d/x.out" "$d/text"
expect_error "bad recipient" 1 "age1bogus" -- encrypt -r age1bogus -o "$d/x.age" "$d/p"
# Keys of the wrong kind are named: an SSH key (not supported), a secret key given as a recipient
# (its text never shown), an empty recipients file (named, as age does).
expect_error "SSH recipient" 1 "SSH keys are not supported" -- encrypt -r "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB x@y" -o "$d/x.age" "$d/p"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n' >"$d/id_ssh"
"$HETPIPE" encrypt -r "$R" -o "$d/s.age" "$d/p" || bad "encrypt for the SSH identity case"
expect_error "SSH identity" 1 "id_ssh: line 1: SSH keys are not supported" -- decrypt -i "$d/id_ssh" -o "$d/x.out" "$d/s.age"
SECRET=$(grep '^AGE-SECRET-KEY-' "$d/key.txt")
expect_error "secret key as a recipient" 1 "-r: an age secret key is not a recipient" -- encrypt -r "$SECRET" -o "$d/x.age" "$d/p"
grep -qF "${SECRET:20}" "$tmp/err" && bad "the secret key was shown: $(cat "$tmp/err")" || ok
# The whole key file given as -r (its comment lines, then the key): the key is not shown either.
"$HETPIPE" encrypt -r "$(cat "$d/key.txt")" -o "$d/x.age" "$d/p" 2>"$tmp/err"
[[ $? -eq 1 ]] && ! grep -qF "${SECRET:20}" "$tmp/err" && grep -q '^hetpipe: -r: ' "$tmp/err" && ok ||
  bad "a key file as -r: $(cat "$tmp/err")"
: >"$d/empty_recipients"
expect_error "empty recipients file" 1 "empty_recipients: no recipients in this file" -- encrypt -R "$d/empty_recipients" -o "$d/x.age" "$d/p"
# -R - and -i -: the recipients or identities from standard input (as age reads them), which then
# cannot hold the data as well.
sed -n 's/^# public key: //p' "$d/key.txt" | "$HETPIPE" encrypt -R - -o "$d/s.age" "$d/p" &&
  "$HETPIPE" decrypt -i - -o "$d/s.out" "$d/s.age" <"$d/key.txt" && cmp -s "$d/p" "$d/s.out" &&
  ok || bad "-R - and -i -"
rm -f "$d/s.out"
expect_error "-i - with the data on stdin" 2 "standard input can hold the identities" -- decrypt -i - -o "$d/x.out" -
expect_error "-R - twice" 2 "standard input can hold the recipients" -- encrypt -R - -R - -o "$d/x.age" "$d/p"
# scrypt with work factor 30 wants 1 TiB: the error says so (once "OpenSSL: scrypt failed").
if sanitized; then
  echo "SKIP: scrypt memory (a sanitizer's allocator refuses 1 TiB by ending the process)"
else
  PW=x expect_error "scrypt memory" 1 "work factor 30 failed: it needs [0-9]* MiB of memory" -- encrypt --passphrase-env PW --work-factor 30 -o "$d/x.age" "$d/p"
fi
[[ ! -e "$d/x.out" && ! -e "$d/x.age" ]] && ok || bad "an output file was left behind"
ls -a "$d" | grep -q hetpipe- && bad "temporary file left behind" || ok

# Armored output's intermediate file: standard output's reader gone (SIGPIPE) still removes it
# (it stayed in the temporary folder, the whole ciphertext); a device output keeps it out of
# /dev (as another user, creating it there failed: "permission denied").
mkdir -p "$tmp/tmpdir"
head -c $((64 << 20)) /dev/zero >"$d/big"
TMPDIR=$tmp/tmpdir "$HETPIPE" encrypt -a -r "$R" -o - "$d/big" 2>/dev/null | head -c 10 >/dev/null
[[ -z $(ls -A "$tmp/tmpdir") ]] && ok || bad "encrypt -a to a closed pipe left: $(ls -A "$tmp/tmpdir")"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  pub=$(mktemp /tmp/hetpipe-age-test-XXXXXX) && cp "$d/p" "$pub" && chmod 644 "$pub"
  TMPDIR=/tmp setpriv --reuid=65534 --regid=65534 --clear-groups "$HETPIPE" encrypt -a -r "$R" -o /dev/null "$pub" 2>"$tmp/err" &&
    ok || bad "encrypt -a -o /dev/null as another user: $(cat "$tmp/err")"
  rm -f "$pub"
fi
rm -f "$d/big"

# Found by an audit. A header is scanned once, line by line (each line scanned it from its start:
# 200 KB of short lines took 40 s, a hostile file could hold a CPU for ever), and a file that is
# not age is said to be at once, not after 1 MiB ("header longer than 1 MiB" for any large file).
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"a\n" * 100000)' "$d/lines"
timeout -k 1 10 "$HETPIPE" decrypt -i "$d/key.txt" "$d/lines" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 && $(cat "$tmp/err") == "hetpipe: $d/lines: not an age file (no age-encryption.org version line)" ]] &&
  ok || bad "100 000 short lines: rc $rc (124: still reading): $(cat "$tmp/err")"
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"age-encryption.org/v1\n" + b"-> x\n\n" * 60000)' "$d/lines"
timeout -k 1 10 "$HETPIPE" decrypt -i "$d/key.txt" <"$d/lines" >"$tmp/out" 2>"$tmp/err"
rc=$?
[[ $rc -eq 1 ]] && grep -q "^hetpipe: -: age header" "$tmp/err" && ok ||
  bad "60 000 stanza lines on standard input: rc $rc (124: still reading): $(cat "$tmp/err")"
head -c 2000000 /dev/urandom >"$d/lines"
expect_error "a large file that is not age" 1 "lines: not an age file" -- decrypt -i "$d/key.txt" "$d/lines"
rm -f "$d/lines"
# Armor twice is not an age file, as age says (it was decrypted).
echo twice >"$d/t"
"$HETPIPE" encrypt -a -r "$R" -o "$d/t.asc" "$d/t"
python3 - "$d/t.asc" "$d/t2.asc" <<'PY'
import base64, sys
b = base64.b64encode(open(sys.argv[1], "rb").read()).decode()
lines = [b[i:i + 64] for i in range(0, len(b), 64)]
open(sys.argv[2], "w").write("-----BEGIN AGE ENCRYPTED FILE-----\n" + "\n".join(lines) + "\n-----END AGE ENCRYPTED FILE-----\n")
PY
expect_error "armored twice" 1 "t2.asc: not an age file" -- decrypt -i "$d/key.txt" "$d/t2.asc"
# An armored passphrase file decrypts with -i given too, as a binary one does (it was "not to a
# key").
HETPIPE_TEST_PW=pw "$HETPIPE" encrypt -a --passphrase-env HETPIPE_TEST_PW --work-factor 10 -o "$d/t.pw.asc" "$d/t" &&
  [[ $(HETPIPE_TEST_PW=pw "$HETPIPE" decrypt -i "$d/key.txt" --passphrase-env HETPIPE_TEST_PW "$d/t.pw.asc" 2>&1) == twice ]] &&
  ok || bad "armored passphrase file with -i too"
# A low-order recipient is refused naming it, exit 1 as other bad recipients (it was a usage error
# naming nothing); an identity file that is itself age-encrypted is named for what it is.
low=age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z
expect_error "low-order recipient" 1 "$low: a low-order X25519 point" -- encrypt -r "$low" -o "$d/x.age" "$d/t"
HETPIPE_TEST_PW=pw "$HETPIPE" encrypt -a --passphrase-env HETPIPE_TEST_PW --work-factor 10 -o "$d/id.asc" "$d/key.txt"
expect_error "age-encrypted identity file" 1 "id.asc: line 1: a passphrase-protected identity file is not supported" -- decrypt -i "$d/id.asc" "$d/t.asc"
[[ ! -e $d/x.age ]] && ok || bad "a refused encryption left its output"
rm -f "$d"/t*

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]

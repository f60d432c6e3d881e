# Shared by the benchmark scripts (sourced): timing and the machine line.
# t CMD...: best whole-process wall time of REPS runs; gbps BYTES SECONDS.
t() { python3 bench/best_time.py "$reps" "$@"; }
gbps() { python3 -c "import sys; t=sys.argv[2]; print('FAIL' if t.startswith('FAIL') else f'{int(sys.argv[1]) / float(t) / 1e9:.2f}')" "$1" "$2"; }
# gpu_name: the first CUDA device's name, or nothing.
gpu_name() { "$hp" info --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print(d[0]["name"] if d else "")'; }
# device_modes: sets gpu (the first device's name, or nothing) and modes (cpu, and gpu auto where
# a device is), and prints the machine line.
device_modes() {
  gpu=$(gpu_name)
  modes="cpu"
  [[ -n $gpu ]] && modes="cpu gpu auto"
  machine_line "$gpu"
}
machine_line() {
  echo "machine: $(nproc) threads ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1))${1:+, $1}; $(date -u +%F); commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}${HP_ARGS:+; options $HP_ARGS}"
}
# random_file FILE BYTES: made once (u64 "hard" values, the checksum benchmark's big file).
random_file() { [[ -f $1 ]] || "$hp" gen --dtype u64 --dist hard --rows $(($2 / 8)) -o "$1"; }
# small_files DIR COUNT FROM: COUNT files of 64 KiB cut from the start of FROM, made once.
small_files() {
  [[ -d $1 ]] && return
  mkdir -p "$1.tmp"
  head -c $(($2 * 65536)) "$3" | (cd "$1.tmp" && split -b 64K -a 6 -d - f)
  mv "$1.tmp" "$1"
}

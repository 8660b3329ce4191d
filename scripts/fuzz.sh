#!/usr/bin/env bash
# Fuzzes every decoder of src/proto/ for a bounded time.
#
# Usage: scripts/fuzz.sh [seconds-per-target]        (default 60)
#
# Targets: framer, packets, result_machine, handshake, stmt, compress, and
# session (the connection obligations machine) (fuzz/fuzz_targets/).
# Each runs for the given time with libFuzzer's -max_total_time, starting
# from fuzz/corpus/<target> (kept between runs) plus hand-written valid
# packets that this script writes to fuzz/seeds/<target>. Exits non-zero if
# any target crashes (panic, timeout, out of memory), printing the crash file.
#
# Only a stable toolchain is needed. With the default FUZZ_SANITIZER=none,
# cargo-fuzz passes rustc only stable flags (-Cpasses=sancov-module, -Cllvm-args,
# --cfg fuzzing), so it builds on stable as is. A sanitizer (address, leak,
# memory, thread) needs rustc's nightly-only -Zsanitizer: the script then sets
# RUSTC_BOOTSTRAP=1, which lets stable rustc accept it.
#
# Environment:
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default none: src/proto/ has no
#                   unsafe code, so AddressSanitizer would find nothing more
#                   while halving the speed and taking ~0.5 GiB per target)
#   FUZZ_RSS_MB     libFuzzer -rss_limit_mb (default 512)
#   FUZZ_TARGETS    targets to run (default: all)
set -euo pipefail

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
sanitizer="${FUZZ_SANITIZER:-none}"
rss_mb="${FUZZ_RSS_MB:-512}"
targets=(${FUZZ_TARGETS:-framer packets result_machine handshake stmt compress session})

cd "$(dirname "$0")/../fuzz"
if [[ "$sanitizer" != none ]]; then
  export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version '^0.13'
fi

# ---------------------------------------------------------------- seeds ----
# Packets as printf formats. None contains '%'.
OK='\x00\x01\x00\x02\x00\x00\x00'                 # 1 row affected, AUTOCOMMIT
OK_MORE='\x00\x00\x00\x0a\x00\x00\x00'            # AUTOCOMMIT | MORE_RESULTS_EXISTS
OK_TRACK='\x00\x00\x00\x02\x40\x00\x00\x02ok\x05\x00\x03\x01\x02\x03' # SESSION_STATE_CHANGED
OK_EOF='\xfe\x00\x00\x02\x00\x00\x00'             # end of rows under DEPRECATE_EOF
ERR='\xff\x15\x04#28000Access denied'             # 1045
EOF_='\xfe\x00\x00\x02\x00'                       # classic EOF
EOF_MORE='\xfe\x00\x00\x0a\x00'                   # classic EOF, more results follow
COLDEF='\x03def\x04test\x01t\x01t\x02id\x02id\x0c\x3f\x00\x0b\x00\x00\x00\x03\x03\x42\x00\x00\x00'
ROW1='\x01\x31'                                   # "1"
ROW2='\x0242\xfb'                                 # "42", NULL
INFILE='\xfbdata.csv'                             # LOAD DATA LOCAL request
SWITCH='\xfecaching_sha2_password\x00abcdefghijklmnopqrst\x00'
# hello PLUGIN [LOW-CAPS]: a protocol-10 greeting (MySQL flags unless told).
hello() {
  printf '%s' '\x0a5.5.5-10.11.19-MariaDB\x00\x2a\x00\x00\x00abcdefgh\x00'
  printf '%s' "${2:-\\xdf\\xf7}"                  # caps low: all but COMPRESS, SSL
  printf '%s' '\x2d\x02\x00\xff\x01\x15'          # collation, status, caps high, auth len 21
  printf '%s' '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ijklmnopqrst\x00'
  printf '%s\\x00' "$1"
}
HELLO_NATIVE="$(hello mysql_native_password)"
HELLO_MARIADB="$(hello mysql_native_password '\xde\xf7')" # LONG_PASSWORD clear
HELLO_SHA2="$(hello caching_sha2_password)"
HELLO_CLEAR="$(hello mysql_clear_password)"

# pkt FMT: the format of FMT's bytes behind a one-byte length (chunked targets).
pkt() {
  local n
  n=$(printf "$1" | wc -c)
  ((n < 256)) || { echo "seed packet too long: $1" >&2; exit 2; }
  printf '\\x%02x%s' "$n" "$1"
}
# framed FMT SEQ: FMT's bytes behind a MySQL packet header.
framed() {
  local n
  n=$(printf "$1" | wc -c)
  printf '\\x%02x\\x%02x\\x%02x\\x%02x%s' $((n & 255)) $((n >> 8 & 255)) $((n >> 16)) "$2" "$1"
}
# seed TARGET NAME FMT...: writes the formats back to back to seeds/TARGET/NAME.
seed() {
  local t=$1 name=$2 f
  shift 2
  mkdir -p "seeds/$t"
  : >"seeds/$t/$name"
  for f in "$@"; do printf "$f" >>"seeds/$t/$name"; done
}

rm -rf seeds
# framer: byte 0 = max packet (low 7 bits x 128) | reset between packets (0x80).
seed framer query '\x7f' "$(framed '\x03SELECT 1' 0)" "$(framed "$OK" 1)"
seed framer reset '\xff' "$(framed '\x0e' 0)" "$(framed "$OK" 0)"
seed framer split '\x01' "$(framed "$COLDEF" 0)" "$(framed "$ROW1" 1)" "$(framed '' 2)"
seed framer payloads '\x7f\x05hello\x00\x03abc'
# packets: one payload for every decoder.
seed packets ok "$OK"
seed packets ok_track "$OK_TRACK"
seed packets err "$ERR"
seed packets eof "$EOF_"
seed packets coldef "$COLDEF"
seed packets row '\x02' "$ROW2"
seed packets hello "$HELLO_NATIVE"
# result_machine: byte 0 = DEPRECATE_EOF (1) | SESSION_TRACK (2), then packets.
seed result_machine ok '\x00' "$(pkt "$OK")"
seed result_machine ok_track '\x03' "$(pkt "$OK_TRACK")"
seed result_machine err '\x00' "$(pkt "$ERR")"
seed result_machine rows_deprecate_eof '\x01' "$(pkt '\x01')" "$(pkt "$COLDEF")" \
  "$(pkt "$ROW1")" "$(pkt "$ROW1")" "$(pkt "$OK_EOF")"
seed result_machine rows_classic_multi '\x00' "$(pkt '\x02')" "$(pkt "$COLDEF")" \
  "$(pkt "$COLDEF")" "$(pkt "$EOF_")" "$(pkt "$ROW2")" "$(pkt "$EOF_MORE")" "$(pkt "$OK")"
seed result_machine multi_ok '\x01' "$(pkt "$OK_MORE")" "$(pkt "$OK")"
seed result_machine infile '\x00' "$(pkt "$INFILE")" "$(pkt "$OK")"
# handshake: byte 0 = database (1) | secure (2) | cleartext ok (4) | empty
# password (8) | extra caps (16), then packets.
seed handshake native '\x01' "$(pkt "$HELLO_NATIVE")" "$(pkt "$OK")"
seed handshake mariadb_err '\x00' "$(pkt "$HELLO_MARIADB")" "$(pkt "$ERR")"
seed handshake sha2_fast '\x10' "$(pkt "$HELLO_SHA2")" "$(pkt '\x01\x03')" "$(pkt "$OK")"
seed handshake switch_full '\x02' "$(pkt "$HELLO_NATIVE")" "$(pkt "$SWITCH")" \
  "$(pkt '\x01\x04')" "$(pkt "$OK")"
seed handshake clear '\x06' "$(pkt "$HELLO_CLEAR")" "$(pkt "$OK")"
seed handshake refused '\x00' "$(pkt "$ERR")"
# stmt: byte 0 = DEPRECATE_EOF (1) | column-type count << 4, the types, then packets.
PREP_OK='\x00\x01\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00' # id 1, 1 column, 1 param
BIN_ROW='\x00\x00\x2a\x00\x00\x00\x04\xe8\x07\x02\x1d\x02hi' # INT 42, DATE, VARCHAR
seed stmt prepare '\x01' "$(pkt "$PREP_OK")" "$(pkt "$COLDEF")" "$(pkt "$COLDEF")"
seed stmt prepare_eofs '\x00' "$(pkt "$PREP_OK")" "$(pkt "$COLDEF")" "$(pkt "$EOF_")" \
  "$(pkt "$COLDEF")" "$(pkt "$EOF_")"
seed stmt binary_row '\x31\x03\x0a\xfd' "$(pkt "$BIN_ROW")"
seed stmt temporal '\x00' "$(pkt '\xe8\x07\x02\x1d\x17\x3b\x3a\x40\xe2\x01\x00')" \
  "$(pkt '\x01\x22\x00\x00\x00\x16\x3b\x3b')" "$(pkt '2024-02-29 23:59:58.5')" "$(pkt '\x2d838:59:59')"

# session: one action per byte (low nibble: what, high nibble: argument).
# A statement owed then settled; a transaction committed and cut; a kill.
seed session settle '\x11\x0e\x02\x0e'
seed session commit '\x04\x31\x05\x03\x0e'
seed session kill '\x11\x1c\x0e\x06\x0e'

# ---------------------------------------------------------------- fuzz -----
# Release build with debug assertions and overflow checks (cargo-fuzz's default).
build_flags=(--sanitizer "$sanitizer" --debug-assertions)
echo "== building (sanitizer: $sanitizer)" >&2
cargo fuzz build "${build_flags[@]}"

mkdir -p artifacts
status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t.log"
  echo "== fuzzing $t for ${secs}s (log: fuzz/$log)" >&2
  set +e
  cargo fuzz run "${build_flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb="$rss_mb" -max_len=4096 -timeout=10 \
    -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done |==[0-9]+== ERROR|thread .* panicked|SUMMARY)' >&2
  rc=${PIPESTATUS[0]}
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if ((rc != 0)); then
    status=1
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "!! $t FAILED (exit $rc); crash file: ${crash:-?} (full output: fuzz/$log)" >&2
    [[ -n "$crash" && -f "$crash" ]] && echo "   input (hex): $(od -An -v -tx1 "$crash" | tr -d ' \n')" >&2
    sed -n '/panicked at/,/^$/p' "$log" | head -20 >&2
    summary+=("$t: CRASHED (exit $rc), crash file ${crash:-?}")
  else
    summary+=("$t: ok, ${took:-?} s, ${runs:-?} runs, ${rate:-?} exec/s, corpus $(ls "corpus/$t" | wc -l) files")
  fi
done

echo "== summary" >&2
printf '   %s\n' "${summary[@]}" >&2
exit $status

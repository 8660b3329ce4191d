#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each).
# Usage: scripts/fuzz.sh [seconds-per-target]
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the
# sanitizer flags it requires.
set -euo pipefail
secs="${1:-60}"
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

seed() { # seed <target> <name> <printf-format>
  mkdir -p "corpus/$1"
  printf "$3" > "corpus/$1/$2"
}
# Valid packets to start from.
seed framer query '\x09\x00\x00\x00\x03SELECT 1'
seed framer two '\x01\x00\x00\x00\x01\x01\x00\x00\x01\x02'
seed packets ok '\x00\x01\x02\x02\x00\x00\x00'
seed packets err '\xff\x15\x04#28000Access denied'
seed packets eof '\xfe\x00\x00\x02\x00'
seed packets coldef '\x03def\x04test\x01t\x01t\x02id\x02id\x0c\x3f\x00\x0b\x00\x00\x00\x03\x03\x42\x00\x00\x00'
seed packets row '\x03\x0242\xfb\x01x'
seed result_machine ok '\x01\x07\x00\x00\x00\x02\x00\x00\x00'
seed result_machine rows '\x01\x01\x01\x18\x03def\x04test\x01t\x01t\x02id\x02id\x0c\x3f\x00\x0b\x00\x00\x00\x03\x03\x42\x00\x00\x00\x02\x01\x31\x07\xfe\x00\x00\x02\x00\x00\x00'
seed handshake hello '\x00\x50\x0a5.5.5-10.11\x00\x2a\x00\x00\x00abcdefgh\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00\x07\x00\x00\x00\x02\x00\x00\x00'

status=0
for t in framer packets result_machine handshake; do
  echo "== fuzzing $t for ${secs}s" >&2
  if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096; then
    echo "!! $t crashed; see fuzz/artifacts/$t/" >&2
    ls -1 "artifacts/$t" >&2 || true
    status=1
  fi
done
exit $status

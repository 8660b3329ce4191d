#!/usr/bin/env bash
# What the ring's batched wait costs against sysbench: for each test and each
# RingConfig setting, one `--compare-sysbench=1` run (sysbench, then
# mysql-uring-bench with that setting, back to back), ROUNDS rounds with the
# settings interleaved, JSON per run, then a summary of the medians.
#
#   bench/sysbench-ring-sweep.sh OUTDIR [ROUNDS] [SECONDS] -- [server options]
#   bench/sysbench-ring-sweep.sh /tmp/sweep 3 6 -- --mysql-host=127.0.0.1 --mysql-user=root --mysql-db=test
#
# The tables (one of 10,000 rows) must exist; BIN defaults to the release build.
set -euo pipefail
out=${1:?OUTDIR}; rounds=${2:-3}; secs=${3:-6}
shift $(( $# >= 3 ? 3 : $# )); [ "${1:-}" = "--" ] && shift
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/mysql-uring-bench}
tests=${TESTS:-"oltp_point_select oltp_read_only"}
# name:flags, flags joined by + (no flags: the library's defaults, 2/32/200 us)
configs=${CONFIGS:-"default: nobatch:--ring-batch-per=0 wait50:--ring-min-wait-us=50 wait20:--ring-min-wait-us=20 per4:--ring-batch-per=4 per1:--ring-batch-per=1"}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for t in $tests; do
    for c in $configs; do
      name=${c%%:*}; flags=${c#*:}; flags=${flags//+/ }
      # shellcheck disable=SC2086
      "$bin" sysbench "$t" run --threads=64 --time="$secs" --rand-type=uniform \
        --compare-sysbench=1 --json="$out/$t.$name.$r.json" $flags "$@" > "$out/$t.$name.$r.txt" 2>&1 \
        || { echo "failed: $t $name round $r (see $out/$t.$name.$r.txt)"; exit 1; }
      echo "$t $name round $r: $(grep -E '^\| ratio' "$out/$t.$name.$r.txt")"
    done
  done
done
python3 - "$out" <<'EOF'
import json, glob, os, statistics, sys
out = sys.argv[1]
rows = {}
for f in glob.glob(os.path.join(out, "*.json")):
    test, name, _r, _ = os.path.basename(f).split(".")
    j = json.load(open(f))
    s, u = j["sysbench_runs"][0], j["mysql_uring_runs"][0]
    last = j["last_mysql_uring_run"]["client"]
    q = max(j["last_mysql_uring_run"]["queries"]["total"], 1)
    rows.setdefault((test, name), []).append((s, u, last["ring_waits"] / q, (last["syscalls"] or 0) / q))
print("| test | ring setting | rounds | sysbench q/s | mysql-uring q/s | q/s ratio | sysbench CPU us/q | mysql-uring CPU us/q | CPU ratio | p95 ratio | ring waits/q | syscalls/q |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
med = statistics.median
for (test, name), v in sorted(rows.items()):
    sq = med(x[0]["qps"] for x in v); uq = med(x[1]["qps"] for x in v)
    sc = med(x[0]["client_cpu_us_per_query"] for x in v); uc = med(x[1]["client_cpu_us_per_query"] for x in v)
    qr = med(x[1]["qps"] / x[0]["qps"] for x in v)
    cr = med(x[1]["client_cpu_us_per_query"] / x[0]["client_cpu_us_per_query"] for x in v)
    pr = med(x[1]["latency_pct_ms"] / x[0]["latency_pct_ms"] for x in v)
    print(f"| {test} | {name} | {len(v)} | {sq:.0f} | {uq:.0f} | {qr:.2f}x | {sc:.2f} | {uc:.2f} | {cr:.2f}x | {pr:.2f}x | {med(x[2] for x in v):.3f} | {med(x[3] for x in v):.3f} |")
EOF

#!/usr/bin/env bash
# Runs the canonical pipeline (312,000 x 1536 float32 Parquet -> PCA 128 -> spherical
# k-means, k = 50) under a hard memory cap, exact and sampled PCA fit, and prints whether
# each run completed, its peak as the kernel charged it, and the stage table.
#
#   bash scripts/memory_cap.sh [CAP] [DATA_DIR]      (defaults: 1G, /tmp/embedcluster-canonical)
#
# The cap is a memory cgroup (v2 memory.max, else v1 memory.limit_in_bytes; needs root or a
# delegated cgroup), because that is what the kernel enforces for real: it charges resident
# pages (anonymous memory and the page cache the run pulls in, the cache being reclaimed
# under pressure) and OOM-kills what exceeds it. An address-space limit (prlimit --as) was
# rejected: it counts reservations that are never resident (glibc's 64 MiB malloc arenas per
# thread, faer's per-thread GEMM pools of twice the L3 cache, thread stacks, mapped files),
# so a run whose RSS is 250 MiB already reserves about 600 MiB (exact) to 1 GiB (sampled)
# of address space. Without a writable cgroup the script falls back to prlimit --as at 3x
# the cap and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-1G}
DIR=${2:-/tmp/embedcluster-canonical}
BIN=target/release/embedcluster
[ -x "$BIN" ] || cargo build --release -p embedcluster-cli
mkdir -p "$DIR"
DATA="$DIR/canonical_312000x1536.parquet"
if [ ! -s "$DATA" ]; then
    "$BIN" generate --n-samples 312000 --n-features 1536 --n-clusters 50 --seed 0 --output "$DATA"
fi
BYTES=$(numfmt --from=iec "$CAP")

CG=""
cleanup() { if [ -n "$CG" ] && [ -d "$CG" ]; then rmdir "$CG" 2>/dev/null || true; fi; }
trap cleanup EXIT
if grep -q cgroup2 /proc/self/mounts && [ -w /sys/fs/cgroup/cgroup.subtree_control ] \
        && mkdir /sys/fs/cgroup/embedcluster-cap-$$ 2>/dev/null; then
    CG=/sys/fs/cgroup/embedcluster-cap-$$
    echo "$BYTES" > "$CG/memory.max"
    echo 0 > "$CG/memory.swap.max" 2>/dev/null || true
    MECH="cgroup v2 memory.max = $CAP"
    PEAK_FILE=memory.peak
elif [ -d /sys/fs/cgroup/memory ] && mkdir /sys/fs/cgroup/memory/embedcluster-cap-$$ 2>/dev/null; then
    CG=/sys/fs/cgroup/memory/embedcluster-cap-$$
    echo "$BYTES" > "$CG/memory.limit_in_bytes"
    echo "$BYTES" > "$CG/memory.memsw.limit_in_bytes" 2>/dev/null || true
    MECH="cgroup v1 memory.limit_in_bytes = $CAP"
    PEAK_FILE=memory.max_usage_in_bytes
else
    MECH="prlimit --as = 3 x $CAP (no writable memory cgroup here)"
fi
echo "cap: $MECH"

status=0
for fit in exact sample:50000; do
    OUT="$DIR/clusters_$fit.parquet"
    # Evict the input from the page cache, so that the run reads it again and its cache
    # pages are charged to the capped group (pages stay charged to whoever read them first).
    python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$DATA"
    if [ -n "$CG" ]; then
        if [ -f "$CG/memory.max_usage_in_bytes" ]; then echo 0 > "$CG/memory.max_usage_in_bytes"; fi
        # a child shell joins the cgroup, then becomes the run
        set +e
        bash -c "echo \$\$ > $CG/cgroup.procs && exec $BIN run $DATA --n-clusters 50 --pca-fit $fit --labels label --output $OUT --report $DIR/report_$fit.json" 2> "$DIR/stderr_$fit.txt"
        rc=$?
        set -e
        peak=$(cat "$CG/$PEAK_FILE" 2>/dev/null || echo 0)
        oom=$( (cat "$CG/memory.events" "$CG/memory.oom_control" 2>/dev/null || true) | awk '$1 == "oom_kill" {print $2; exit}')
    else
        set +e
        prlimit --as=$((3 * BYTES)) "$BIN" run "$DATA" --n-clusters 50 --pca-fit "$fit" --labels label \
            --output "$OUT" --report "$DIR/report_$fit.json" 2> "$DIR/stderr_$fit.txt"
        rc=$?
        set -e
        peak=0
        oom=n/a
    fi
    echo "== --pca-fit $fit: exit $rc, charged peak $(numfmt --to=iec "$peak") (page cache included), oom kills ${oom:-0}"
    grep -E "^(stage|open|pca_|transform|kmeans|write|total|against)" "$DIR/stderr_$fit.txt" || tail -5 "$DIR/stderr_$fit.txt"
    [ "$rc" -eq 0 ] || status=1
    rm -f "$OUT"
done
exit $status

"""Stage peaks, sampled (the default) against the opt-in resets, and the whole-run peak as
outside tools see it, on the canonical workload (issue 18).

    python bench/stage_peaks.py [DATA] [--repeats 2]

DATA defaults to bench/data/canonical_parts16 (`embedcluster generate --n-samples 312000
--n-features 1536 --n-clusters 50 --parts 16`). Each run is
`/usr/bin/time -v embedcluster --stage-peaks M run DATA --n-clusters 50 --reduce pca:128
--metric cosine --no-output --report R`, watched from outside by this script reading the
child's VmRSS from /proc/PID/status every millisecond. Prints, per run: GNU time's maximum
resident set size, the outside sampler's maximum, the report's peak_rss_bytes, and per stage
the sampled figure over the reset figure (median over repeats). Not part of the tests.
"""

import json
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "embedcluster"


def watch(pid, out, stop):
    peak = 0
    path = f"/proc/{pid}/status"
    while not stop.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
                        break
        except OSError:
            pass
        time.sleep(0.001)
    out.append(peak)


def one(data, method, tmp):
    rep = pathlib.Path(tmp) / f"r_{method}.json"
    cmd = ["/usr/bin/time", "-v", str(BIN), "--stage-peaks", method, "run", str(data),
           "--n-clusters", "50", "--reduce", "pca:128", "--metric", "cosine", "--threads", "2",
           "--no-output", "--report", str(rep)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the watched process is time's child: find it
    child = None
    for _ in range(2000):
        try:
            kids = pathlib.Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            child = int(kids[0])
            break
        time.sleep(0.0005)
    got, stop = [], threading.Event()
    t = threading.Thread(target=watch, args=(child, got, stop))
    t.start()
    err = p.stderr.read()
    p.wait()
    stop.set()
    t.join()
    assert p.returncode == 0, err[-2000:]
    maxrss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) * 1024
    r = json.loads(rep.read_text())
    return {"time_v": maxrss, "outside": got[0], "report": r["peak_rss_bytes"],
            "stages": {s["name"]: s["peak_rss_bytes"] for s in r["stages"]},
            "seconds": sum(s["seconds"] for s in r["stages"])}


def main():
    args = sys.argv[1:]
    repeats = 2
    if "--repeats" in args:
        i = args.index("--repeats")
        repeats = int(args[i + 1])
        del args[i:i + 2]
    data = pathlib.Path(args[0]) if args else ROOT / "bench" / "data" / "canonical_parts16"
    mib = lambda b: f"{b / 2**20:,.0f}"
    runs = {"sampled": [], "reset": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for m in ["sampled", "reset"]:  # interleaved: the machine's noise hits both
                r = one(data, m, tmp)
                runs[m].append(r)
                print(f"{m:8} run {i}: /usr/bin/time -v {mib(r['time_v'])} MiB, outside sampler "
                      f"{mib(r['outside'])} MiB, report {mib(r['report'])} MiB, "
                      f"{r['seconds']:.1f} s", flush=True)
    print("\nper stage (MiB): sampled median [range] / reset median [range], ratio of medians")
    for name in runs["sampled"][0]["stages"]:
        a = [r["stages"][name] for r in runs["sampled"]]
        b = [r["stages"][name] for r in runs["reset"]]
        print(f"  {name:10} {mib(statistics.median(a)):>6} [{mib(min(a))}-{mib(max(a))}] / "
              f"{mib(statistics.median(b)):>6} [{mib(min(b))}-{mib(max(b))}]  "
              f"{statistics.median(a) / statistics.median(b):.3f}")


if __name__ == "__main__":
    main()

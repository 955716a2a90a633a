"""embedcluster against scikit-learn, FAISS and rustcluster, side by side on this machine.

Run it with `bash bench/run.sh` (it makes the virtual environment and builds first). Every
measurement is its own process, started with the same thread count for every system; a
process's peak RSS is the kernel's figure for it (`wait4`'s `ru_maxrss`; our stage peaks are sampled and leave
it alone). Times are
medians of `--repeats` runs, shown with their spread (min-max). Results go to the terminal
and to `--out` as JSON.

Workloads (issue 5):
  W1  canonical pipeline from Parquet: 312,000 x 1536 -> PCA 128 -> spherical k-means, k = 50
  W2  Lloyd throughput: n x d x k grid, 20 iterations from the same initial centres
  W3  exact top-100: base 100,000 x 1536, 1,000 queries, L2 and inner product
  W4  streaming standardization: 1,000,000 x 128 Parquet to a new Parquet
  W6  large k (issue 20): 200,000 x 768 unit-norm rows, k = 1,024 and 4,096, 20 iterations
      from the same initial centres, 2 threads, all rows: ours pruned and unpruned, FAISS,
      scikit-learn, FAISS's SuperKMeans (its own seeding)
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = ROOT / "target" / "release" / "embedcluster"
MiB = 1 << 20


def measured(cmd, threads):
    """Runs `cmd` with `threads` threads for every library; returns (stdout, stderr, wall
    seconds, the child's peak RSS in bytes from wait4)."""
    env = dict(os.environ)
    for v in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
              "NUMEXPR_NUM_THREADS"]:
        env[v] = str(threads)
    import tempfile

    # The child's peak RSS: GNU time's figure (its parent, `time`, is tiny). wait4's
    # ru_maxrss of a child of this process would include this process's own RSS, which a
    # vforked child shares until it execs.
    timer = pathlib.Path("/usr/bin/time")
    with tempfile.TemporaryFile() as errf, tempfile.NamedTemporaryFile("r") as rssf:
        full = ([str(timer), "-f", "%M", "-o", rssf.name] if timer.exists() else []) + list(map(str, cmd))
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=errf, env=env)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
        rss = int(rssf.read().split()[-1]) * 1024 if timer.exists() else ru.ru_maxrss * 1024
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} failed ({p.returncode}):\n"
                           f"{err.decode()[-3000:]}")
    return out.decode(), err.decode(), wall, rss


def worker(spec, threads):
    out, err, wall, rss = measured([sys.executable, str(HERE / "worker.py"), json.dumps(spec)], threads)
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    r = json.loads(line[len("RESULT "):])
    r["process_seconds"] = wall
    r["peak_rss_bytes"] = rss
    return r


def stats(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def fmt_s(st):
    if st is None:
        return "-"
    if st["n"] == 1:
        return f"{st['median']:.3f}"
    return f"{st['median']:.3f} ({st['min']:.3f}-{st['max']:.3f})"


def gen(path, n, d, k, seed):
    if not path.exists():
        subprocess.run([str(BIN), "generate", "--n-samples", str(n), "--n-features", str(d),
                        "--n-clusters", str(k), "--seed", str(seed), "--output", str(path)],
                       check=True, capture_output=True)
    return path


# --- W0 --------------------------------------------------------------------------------------


def gemm_peaks(args):
    peaks = {}
    for t in args.threads:
        r = [worker({"workload": "gemm", "threads": t}, t)["gflops"] for _ in range(args.repeats)]
        peaks[t] = max(r)
        print(f"numpy float32 GEMM peak, {t} thread(s): {peaks[t]:.1f} GFLOP/s "
              f"(best of {args.repeats} runs, 4096^3)", flush=True)
    return peaks


# --- W1 --------------------------------------------------------------------------------------


def w1(args, results):
    data = gen(args.data_dir / "canonical_312000x1536.parquet", 312000, 1536, 50, 0)
    t = 2 if 2 in args.threads else args.threads[-1]
    rows = []
    systems = [("embedcluster exact", "ours", "exact"), ("embedcluster sample:50000", "ours", "sample:50000"),
               ("faiss (all rows)", "faiss", None), ("scikit-learn", "sklearn", None),
               ("rustcluster (+ scikit-learn PCA)", "rustcluster", None)]
    for name, system, fit in systems:
        runs = []
        for _ in range(args.repeats):
            if system == "ours":
                report = args.data_dir / "w1_report.json"
                _, _, wall, rss = measured([str(BIN), "run", str(data), "--n-clusters", "50",
                                            "--pca-fit", fit, "--labels", "label", "--no-output",
                                            "--threads", str(t), "--report", str(report)], t)
                rep = json.loads(report.read_text())
                st = {s["name"]: s["seconds"] for s in rep["stages"]}
                runs.append({"load": None, "fit": st.get("pca_fit", 0) + st.get("pca_solve", 0),
                             "transform": st["transform"], "cluster": st["kmeans"],
                             "total": wall, "peak_rss_bytes": rss, "ari": rep["ari"]})
            else:
                r = worker({"workload": "pipeline", "system": system, "data": str(data),
                            "threads": t}, t)
                runs.append({**r["stages"], "total": r["process_seconds"],
                             "peak_rss_bytes": r["peak_rss_bytes"], "ari": r["ari"]})
        row = {"system": name, "threads": t}
        for key in ["load", "fit", "transform", "cluster", "total", "peak_rss_bytes", "ari"]:
            row[key] = stats([r[key] for r in runs])
        rows.append(row)
        print(f"  W1 {name}: total {fmt_s(row['total'])} s, peak "
              f"{row['peak_rss_bytes']['median'] / MiB:.0f} MiB, ARI {row['ari']['median']:.3f}",
              flush=True)
    results["W1"] = rows
    print(f"\nW1: 312,000 x 1536 Parquet -> PCA 128 (peers: fitted on a 50,000-row sample) -> "
          f"spherical k-means k = 50, {t} threads; seconds, median (min-max) of {args.repeats}")
    print(f"{'system':34} {'load':>20} {'fit':>20} {'transform':>20} {'cluster':>20} "
          f"{'total':>22} {'peak MiB':>9} {'ARI':>6}")
    for r in rows:
        print(f"{r['system']:34} {fmt_s(r['load']) if r['load'] else 'streamed':>20} "
              f"{fmt_s(r['fit']):>20} {fmt_s(r['transform']):>20} {fmt_s(r['cluster']):>20} "
              f"{fmt_s(r['total']):>22} {r['peak_rss_bytes']['median'] / MiB:>9.0f} "
              f"{r['ari']['median']:>6.3f}")
    by = {r["system"]: r for r in rows}
    for ours in ["embedcluster exact", "embedcluster sample:50000"]:
        o = by[ours]["total"]["median"]
        print(f"  {ours}: total / faiss = {o / by['faiss (all rows)']['total']['median']:.2f} "
              f"(target <= 0.5), / scikit-learn = {o / by['scikit-learn']['total']['median']:.2f} "
              f"(target <= 0.25), peak {by[ours]['peak_rss_bytes']['median'] / MiB:.0f} MiB "
              f"(target <= 400), ARI {by[ours]['ari']['median']:.3f} (target >= 0.83)")


# --- W2 --------------------------------------------------------------------------------------


def w2(args, results, peaks):
    ns = [10_000, 100_000, 1_000_000] if not args.quick else [10_000, 100_000]
    ds, ks = [2, 32, 128], [8, 64, 256]
    if args.w2_n:
        ns = [int(v) for v in args.w2_n.split(",")]
    if args.w2_d:
        ds = [int(v) for v in args.w2_d.split(",")]
    if args.w2_k:
        ks = [int(v) for v in args.w2_k.split(",")]
    systems = args.systems.split(",")
    rows = []
    rate = {}  # (system, t, d, k) -> last GFLOP/s, to skip runs that would be too long
    for n in ns:
        for d in ds:
            data = gen(args.data_dir / f"w2_{n}x{d}.npy", n, d, 32, 7)
            for k in ks:
                init = args.data_dir / f"w2_{n}x{d}_init{k}.npy"
                if not init.exists():
                    worker({"workload": "pick_rows", "data": str(data), "k": k, "seed": k,
                            "output": str(init)}, 1)
                for t in args.threads:
                    cell = {"n": n, "d": d, "k": k, "threads": t, "systems": {}}
                    for s in systems:
                        flops = 2.0 * n * k * d * 21
                        est = flops / (rate.get((s, t, d, k), 1e3) * 1e9)
                        if est > args.cell_budget:
                            cell["systems"][s] = {"skipped": f"estimated {est:.0f} s per run"}
                            continue
                        runs = [worker({"workload": "lloyd", "system": s, "data": str(data),
                                        "init": str(init), "iters": 20, "threads": t}, t)
                                for _ in range(args.repeats)]
                        g = stats([r["gflops"] for r in runs])
                        rate[(s, t, d, k)] = g["median"]
                        cell["systems"][s] = {"gflops": g, "seconds": stats([r["seconds"] for r in runs]),
                                              "assignments": runs[0]["assignments"],
                                              "peak_rss_bytes": stats([r["peak_rss_bytes"] for r in runs])}
                    rows.append(cell)
                    print("  " + w2_line(cell, peaks), flush=True)
    results["W2"] = rows
    print(f"\nW2: Lloyd, 20 iterations from the same initial centres; GFLOP/s = 2 n k d x "
          f"assignment passes / time (median of {args.repeats}); [%] = fraction of numpy's "
          f"float32 GEMM peak at that thread count")
    for r in rows:
        print(w2_line(r, peaks))
    misses = []
    for r in rows:
        ours = r["systems"]["embedcluster"]["gflops"]["median"]
        peers = [r["systems"][s]["gflops"]["median"] for s in ["faiss", "sklearn"]
                 if "gflops" in r["systems"].get(s, {})]
        frac = ours / peaks[r["threads"]]
        if r["threads"] == 2 and r["d"] >= 32 and r["k"] >= 64 and frac < 0.85:
            misses.append(f"n={r['n']} d={r['d']} k={r['k']}: {frac:.0%} of peak")
        if peers and ours < max(peers):
            misses.append(f"n={r['n']} d={r['d']} k={r['k']} t={r['threads']}: "
                          f"{ours:.1f} < best peer {max(peers):.1f} GFLOP/s")
    print("W2 targets missed: " + ("none" if not misses else "; ".join(misses)))
    results["W2_misses"] = misses


def w2_line(r, peaks):
    parts = []
    for s, sr in r["systems"].items():
        if "gflops" in sr:
            g = sr["gflops"]["median"]
            parts.append(f"{s} {g:7.1f} [{g / peaks[r['threads']]:4.0%}]")
        else:
            parts.append(f"{s} skipped")
    return f"n={r['n']:>8} d={r['d']:>4} k={r['k']:>4} t={r['threads']}: " + ", ".join(parts)


# --- W6 --------------------------------------------------------------------------------------


def w6(args, results):
    n, d = args.w6_n, 768
    data = gen(args.data_dir / f"w6_{n}x{d}.npy", n, d, 32, 6)
    t = max(args.threads)
    systems = [("embedcluster", {"pruning": "auto"}), ("embedcluster", {"pruning": "off"}),
               ("faiss", {}), ("sklearn", {}), ("superkmeans", {})]
    wanted = set(args.systems.split(",")) | {"superkmeans"}
    rows = []
    for k in [int(v) for v in args.w6_k.split(",")]:
        init = args.data_dir / f"w6_{n}x{d}_init{k}.npy"
        if not init.exists():
            worker({"workload": "pick_rows", "data": str(data), "k": k, "seed": k,
                    "output": str(init)}, 1)
        cell = {"n": n, "d": d, "k": k, "threads": t, "systems": {}}
        for s, extra in systems:
            if s not in wanted:
                continue
            name = s + (f" pruning={extra['pruning']}" if "pruning" in extra else "")
            runs = [worker({"workload": "lloyd", "system": s, "data": str(data), "init": str(init),
                            "iters": 20, "threads": t, "final_objective": True, **extra}, t)
                    for _ in range(args.w6_repeats)]
            cell["systems"][name] = {
                "seconds": stats([r["seconds"] for r in runs]),
                "final_objective": runs[0]["final_objective"],
                "peak_rss_bytes": stats([r["peak_rss_bytes"] for r in runs]),
                "details": {k2: v for k2, v in runs[0].items()
                            if k2 in ("pruning", "gemm_pruning_rates", "assignments")},
            }
            r = cell["systems"][name]
            print(f"  W6 k={k} {name}: {fmt_s(r['seconds'])} s, objective "
                  f"{r['final_objective']:.2f}, peak {r['peak_rss_bytes']['median'] / MiB:.0f} MiB",
                  flush=True)
        rows.append(cell)
    results["W6"] = rows
    print(f"\nW6: {n:,} x {d} unit-norm rows (embedcluster generate, 32 topics), 20 iterations "
          f"from the same initial centres, {t} threads, all rows; seconds median (min-max) of "
          f"{args.w6_repeats}; objective = sum of squared distances of all rows to the returned "
          f"centroids, one evaluator for all")
    print("| k | system | seconds | x FAISS | objective | vs ours unpruned | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for cell in rows:
        sy = cell["systems"]
        fa = sy.get("faiss", {}).get("seconds", {}).get("median")
        base = sy.get("embedcluster pruning=off", {}).get("final_objective")
        for name, r in sy.items():
            sec = r["seconds"]["median"]
            ratio = f"{sec / fa:.2f}" if fa else "-"
            rel = f"{(r['final_objective'] / base - 1) * 100:+.3f} %" if base else "-"
            print(f"| {cell['k']:,} | {name} | {fmt_s(r['seconds'])} | {ratio} | "
                  f"{r['final_objective']:.2f} | {rel} | {r['peak_rss_bytes']['median'] / MiB:,.0f} MiB |")
        pr = sy.get("embedcluster pruning=auto", {}).get("details", {}).get("pruning")
        if pr:
            print(f"|   | (pruning: prefix {pr['prefix_dims']} dims, {pr['keys_per_row']:.1f} exact "
                  f"distances per row and pass of {cell['k']:,}, {pr['fallback_rows']} fallback rows) |||||||")


# --- W3 --------------------------------------------------------------------------------------


def w3(args, results):
    src = gen(args.data_dir / "w3_101000x1536.npy", 101000, 1536, 100, 1)
    base, queries = args.data_dir / "w3_base.npy", args.data_dir / "w3_queries.npy"
    if not base.exists():
        worker({"workload": "split", "data": str(src), "at": 100000, "first": str(base),
                "second": str(queries)}, 1)
    t = 2 if 2 in args.threads else args.threads[-1]
    rows = []
    for metric in ["l2", "ip"]:
        ref = None
        for s in ["embedcluster", "faiss", "sklearn", "rustcluster"]:
            runs = [worker({"workload": "knn", "system": s, "base": str(base), "queries": str(queries),
                            "k": 100, "metric": metric, "threads": t}, t) for _ in range(args.repeats)]
            if "skipped" in runs[0]:
                rows.append({"system": s, "metric": metric, "skipped": runs[0]["skipped"]})
                continue
            row = {"system": s, "metric": metric, "threads": t,
                   "seconds": stats([r["seconds"] for r in runs]),
                   "above_base_bytes": stats([r["above_base_bytes"] for r in runs]),
                   "peak_rss_bytes": stats([r["peak_rss_bytes"] for r in runs])}
            ids = np.array(runs[0]["ids_head"])
            if s == "faiss":
                ref = ids
            row["ids_head"] = ids.tolist()
            rows.append(row)
            print(f"  W3 {metric} {s}: {fmt_s(row['seconds'])} s, +{row['above_base_bytes']['median'] / MiB:.1f} MiB",
                  flush=True)
        faiss_ids = next(np.array(r["ids_head"]) for r in rows if r["system"] == "faiss" and r["metric"] == metric)
        for r in rows:
            if r["metric"] == metric and "ids_head" in r:
                a = np.array(r.pop("ids_head"))
                r["same_ids_as_faiss_first20q"] = float(np.mean([len(set(x) & set(y)) / len(y)
                                                                 for x, y in zip(a, faiss_ids)]))
    results["W3"] = rows
    print(f"\nW3: exact top-100, base 100,000 x 1536 float32, 1,000 queries, {t} threads "
          f"(seconds for add + search, median (min-max) of {args.repeats}; memory above base "
          f"and queries, VmHWM)")
    for r in rows:
        if "skipped" in r:
            print(f"  {r['metric']:3} {r['system']:13} skipped: {r['skipped']}")
        else:
            print(f"  {r['metric']:3} {r['system']:13} {fmt_s(r['seconds']):>24} s  "
                  f"+{r['above_base_bytes']['median'] / MiB:7.1f} MiB  "
                  f"ids as FAISS: {r['same_ids_as_faiss_first20q']:.3f}")


# --- W4 --------------------------------------------------------------------------------------


def w4(args, results):
    data = gen(args.data_dir / "w4_1000000x128.parquet", 1_000_000, 128, 20, 3)
    t = 2 if 2 in args.threads else args.threads[-1]
    rows = []
    out = args.data_dir / "w4_out.parquet"
    for s in ["embedcluster", "sklearn"]:
        runs = []
        for _ in range(args.repeats):
            if s == "embedcluster":
                _, _, wall, rss = measured([str(BIN), "scale", str(data), "--output", str(out)], t)
                runs.append({"seconds": wall, "peak_rss_bytes": rss})
            else:
                r = worker({"workload": "scale_sklearn", "data": str(data), "output": str(out),
                            "threads": t}, t)
                runs.append({"seconds": r["process_seconds"], "peak_rss_bytes": r["peak_rss_bytes"]})
        row = {"system": s, "threads": t, "seconds": stats([r["seconds"] for r in runs]),
               "peak_rss_bytes": stats([r["peak_rss_bytes"] for r in runs])}
        rows.append(row)
    out.unlink(missing_ok=True)
    results["W4"] = rows
    print(f"\nW4: StandardScaler, 1,000,000 x 128 float32 Parquet -> Parquet, {t} threads "
          f"(whole process: seconds, peak RSS)")
    for r in rows:
        print(f"  {r['system']:13} {fmt_s(r['seconds']):>24} s  {r['peak_rss_bytes']['median'] / MiB:7.1f} MiB")
    o, p = rows[0]["seconds"]["median"], rows[1]["seconds"]["median"]
    print(f"  embedcluster / scikit-learn time = {o / p:.2f} (target <= 0.5), peak "
          f"{rows[0]['peak_rss_bytes']['median'] / MiB:.0f} MiB (target <= 128)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W2,W3,W4")
    ap.add_argument("--threads", default="1,2", help="thread counts for W2 (the others use the largest)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", type=pathlib.Path, default=HERE / "data")
    ap.add_argument("--out", type=pathlib.Path, default=HERE / "results" / "bench.json")
    ap.add_argument("--cell-budget", type=float, default=60.0,
                    help="skip a W2 run estimated to take longer than this (seconds)")
    ap.add_argument("--quick", action="store_true", help="W2 without n = 1,000,000")
    ap.add_argument("--w2-n", help="W2 sizes to run (comma-separated; default 10000,100000,1000000)")
    ap.add_argument("--w2-d", help="W2 dimensions to run (default 2,32,128)")
    ap.add_argument("--w2-k", help="W2 cluster counts to run (default 8,64,256)")
    ap.add_argument("--w6-n", type=int, default=200_000, help="W6 rows")
    ap.add_argument("--w6-k", default="1024,4096", help="W6 cluster counts")
    ap.add_argument("--w6-repeats", type=int, default=1, help="W6 runs per system")
    ap.add_argument("--systems", default="embedcluster,faiss,sklearn,rustcluster",
                    help="W2 systems to run")
    args = ap.parse_args()
    args.threads = [int(x) for x in args.threads.split(",")]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import platform

    results = {
        "machine": {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                 if l.startswith("model name")), "?"),
                    "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": worker({"workload": "versions"}, 1)["versions"],
        "repeats": args.repeats, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(results["machine"]), json.dumps(results["versions"]), flush=True)
    wl = args.workloads.split(",")
    peaks = gemm_peaks(args)
    results["gemm_peak_gflops"] = peaks
    if "W1" in wl:
        w1(args, results)
    if "W2" in wl:
        w2(args, results, peaks)
    if "W6" in wl:
        w6(args, results)
    if "W3" in wl:
        w3(args, results)
    if "W4" in wl:
        w4(args, results)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""Many threads and processes at once: fits, transforms and predictions from concurrent
Python threads (separate and shared fitted models) equal the serial results exactly, with no
deadlock, also with multiprocessing fork, spawn and forkserver workers started while other
threads compute; concurrent saves into one model directory, and CLI runs writing the same
outputs, leave one complete result, never a mix (issue 18)."""

import concurrent.futures as cf
import json
import multiprocessing as mp
import subprocess
import threading

import numpy as np
import pytest

import embedcluster as ec
from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"
TIMEOUT = 300  # seconds a whole batch of concurrent work may take before it counts as a hang


def _data():
    rng = np.random.default_rng(7)
    centers = rng.normal(scale=3.0, size=(6, 48))
    X = (centers[rng.integers(0, 6, 6000)] + rng.normal(size=(6000, 48))).astype(np.float32)
    Q = rng.normal(size=(700, 48)).astype(np.float32)
    return X, Q


X, Q = _data()
SHARED_KM = ec.KMeans(n_clusters=6, random_state=0).fit(X)
SHARED_PCA = ec.PCA(8).fit(X)
SHARED_SC = ec.StandardScaler().fit(X)


def _jobs():
    """(name, callable) pairs; each returns a tuple of arrays."""
    jobs = []
    for seed in range(3):
        jobs.append((f"fit-kmeans-{seed}", lambda s=seed: (
            lambda m: (m.cluster_centers_, m.labels_, np.array(m.inertia_)))(
                ec.KMeans(n_clusters=6, random_state=s).fit(X))))
        jobs.append((f"fit-cosine-{seed}", lambda s=seed: (
            lambda m: (m.cluster_centers_, m.labels_))(
                ec.KMeans(n_clusters=5, metric="cosine", init="k-means||", random_state=s).fit(X))))
    jobs.append(("fit-pca", lambda: (lambda p: (p.components_, p.explained_variance_))(
        ec.PCA(8).fit(X))))
    jobs.append(("fit-pca-randomized", lambda: (lambda p: (p.components_,))(
        ec.PCA(8, fit_method="randomized", random_state=0).fit(X))))
    jobs.append(("fit-scaler", lambda: (lambda s: (s.mean_, s.scale_))(ec.StandardScaler().fit(X))))
    for i in range(4):  # the shared fitted models, used from every thread
        jobs.append((f"predict-{i}", lambda: (SHARED_KM.predict(Q), SHARED_KM.transform(Q))))
        jobs.append((f"pca-transform-{i}", lambda: (SHARED_PCA.transform(Q),)))
        jobs.append((f"scale-{i}", lambda: (SHARED_SC.transform(Q),)))
    jobs.append(("neighbors", lambda: ec.NearestNeighbors(n_neighbors=5).fit(X).kneighbors(Q)))
    return jobs


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_threads_give_the_serial_results_exactly():
    jobs = _jobs()
    serial = {name: f() for name, f in jobs}
    work = jobs * 3
    order = np.random.default_rng(0).permutation(len(work))
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(work[i][0], pool.submit(work[i][1])) for i in order]
        done, pending = cf.wait([f for _, f in futures], timeout=TIMEOUT)
        assert not pending, f"{len(pending)} calls still running after {TIMEOUT} s: a deadlock?"
        for name, f in futures:
            assert _same(f.result(), serial[name]), name


def _child_fit(seed):
    m = ec.KMeans(n_clusters=6, random_state=seed).fit(X)
    return m.cluster_centers_, m.labels_, SHARED_KM.predict(Q), SHARED_PCA.transform(Q)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_worker_processes_started_while_threads_compute(method):
    """Workers are started (forked, for `fork`) while two threads of this process are inside
    the Rust kernels; the workers' fits equal this process's."""
    want = [_child_fit(s) for s in (0, 1)]
    stop = threading.Event()
    errors = []

    def busy():
        try:
            while not stop.is_set():
                ec.KMeans(n_clusters=6, random_state=3, max_iter=5).fit(X)
                SHARED_PCA.transform(X)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):  # several pools: forks land at different points of the kernels
            with mp.get_context(method).Pool(2) as pool:
                got = pool.map_async(_child_fit, [0, 1]).get(timeout=TIMEOUT)
            for g, w in zip(got, want):
                assert _same(g, w)
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
    assert not errors, errors


def test_concurrent_saves_into_one_directory_leave_one_whole_model(tmp_path):
    from embedcluster.pipeline import ClusterModel

    models = [ec.cluster_embeddings(X, n_clusters=k, reduce="pca:8", random_state=0).model
              for k in (3, 4, 5, 6)]
    target = tmp_path / "model"
    stop = threading.Event()
    loads, errors = [], []

    def reader():
        while not stop.is_set():
            try:
                loads.append(ec.load(target).kmeans.cluster_centers_.shape[0])
            except FileNotFoundError:
                pass
            except Exception as e:
                errors.append(repr(e))
                return

    def saver(m):
        for _ in range(15):
            m.save(target)

    models[0].save(target)
    r = threading.Thread(target=reader)
    r.start()
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(saver, models, timeout=TIMEOUT))
    stop.set()
    r.join(TIMEOUT)
    assert not errors, errors[:3]  # no load ever saw one save's tensors with another's manifest
    assert loads and set(loads) <= {3, 4, 5, 6}
    final = ec.load(target)
    k = final.kmeans.cluster_centers_.shape[0]
    want = models[[3, 4, 5, 6].index(k)]
    assert np.array_equal(final.kmeans.cluster_centers_, want.kmeans.cluster_centers_)
    assert isinstance(final, ClusterModel)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "model.safetensors"]


@pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")
def test_two_cli_runs_writing_the_same_outputs(tmp_path):
    """Two runs (different k) into the same --output file, --output DIR/ and --model DIR at
    once: each output is one run's, whole (its labels, its model), and no temporary is left."""
    import pyarrow.parquet as pq

    src = tmp_path / "x.parquet"
    r = subprocess.run([str(BIN), "generate", "--n-samples", "20000", "--n-features", "64",
                        "--n-clusters", "8", "--parts", "3", "--output", src],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"

    def cmd(k, tag):
        return [str(BIN), "run", str(src), "--n-clusters", str(k), "--reduce", "pca:16",
                "--output", str(out) + "/", "--model", str(tmp_path / "model"),
                "--report", str(tmp_path / f"r{tag}.json")]

    single = {}
    for k in (5, 7):  # each alone first: what a whole output of each looks like
        r = subprocess.run(cmd(k, f"alone{k}"), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        single[k] = {p.name: pq.read_table(p, columns=["cluster"]).column(0).to_numpy()
                     for p in sorted(out.glob("*.parquet"))}
    for rnd in range(3):
        procs = [subprocess.Popen(cmd(k, f"{rnd}-{k}"), stderr=subprocess.PIPE, text=True)
                 for k in (5, 7)]
        for p in procs:
            assert p.wait(TIMEOUT) == 0, p.stderr.read()
        got = {p.name: pq.read_table(p, columns=["cluster"]).column(0).to_numpy()
               for p in sorted(out.glob("*.parquet"))}
        winners = {k for k in (5, 7) if got.keys() == single[k].keys()
                   and all(np.array_equal(got[n], single[k][n]) for n in got)}
        assert len(winners) == 1, f"round {rnd}: the parts mix the two runs"
        m = json.loads((tmp_path / "model" / "manifest.json").read_text())
        assert m["n_clusters"] in (5, 7)
        ec.load(tmp_path / "model")  # whole: the checksums match
        left = [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name or "embedcluster-tmp" in p.name]
        assert not left, left

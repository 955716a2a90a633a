"""Cluster summaries (issue 19 part 1), the HTML reports in a real browser (part 2),
notebooks (part 3) and DuckDB / pandas inputs (part 6)."""

import collections
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedcluster as ec
from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"
DATA = ROOT / "data" / "debian_sample.parquet"
needs_cli = pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")


def cli(*args, cwd):
    r = subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    if not BIN.exists():
        pytest.skip("build with cargo build --release")
    d = tmp_path_factory.mktemp("summ")
    cli("run", DATA, "--n-clusters", 20, "--labels", "label", "--summary", d / "s.json",
        "--output", d / "out.parquet", "--html", d / "run.html", "--report", d / "r.json",
        "--representatives", 7, cwd=d)
    return d


def test_representatives_are_the_highest_scoring_rows_of_their_cluster(run_dir):
    s = json.loads((run_dir / "s.json").read_text())
    out = pq.read_table(run_dir / "out.parquet").to_pydict()
    assert len(s) == 20
    by = collections.defaultdict(list)
    for i, (c, sc) in enumerate(zip(out["cluster"], out["score"])):
        by[c].append((-sc, i))
    for c in s:
        rows = sorted(by[c["cluster"]])
        assert c["size"] == len(rows)
        want = [i for _, i in rows[:7]]
        assert [r["id"] for r in c["representatives"]] == want
        for r in c["representatives"]:
            assert r["text"] == out["text"][r["id"]]
            assert np.float32(r["score"]) == np.float32(out["score"][r["id"]])
        scores = np.array([-x for x, _ in rows], dtype=np.float64)
        assert c["score_mean"] == pytest.approx(scores.mean(), rel=1e-9)
        np.testing.assert_allclose(c["score_quantiles"],
                                   np.quantile(scores, [0.05, 0.25, 0.5, 0.75, 0.95]), rtol=1e-9)
        assert len(c["keywords"]) == 10
    r = json.loads((run_dir / "r.json").read_text())
    assert r["text_column"] == "text"  # the only string column besides --labels
    assert r["summary_info"]["pruned_terms"] == 0


def _naive_ctfidf(texts, labels, k, n):
    """c-TF-IDF (Grootendorst 2022) by hand, on ASCII words: tf / words(c) * ln(1 + A / f)."""
    stop = None  # the test's words are no stop words
    tf = [collections.Counter() for _ in range(k)]
    for t, l in zip(texts, labels):
        for w in re.findall(r"[a-z]+", t.lower()):
            if len(w) >= 2 and (stop is None or w not in stop):
                tf[l][w] += 1
    f = collections.Counter()
    for c in tf:
        f.update(c)
    words = [sum(c.values()) for c in tf]
    A = sum(words) / k
    out = []
    for c in range(k):
        w = {t: cnt / words[c] * math.log(1 + A / f[t]) for t, cnt in tf[c].items()}
        out.append(sorted(w, key=lambda t: (-w[t], t))[:n])
    return out


def test_keywords_equal_a_naive_ctfidf():
    rng = np.random.default_rng(0)
    vocab = ["apple", "banana", "cherry", "grape", "lemon", "mango", "olive", "peach",
             "plum", "kiwi", "melon", "berry"]
    labels = rng.integers(0, 3, 600)
    texts = [" ".join(rng.choice(vocab[l * 4:(l + 1) * 4] + vocab, 6)) for l in labels]
    X = np.eye(3)[labels] + rng.normal(0, 0.1, (600, 3))
    s = ec.summarize(texts, labels, X, n_keywords=5)
    assert s["keywords"].to_pylist() == _naive_ctfidf(texts, labels, 3, 5)
    assert s["size"].to_pylist() == np.bincount(labels).tolist()
    # representatives: the highest cosine similarity to the normalized mean unit row
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for c in range(3):
        m = U[labels == c].mean(0)
        m /= np.linalg.norm(m)
        sc = U @ m
        idx = np.flatnonzero(labels == c)
        best = idx[np.lexsort((idx, -sc[idx]))][:5]
        assert [r["id"] for r in s["representatives"][c].as_py()] == best.tolist()


def test_python_table_and_path_sources_give_the_same_summaries(run_dir, tmp_path):
    t = pq.read_table(DATA)
    a = ec.cluster_embeddings(str(DATA), 20, text_column="text", summary=tmp_path / "p.parquet")
    b = ec.cluster_embeddings(t, 20, text_column="text")
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.summary.equals(b.summary)
    assert pq.read_table(tmp_path / "p.parquet").to_pylist() == a.summary.to_pylist()
    assert a.summary.num_rows == 20
    with pytest.raises(ValueError, match="summarize"):
        ec.cluster_embeddings(np.stack(t["embedding"].to_numpy(zero_copy_only=False)), 20,
                              text_column="text")


def test_notebook_html_and_verbose_progress(capsys, monkeypatch):
    t = pq.read_table(DATA)
    r = ec.cluster_embeddings(t, 8, text_column="text")
    html = r._repr_html_()
    assert "<table class=\"stages\"" in html and "kmeans" in html and "bar m" in html
    page = r.to_html()
    for sec in ["overview", "memory", "sizes", "map", "summaries", "warnings"]:
        assert f'<section id="{sec}">' in page
    km = ec.KMeans(3, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 4)))
    assert "<table class=\"stages\"" in km.fit_report_._repr_html_()
    assert isinstance(km.fit_report_, dict)
    # a Dask or Spark fit report (stages with tasks, no CPU seconds) renders too
    from embedcluster._engine import Report

    dist = Report({"stages": [{"name": "lloyd", "seconds": 1.5, "tasks": 4, "rows": 10,
                               "peak_rss_bytes": 3 << 20}], "peak_rss_bytes": 3 << 20})
    assert "lloyd" in dist._repr_html_() and "3.0 MiB" in dist._repr_html_()
    # plain lines without tqdm
    import embedcluster._summary as summ
    import embedcluster.pipeline as pl

    monkeypatch.setattr(pl, "Progress", lambda: summ.Progress(use_tqdm=False))
    ec.cluster_embeddings(t, 8, verbose=1)
    err = capsys.readouterr().err
    assert "embedcluster: pca_fit (4000 rows)" in err and "embedcluster: transform 4000/4000 rows" in err


def test_tqdm_bar_when_installed(capsys):
    pytest.importorskip("tqdm")
    ec.cluster_embeddings(pq.read_table(DATA), 8, verbose=1)
    err = capsys.readouterr().err
    assert "pca_fit" in err and "4000/4000" in err and "rows/s" in err


def test_duckdb_inputs():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.register("t", pq.read_table(DATA))
    q = "select id, embedding, text from t order by id"
    ref = ec.cluster_embeddings(pq.read_table(DATA).sort_by("id"), 8)
    rel = con.sql(q)
    arrow = rel.arrow()
    arrow = arrow.read_all() if hasattr(arrow, "read_all") else arrow
    a = ec.cluster_embeddings(arrow, 8, text_column="text")
    np.testing.assert_array_equal(a.labels, ref.labels)
    assert a.summary.num_rows == 8
    rel = con.sql(q)
    reader = rel.to_arrow_reader(1000) if hasattr(rel, "to_arrow_reader") else rel.fetch_record_batch(1000)
    b = ec.cluster_embeddings(reader, 8)  # one-shot reader (fetch_record_batch in older DuckDB)
    np.testing.assert_array_equal(b.labels, ref.labels)


def test_pandas_columns_of_arrays_and_arrow_lists():
    pd = pytest.importorskip("pandas")
    t = pq.read_table(DATA)
    X = np.stack(t["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    ref = ec.cluster_embeddings(X, 8)
    df = pd.DataFrame({"id": np.arange(len(X)), "embedding": list(X)})
    np.testing.assert_array_equal(ec.cluster_embeddings(df, 8).labels, ref.labels)
    dfa = pd.DataFrame({"embedding": pd.Series(
        pa.array(list(X), type=pa.list_(pa.float32())), dtype=pd.ArrowDtype(pa.list_(pa.float32())))})
    np.testing.assert_array_equal(ec.cluster_embeddings(dfa, 8).labels, ref.labels)
    np.testing.assert_array_equal(ec.KMeans(8, random_state=0).fit(df).labels_,
                                  ec.KMeans(8, random_state=0).fit(X).labels_)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@needs_cli
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_html_reports_render_in_headless_chromium(run_dir):
    d = run_dir
    cli("sweep", DATA, "--n-clusters", "4:12:4", "--reduce", "pca:32", "--metric", "cosine",
        "--output", d / "sw", "--html", d / "sweep.html", cwd=d)
    cli("evaluate", d / "out.parquet", "--labels", "label", "--embeddings", DATA,
        "--metric", "cosine", "--html", d / "eval.html", cwd=d)
    shots = ROOT / "target" / "html-report"
    shots.mkdir(parents=True, exist_ok=True)
    pages = {"run.html": ["overview", "memory", "sizes", "map", "summaries", "warnings"],
             "sweep.html": ["sweep", "curves", "memory"],
             "eval.html": ["external", "internal", "memory"]}
    for page, sections in pages.items():
        html = (d / page).read_text()
        assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
        base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--enable-logging=stderr", "--v=0", f"--user-data-dir={d / 'chrome'}"]
        dom = subprocess.run(base + ["--dump-dom", f"file://{d / page}"], capture_output=True,
                             text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        for s in sections:
            assert f'<section id="{s}">' in dom.stdout, (page, s)
        # console messages are logged as CONSOLE(...); any error level fails
        bad = [l for l in dom.stderr.splitlines()
               if "CONSOLE" in l and ("ERROR" in l or "Uncaught" in l)]
        assert not bad, bad
        png = shots / page.replace(".html", ".png")
        shot = subprocess.run(base + ["--window-size=1200,3600", f"--screenshot={png}",
                                      f"file://{d / page}"], capture_output=True, text=True,
                              timeout=120)
        assert shot.returncode == 0 and png.stat().st_size > 20000, shot.stderr[-2000:]

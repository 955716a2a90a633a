"""Object storage: Parquet datasets read from and outputs written to an S3 API server.

The server is moto in server mode on 127.0.0.1, started and stopped here; the CLI and the
Python package reach it through the standard AWS environment (AWS_ENDPOINT_URL,
AWS_ALLOW_HTTP, keys and region), as they would MinIO or S3.
"""

import io
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedcluster as ec
from conftest import ROOT

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    deadline = time.time() + 60
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.2)
    client.create_bucket(Bucket="emb")
    try:
        yield client, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cli():
    exe = ROOT / "target" / "release" / "embedcluster"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "embedcluster-cli"], cwd=ROOT, check=True)
    return str(exe)


def _run(args, env, check=True):
    p = subprocess.run([_cli(), *args], env={**os.environ, **env}, capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def _dataset(tmp_path):
    """A Hive-partitioned dataset as Spark writes it (with _SUCCESS and .crc files)."""
    rng = np.random.default_rng(4)
    n, d = 3000, 24
    X = (rng.normal(size=(n, d)) + rng.normal(scale=3, size=(6, d))[rng.integers(0, 6, n)]).astype(np.float32)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), d)
    local = tmp_path / "ds"
    lang = np.where(np.arange(n) % 3 == 0, "de", "en")
    for value in ("de", "en"):
        rows = np.flatnonzero(lang == value)
        folder = local / f"lang={value}"
        folder.mkdir(parents=True)
        # Spark's part names, several parts per folder, several row groups per part
        for i, chunk in enumerate(np.array_split(rows, 3)):
            part = pa.table({"id": chunk, "embedding": emb.take(pa.array(chunk))})
            pq.write_table(part, folder / f"part-{i:05d}-c000.snappy.parquet", row_group_size=300)
    (local / "_SUCCESS").write_bytes(b"")
    for f in list(local.rglob("*.parquet")):
        (f.parent / f".{f.name}.crc").write_bytes(b"crc")
    return local


def _upload(client, local, prefix):
    for f in sorted(local.rglob("*")):
        if f.is_file():
            client.upload_file(str(f), "emb", f"{prefix}/{f.relative_to(local).as_posix()}")


def _get_table(client, key):
    return pq.read_table(io.BytesIO(client.get_object(Bucket="emb", Key=key)["Body"].read()))


def test_an_s3_dataset_gives_the_labels_of_the_same_local_dataset(s3, tmp_path, monkeypatch):
    client, env = s3
    local = _dataset(tmp_path)
    _upload(client, local, "ds")
    args = ["--n-clusters", "6", "--reduce", "pca:8", "--seed", "2", "--labels", "lang"]
    _run(["run", str(local), *args, "--output", str(tmp_path / "local.parquet")], env)
    _run(["run", "s3://emb/ds/", *args, "--output", "s3://emb/out/labels.parquet",
          "--report", str(tmp_path / "report.json"), "--model", str(tmp_path / "model")], env)
    want = pq.read_table(tmp_path / "local.parquet")
    got = _get_table(client, "out/labels.parquet")
    assert got.num_rows == 3000
    assert got.column_names == want.column_names
    np.testing.assert_array_equal(got.column("cluster").to_numpy(), want.column("cluster").to_numpy())
    np.testing.assert_array_equal(got.column("id").to_numpy(), want.column("id").to_numpy())
    assert got.column("lang").to_pylist() == want.column("lang").to_pylist()
    # no local staging file is left behind
    assert not [p for p in os.listdir(os.environ.get("TMPDIR", "/tmp")) if p.startswith(".embedcluster-upload")]

    # the other commands read the same inputs: predict assigns the rows to their clusters
    _run(["predict", "s3://emb/ds/", "--model", str(tmp_path / "model"), "--output", "s3://emb/pred.parquet"], env)
    pred = _get_table(client, "pred.parquet")
    np.testing.assert_array_equal(pred.column("cluster").to_numpy(), want.column("cluster").to_numpy())

    # one output part per input part, with the same names (partition folders kept)
    _run(["run", "s3://emb/ds", *args, "--output", "s3://emb/parts/"], env)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="emb", Prefix="parts/")["Contents"])
    names = sorted(f"parts/{p.relative_to(local).as_posix()}" for p in local.rglob("*.parquet"))
    assert keys == names
    parts = pa.concat_tables(_get_table(client, k) for k in keys)
    np.testing.assert_array_equal(parts.column("cluster").to_numpy(), want.column("cluster").to_numpy())

    # a glob over the objects, and the Python front end
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    a = ec.cluster_embeddings("s3://emb/ds", 6, reduce="pca:8", random_state=2)
    b = ec.cluster_embeddings(str(local), 6, reduce="pca:8", random_state=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.labels.tolist() == want.column("cluster").to_pylist()
    g = ec.cluster_embeddings("s3://emb/ds/lang=de/*.parquet", 6, reduce="pca:8", random_state=2)
    assert g.report["n_samples"] == 1000


def test_missing_buckets_keys_and_truncated_objects_are_clear_errors(s3, tmp_path):
    client, env = s3
    buf = io.BytesIO()
    X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 8)}), buf)
    whole = buf.getvalue()
    client.put_object(Bucket="emb", Key="bad/truncated.parquet", Body=whole[: len(whole) // 2])
    client.put_object(Bucket="emb", Key="good/x.parquet", Body=whole)
    cases = [
        (["run", "s3://no-such-bucket/x.parquet", "--n-clusters", "3", "--reduce", "none"], "s3://no-such-bucket/x.parquet: no such bucket"),
        (["run", "s3://emb/missing/x.parquet", "--n-clusters", "3", "--reduce", "none"], "s3://emb/missing/x.parquet"),
        (["run", "s3://emb/bad/truncated.parquet", "--n-clusters", "3", "--reduce", "none"], "s3://emb/bad/truncated.parquet"),
        (["run", "s3://emb/good/x.parquet", "--n-clusters", "3", "--reduce", "none", "--output", "s3://no-such-bucket/o.parquet"],
         "s3://no-such-bucket/o.parquet"),
    ]
    for args, named in cases:
        p = _run(args, env, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert named in p.stderr, (args, p.stderr)
        assert "panicked" not in p.stderr
    # a failed run uploads nothing
    p = _run(["run", "s3://emb/bad/truncated.parquet", "--n-clusters", "3",
              "--output", "s3://emb/never/o.parquet"], env, check=False)
    assert p.returncode == 2
    assert "Contents" not in client.list_objects_v2(Bucket="emb", Prefix="never/")
    # a working run on the same server, for contrast
    _run(["run", "s3://emb/good/x.parquet", "--n-clusters", "3", "--reduce", "none", "--output", "s3://emb/good-out.parquet"], env)
    assert _get_table(client, "good-out.parquet").num_rows == 500


def test_credentials_and_region_come_from_the_aws_profile_files(s3, tmp_path):
    client, env = s3
    X = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    buf = io.BytesIO()
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 8)}), buf)
    client.put_object(Bucket="emb", Key="profile/x.parquet", Body=buf.getvalue())
    aws = tmp_path / "home" / ".aws"
    aws.mkdir(parents=True)
    (aws / "credentials").write_text("[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
                                     "[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    (aws / "config").write_text("[profile team]\nregion = us-east-1\n")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare.update(HOME=str(tmp_path / "home"), AWS_PROFILE="team", AWS_ENDPOINT_URL=env["AWS_ENDPOINT_URL"],
                AWS_ALLOW_HTTP="true")
    p = subprocess.run([_cli(), "run", "s3://emb/profile/x.parquet", "--n-clusters", "3", "--reduce", "none",
                        "--output", "s3://emb/profile-out.parquet"], env=bare, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert _get_table(client, "profile-out.parquet").num_rows == 300

"""The package's house rules, checked on its sources: no import cycle among its modules
(imports inside functions count too), the engines (``spark``, ``dask``) are leaves nothing imports,
the public names stay importable from ``embedcluster``, and the modules mirror
scikit-learn's."""

import ast
from pathlib import Path

import embedcluster as ec

PKG = Path(__file__).resolve().parent.parent / "python" / "embedcluster"
LEAVES = {"spark", "dask"}


def graph():
    """module -> the package modules it imports (anywhere in the file)."""
    g = {}
    for f in sorted(PKG.glob("*.py")):
        mod = f.stem
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("embedcluster."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[1] for a in node.names if a.name.startswith("embedcluster."))
        g[mod] = {d for d in deps if d != mod and (PKG / f"{d}.py").exists()}
    return g


def test_no_import_cycle():
    g = graph()
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for d in sorted(g[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in g:
        visit(m, [])


def test_engines_are_leaves():
    g = graph()
    for m, deps in g.items():
        assert not (deps & LEAVES), f"{m} imports {deps & LEAVES}"


def test_modules_mirror_scikit_learn_and_names_stay_public():
    for mod in ["cluster", "decomposition", "preprocessing", "pipeline", "neighbors", "metrics"]:
        assert (PKG / f"{mod}.py").exists(), mod
    from embedcluster.cluster import KMeans
    from embedcluster.decomposition import PCA
    from embedcluster.pipeline import ClusterModel, cluster_embeddings, load
    from embedcluster.preprocessing import StandardScaler, normalize

    assert ec.KMeans is KMeans and ec.PCA is PCA and ec.StandardScaler is StandardScaler
    assert ec.ClusterModel is ClusterModel and ec.cluster_embeddings is cluster_embeddings
    assert ec.load is load and ec.normalize is normalize
    for name in ec.__all__:
        assert hasattr(ec, name), name


def test_the_checker_sees_function_level_imports(tmp_path):
    # the graph counts an import inside a function body
    src = "def f():\n    from .spark import x\n"
    deps = {n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)}
    assert deps == {"spark"}

"""Architecture rules that keep the package a DAG with one source of truth (STYLE rule 11, issue 16).

- No import cycle among ``ncvqvae``'s modules, counting function-local imports too (the check is
  embedded here; the shared ``tools/import_cycles.py`` is run as well when it sits beside the clone).
- The sweep's method and augmentation names are the registries'.
- The model constructors' defaults are the config defaults.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import ncvqvae
from ncvqvae.config import EvaluationConfig, Stage1Config, Stage2Config
from ncvqvae.data import augment
from ncvqvae.evaluation.fcn import FCN, build_fcn, train_fcn
from ncvqvae.experiments import sweep, variants
from ncvqvae.models import ssl
from ncvqvae.models.prior import BidirectionalTransformer
from ncvqvae.models.tokenizer import VQVAE, build_tokenizer

PACKAGE_DIR = Path(ncvqvae.__file__).parent
SHARED_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "import_cycles.py"


# --------------------------------------------------------------------------------------------------
# Import graph
# --------------------------------------------------------------------------------------------------


def _module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its file (top level or inside functions).

    An import of a name inside a module (``from ncvqvae.data import generators``) counts as an import of
    the deepest module the dotted name reaches; imports of a module's own parent packages are left out
    (a package's ``__init__`` re-exporting its children is not a cycle).
    """
    package = package_dir.name
    files = {_module_name(p, package_dir): p for p in package_dir.rglob("*.py")}
    modules = set(files)

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # ``from pkg import submodule`` imports the submodule
                names = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
            for name in names:
                if name == package or name.startswith(package + "."):
                    target = owner(name)
                    if target in (module, package, "") or module.startswith(target + "."):
                        continue  # itself, the root package, or one of its own parent packages
                    targets.add(target)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or ``None`` when the graph is a DAG."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "ncvqvae.stage1" in graph and graph["ncvqvae.stage1"], "the import graph was not read"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "ncvqvae"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from ncvqvae.sub.b import y\n")  # a re-export: no cycle
    (pkg / "a.py").write_text("from ncvqvae.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a  # function-local counts too\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and cycle[0] == cycle[-1] and {"ncvqvae.a", "ncvqvae.sub.b"} <= set(cycle)
    (pkg / "sub" / "b.py").write_text("y = 1\n")
    assert find_cycle(import_graph(pkg)) is None


@pytest.mark.skipif(not SHARED_TOOL.is_file(), reason="no ../shared/tools/import_cycles.py beside the clone")
def test_the_shared_import_cycle_tool_agrees() -> None:
    done = subprocess.run(
        [sys.executable, str(SHARED_TOOL), str(PACKAGE_DIR)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------------------------------
# One source of truth
# --------------------------------------------------------------------------------------------------


def test_sweep_names_are_the_registries() -> None:
    assert sweep.METHODS == variants.METHODS == tuple(ssl.SSL_METHODS)
    assert sweep.AUGMENTATIONS == variants.AUGMENTATIONS == tuple(augment.AUGMENTATIONS)
    for method in ssl.SSL_METHODS:
        for name in augment.AUGMENTATIONS:
            variant = sweep.Variant.make(method, [name])
            assert variant.method == method
            assert variant == sweep.Variant.parse(variant.name)  # every name round-trips


def _defaults(fn: object) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()  # type: ignore[arg-type]
        if p.default is not inspect.Parameter.empty
    }


def test_tokenizer_defaults_are_the_stage1_config_defaults() -> None:
    config = Stage1Config()
    shared = {name: value for name, value in _defaults(VQVAE.__init__).items() if hasattr(config, name)}
    assert set(_defaults(VQVAE.__init__)) == set(shared), "a VQVAE argument has no Stage1Config field"
    assert shared == {name: getattr(config, name) for name in shared}
    built = build_tokenizer(config, in_channels=1, input_length=64)
    assert built.config_dict() == VQVAE(in_channels=1, input_length=64).config_dict()


def test_prior_defaults_are_the_stage2_config_defaults() -> None:
    config = Stage2Config()
    defaults = _defaults(BidirectionalTransformer.__init__)
    defaults.pop("codebook")  # the tokenizer's, not a setting
    defaults.pop("code_dim")  # the tokenizer's code dimension (Stage1Config.hidden_dim)
    assert defaults == {name: getattr(config, name) for name in defaults}
    assert _defaults(BidirectionalTransformer.__init__)["code_dim"] == Stage1Config().hidden_dim


def test_fcn_defaults_are_the_evaluation_config_defaults() -> None:
    config = EvaluationConfig()
    fit = _defaults(train_fcn)
    assert fit["epochs"] == config.evaluator_epochs and fit["steps"] == config.evaluator_steps
    assert fit["lr"] == config.evaluator_lr and fit["weight_decay"] == config.evaluator_weight_decay
    assert fit["batch_size"] == config.evaluator_batch_size
    # SPEC §5: three conv blocks of 128, 256, 128 filters with kernels 8, 5, 3; old checkpoints' configs
    # without widths/kernels rebuild that network
    net = _defaults(FCN.__init__)
    assert net == {"widths": (128, 256, 128), "kernels": (8, 5, 3)}
    assert build_fcn({"in_channels": 1, "n_classes": 2}).config == FCN(1, 2).config

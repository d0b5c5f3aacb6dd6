"""Which package may import which: each layer imports only itself and the layers below it, so
a reader can follow the code downwards; and the contract modules, which writers and readers share,
load without TensorFlow, TFX, TFMA or Beam."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "inception_retrain"

# Bottom to top. A module may import from its own layer and the ones before it.
LAYERS = (
    "serving",                   # TF Serving's version directories and client
    "components",                # the DAG's components and their contract modules
    "pipeline",                  # config, the DAG, the local runner and its metadata store
    "run_reading",               # a run read back into one record
    "run_rendering",             # the record rendered: console, page, JSON, card, history
    "components.run_reporter",   # the Kubeflow step that reads and renders inside a run
    "kubeflow",                  # compile, targets, runtime parameters, schedules
    "cli",                       # the command
)
HEAVY = ("tensorflow", "tfx", "tensorflow_model_analysis", "apache_beam")


def layer_of(dotted: str) -> int:
    """The layer of inception_retrain.<dotted> (its longest listed prefix)."""
    matches = [i for i, name in enumerate(LAYERS)
               if dotted == name or dotted.startswith(name + ".")]
    if not matches:
        raise AssertionError(f"inception_retrain.{dotted} is in no layer of {LAYERS}")
    return max(matches, key=lambda i: len(LAYERS[i]))


def imported_modules(path: Path):
    """(line, inception_retrain.<x> without the prefix) of every import in the file, including
    imports inside functions."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = ([f"{node.module}.{alias.name}" for alias in node.names]
                     if node.module == "inception_retrain" else [node.module])
        else:
            continue
        for name in names:
            if name.startswith("inception_retrain."):
                yield node.lineno, name[len("inception_retrain."):]


def upward_imports(package: Path = PACKAGE):
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if len(parts) == 1:
            continue  # inception_retrain/__init__.py: loads artifact types lazily, by name
        module = ".".join(part for part in parts if part != "__init__")
        own = layer_of(module)
        for line, target in imported_modules(path):
            if layer_of(target) > own:
                found.append(f"{path.relative_to(package)}:{line} ({LAYERS[own]}) imports "
                             f"{target} ({LAYERS[layer_of(target)]})")
    return found


def module_graph(package: Path = PACKAGE):
    """{module: modules it imports}, module names without the inception_retrain prefix; an
    import of a package's name (from inception_retrain.x import y) counts as x.y when y is a
    module."""
    graph = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        module = ".".join(part for part in parts if part != "__init__")
        targets = set()
        for _, target in imported_modules(path):
            targets.add(target)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "inception_retrain."):
                base = node.module[len("inception_retrain."):]
                targets |= {f"{base}.{alias.name}" for alias in node.names
                            if (package / Path(*base.split("."), alias.name + ".py")).exists()}
        graph[module] = {t for t in targets if t != module}
    return graph


def import_cycles(graph):
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_modules_import_each_other_in_a_circle():
    assert import_cycles(module_graph()) == []


def test_a_circle_is_found():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


def test_an_upward_import_is_found(tmp_path):
    package = tmp_path / "inception_retrain"
    (package / "components").mkdir(parents=True)
    (package / "components" / "gate.py").write_text(
        "def read():\n    from inception_retrain.run_reading import reader\n")
    assert upward_imports(package) == [
        "components/gate.py:2 (components) imports run_reading (run_reading)"]


CONTRACTS = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
                   for p in PACKAGE.rglob("*.py")
                   if p.name == "contract.py" or p.name.endswith("_contract.py")
                   or p.name in ("node_ids.py", "artifact_files.py", "thresholds.py"))


@pytest.mark.parametrize("module", CONTRACTS)
def test_contract_modules_load_without_tensorflow(module):
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} imports {done.stdout.strip()}"

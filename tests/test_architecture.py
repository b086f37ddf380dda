"""The layering of docs/architecture.md, checked on the source: dependencies point one way.

Reads every module of `neipalette_tf` and the `export` shim as text (nothing is
imported), collects its module-level imports of project modules (imports inside
a function body are deliberately deferred and do not count) and checks:

- no import cycle among module-level imports;
- nothing imports a command-line module (the thin CLIs are the top layer);
- every import points to the module's own layer or one below it:
  CLIs > workflows > models / data / predictors > base (colour, core).
"""

import ast
import re
import pathlib

from neipalette_tf.commands import COMMANDS
from neipalette_tf.commands import module as command_module

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("neipalette_tf", "export")

# The command-line modules (the top layer): every registered command, `neipalette`, and the
# `python -m` forwards (neipalette_tf.commands: one registry, so no command is missed here).
CLI_MODULES = {command_module(name) for name in COMMANDS} | {"neipalette_tf.__main__", "neipalette_tf.commands"} | {
    f"{s}.__main__" if (ROOT.joinpath(*s.split(".")) / "__main__.py").exists() else s
    for s in [c.spelling for c in COMMANDS.values()] if not s.startswith("neipalette_tf.export.")}
LAYERS = {  # package prefix -> rank; higher may import lower, never the reverse
    "neipalette_tf.colour": 0, "neipalette_tf.core": 0,
    "neipalette_tf.models": 1, "neipalette_tf.data": 1, "neipalette_tf.predictors": 1,
    "neipalette_tf.training": 2, "neipalette_tf.evaluation": 2, "neipalette_tf.export": 2,
    "neipalette_tf.explanation": 2, "neipalette_tf.ranking": 2, "neipalette_tf.serving": 2,
    "neipalette_tf.commands": 3,
}


def _modules():
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _module_level_imports(name, path, known):
    """Project modules imported at module level (also under a top-level `if` / `try`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", [])
                      + [n for h in getattr(node, "handlers", []) for n in h.body])
                continue
            else:
                continue
            for target in targets:
                while target and target not in known:  # `from a.b import name` -> a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)

    visit(tree.body)
    return found


def _graph():
    modules = _modules()
    return {name: _module_level_imports(name, path, modules) for name, path in modules.items()}


def _rank(name):
    best = None
    for prefix, rank in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            best = rank
    return 3 if name in CLI_MODULES else best


def test_the_scan_sees_the_package():
    graph = _graph()
    assert len(graph) > 80 and "neipalette_tf.training.run" in graph
    assert "neipalette_tf.training.loop" in graph["neipalette_tf.training.run"]
    assert "neipalette_tf.core.cli" in graph["neipalette_tf"]


def test_no_import_cycle():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strongconnect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    # A package's __init__ re-exporting its own submodules is not a cycle between layers;
    # anything else is.
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert not real, f"import cycles: {real}"


def test_nothing_imports_a_command_line_module():
    bad = sorted((m, t) for m, targets in _graph().items() for t in targets
                 if t in CLI_MODULES and m not in CLI_MODULES and m not in ("neipalette_tf.__main__",))
    assert not bad, f"library modules importing a CLI module: {bad}"


def test_imports_point_down_the_layers():
    bad = []
    for module, targets in _graph().items():
        rank = _rank(module)
        if rank is None:
            continue
        for target in targets:
            target_rank = _rank(target)
            if target_rank is not None and target_rank > rank:
                bad.append(f"{module} ({rank}) -> {target} ({target_rank})")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def _defined_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set()
    for node in ast.walk(tree) if path.name == "__init__.py" else tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_every_import_in_the_docs_names_something_that_exists():
    import re

    modules = _modules()
    pattern = re.compile(r"^\s*(?:>>> )?from (neipalette_tf[\w.]*) import ([\w, ]+)", re.MULTILINE)
    checked, bad = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for module, names in pattern.findall(doc.read_text(encoding="utf-8")):
            for name in (n.strip() for n in names.split(",") if n.strip()):
                checked += 1
                if f"{module}.{name}" in modules:
                    continue
                if module not in modules or name not in _defined_names(modules[module]):
                    bad.append(f"{doc.name}: from {module} import {name}")
    assert checked and not bad, bad


def test_every_source_path_in_the_docs_exists():
    # a file moved by a restructure leaves its old path in prose the import check cannot see
    import re

    pattern = re.compile(r"(?<![\w/])((?:neipalette_tf|export|tests|scripts)/[a-z0-9_/]+\.(?:py|yaml|html))\b")
    checked, bad = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in pattern.findall(doc.read_text(encoding="utf-8")):
            checked += 1
            if not (ROOT / path).exists():
                bad.append(f"{doc.name}: {path}")
    assert checked and not bad, sorted(set(bad))


# The packages and modules that never load TensorFlow at import (docs/architecture.md): the runtime,
# the service and the data tools run on machines without it. A module-level import of TensorFlow,
# Keras or a converter, directly or through a project module, fails here.
TF_FREE = ("neipalette_tf.core", "neipalette_tf.colour", "neipalette_tf.data.manifest", "neipalette_tf.data.synth",
           "neipalette_tf.predictors.runtime", "neipalette_tf.predictors.base", "neipalette_tf.ranking",
           "neipalette_tf.explanation", "neipalette_tf.serving", "neipalette_tf.commands.predict",
           "neipalette_tf.commands.recommend", "neipalette_tf.commands.synth", "neipalette_tf.commands.serve",
           "neipalette_tf.commands.export_profile", "neipalette_tf.__main__")
TF_FREE_EXACT = ("neipalette_tf", "neipalette_tf.commands")  # the packages themselves, not all they hold
HEAVY = ("tensorflow", "keras", "keras_hub", "tf2onnx", "tf_keras")


def _heavy_imports(path):
    """Third-party heavy packages a module imports at module level (also under a top-level `if` / `try`)."""
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", [])
                      + [n for h in getattr(node, "handlers", []) for n in h.body])

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)).body)
    return found & set(HEAVY)


def _tf_free(name):
    return name in TF_FREE_EXACT or any(name == p or name.startswith(p + ".") for p in TF_FREE)


def test_the_tf_free_modules_never_import_tensorflow_at_module_level():
    modules, graph = _modules(), _graph()
    checked, bad = 0, []
    for name in sorted(m for m in modules if _tf_free(m)):
        checked += 1
        seen, stack, chain = {name}, [(name, [name])], None
        while stack and chain is None:
            module, path = stack.pop()
            heavy = _heavy_imports(modules[module])
            if heavy:
                chain = path + [sorted(heavy)[0]]
                break
            for target in graph.get(module, ()):
                if target in modules and target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
        if chain:
            bad.append(" -> ".join(chain))
    assert checked > 30 and not bad, "TF-free modules that load TensorFlow at import:\n" + "\n".join(bad)


def test_the_tf_free_scan_sees_an_import_through_a_project_module():
    # data.pipeline imports tensorflow at module level; anything importing it is not TF-free
    assert "tensorflow" in _heavy_imports(_modules()["neipalette_tf.data.pipeline"])
    assert "neipalette_tf.data.pipeline" in _graph()["neipalette_tf.predictors.keras"]


def test_where_to_add_things_names_every_registry_and_its_contract_test():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split("## Where to add things", 1)[1]
    for needed in ("register_backbone", "models/backbones.py", "tests/models/test_backbones.py",
                   "register_format", "core/formats.py", "tests/core/test_formats.py",
                   "neipalette_tf/commands/__init__.py", "COMMANDS", "tests/commands/test_commands.py",
                   "core/vocabulary.py", "tests/core/test_vocabulary.py", "DEFAULTS", "tests/training/test_config.py"):
        assert needed in text, f"docs/architecture.md's 'Where to add things' does not name {needed}"


# Modules whose tests live in a file not named after them (one file covering several modules, or the
# workflow tested through its command). Every other library module has `tests/**/test_<its name>.py`.
# `test_every_module_has_its_tests` checks both ways: a module without either fails (a new module needs
# its test file or an entry here), and an entry whose file does not name the module, or that now has its
# own file, fails too. The command modules and `python -m` forwards are tested through the commands
# registry (tests/commands/test_commands.py runs each one).
TESTED_UNDER = {
    "neipalette_tf.colour.estimate": "tests/evaluation/test_report.py",
    "neipalette_tf.colour.names": "tests/colour/test_colour_names.py",
    "neipalette_tf.colour.people_fit": "tests/colour/test_people.py",
    "neipalette_tf.core.cli": "tests/test_bad_input_cli.py",
    "neipalette_tf.core.cpu_info": "tests/test_portability.py",
    "neipalette_tf.core.errors": "tests/training/test_config.py",
    "neipalette_tf.core.io_utils": "tests/test_bad_input_cli.py",
    "neipalette_tf.core.provenance": "tests/test_bad_input_cli.py",
    "neipalette_tf.data.bad_input": "tests/test_bad_input_cli.py",
    "neipalette_tf.data.synth.colours": "tests/data/test_synth_hard_scenes.py",
    "neipalette_tf.data.synth.dataset": "tests/data/test_synth.py",
    "neipalette_tf.data.synth.hard": "tests/data/test_synth_hard_scenes.py",
    "neipalette_tf.data.synth.patterns": "tests/data/test_synth_patterns.py",
    "neipalette_tf.data.synth.render": "tests/data/test_synth_patterns.py",
    "neipalette_tf.evaluation.plots": "tests/evaluation/test_report.py",
    "neipalette_tf.export.arm64_worker": "tests/export/test_arm64.py",
    "neipalette_tf.export.bench_workers": "tests/export/test_bench.py",
    "neipalette_tf.export.flatbuffer": "tests/export/test_tflite.py",
    "neipalette_tf.models.classic.linear": "tests/training/test_classic.py",
    "neipalette_tf.models.classic.probe": "tests/training/test_classic.py",
    "neipalette_tf.models.head": "tests/models/test_harmony_classifier.py",
    "neipalette_tf.predictors.keras": "tests/models/test_people_rating.py",
    "neipalette_tf.predictors.saved_model": "tests/export/test_savedmodel.py",
    "neipalette_tf.ranking.diversity": "tests/ranking/test_diverse_explain.py",
    "neipalette_tf.ranking.rank": "tests/ranking/test_recommend.py",
    "neipalette_tf.serving.app": "tests/serving/test_serve.py",
    "neipalette_tf.serving.attacks": "tests/serving/test_hostile.py",
    "neipalette_tf.serving.images": "tests/serving/test_refusals.py",
    "neipalette_tf.serving.load_test": "tests/serving/test_serve.py",
    "neipalette_tf.serving.web_runtime": "tests/serving/test_serve_browser_on_device.py",
    "neipalette_tf.training.distribute": "tests/training/test_training.py",
    "neipalette_tf.training.loop": "tests/training/test_training.py",
    "neipalette_tf.training.peer_bench": "tests/training/test_speed_tools.py",
    "neipalette_tf.training.resume": "tests/training/test_resume_determinism.py",
    "neipalette_tf.training.run": "tests/training/test_multiworker.py",
    "neipalette_tf.training.step_profile": "tests/training/test_speed_tools.py",
}


def _library_modules():
    return {name: path for name, path in _modules().items()
            if name.startswith("neipalette_tf") and path.name not in ("__init__.py", "__main__.py")
            and name not in CLI_MODULES}


def _names_module(text, name):
    parent, _, stem = name.rpartition(".")
    return re.search(rf"\b{re.escape(name)}\b|from {re.escape(parent)} import [^\n]*\b{stem}\b", text) is not None


def test_every_module_has_its_tests():
    own = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    missing, wrong = [], []
    for name, path in sorted(_library_modules().items()):
        mirrored = f"test_{path.stem}.py" in own
        under = TESTED_UNDER.get(name)
        if under and mirrored:
            wrong.append(f"{name} now has its own test_{path.stem}.py: remove its TESTED_UNDER entry")
        elif under and not ((ROOT / under).is_file() and _names_module((ROOT / under).read_text("utf-8"), name)):
            wrong.append(f"TESTED_UNDER[{name!r}] = {under!r}: that file does not exist or does not import it")
        elif not (mirrored or under):
            missing.append(f"{name}: add tests/.../test_{path.stem}.py (or a TESTED_UNDER entry naming its tests)")
    wrong += [f"TESTED_UNDER names {n}, not a library module" for n in set(TESTED_UNDER) - set(_library_modules())]
    assert not (missing or wrong), "\n".join(missing + wrong)


def test_the_mirror_check_sees_a_module_without_tests():
    assert _names_module("from neipalette_tf.serving import guards, images\n", "neipalette_tf.serving.images")
    assert not _names_module("from neipalette_tf.serving import imagesx\n", "neipalette_tf.serving.images")
    assert "neipalette_tf.serving.balance" in _library_modules() and "neipalette_tf.train" not in _library_modules()

"""The package's layers: every import (function-level ones included) runs from a higher layer down, so no
import circle can form."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "speechbrain_xfer"

# Low to high. A module may import its own subpackage and the layers below it.
LAYERS = [
    {"regularization", "speechbrain_overrides", "pretrained", "lobes", "preemption"},
    {"checkpoints", "data", "encoders"},
    {"recipe_config", "brains", "synthspeech"},
    {"transferability", "hub"},
    {"experiment", "curves"},
    {"cli"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def imports(path):
    """``(line, module)`` of every speechbrain_xfer import in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("speechbrain_xfer."):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("speechbrain_xfer.")]
    return found


def part(relative):
    """The layer of a file: its subpackage, or its module at the top (``data/dataio.py`` -> ``data``)."""
    return relative.split("/")[0].removesuffix(".py")


def test_every_import_runs_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        if relative == "__init__.py":
            continue
        source = part(relative)
        assert source in LAYER, f"{relative}: add its subpackage to LAYERS"
        for line, module in imports(path):
            target = module.split(".")[1]
            if target != source and LAYER[target] >= LAYER[source]:
                upward.append(f"{relative}:{line} imports {module} ({target} is not below {source})")
    assert not upward, "\n".join(upward)


def test_no_package_file_is_over_400_lines_and_no_hf_encoder_file_over_300():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert len(lengths) > 50  # the glob found the package
    long = {name: n for name, n in lengths.items() if n > 400}
    long_hf = {name: n for name, n in lengths.items() if name.startswith("encoders/hf") and n > 300}
    assert not long and not long_hf, f"over 400 lines: {long}; HF encoder files over 300: {long_hf}"

"""The real install: the wheel (built from the sdist) in a fresh virtual environment, run from outside the repo.

The new environment gets the wheel alone (no editable install, no repository on its path); its dependencies come
from this test environment's site-packages through a ``.pth`` path line, so nothing is downloaded.
"""

import glob
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

import speechbrain_xfer

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE_ARGS = "--number_of_epochs=1 --steps_per_epoch=2 --batch_size=4 --noprogressbar"


def run(command, cwd, timeout=600):
    # No PYTHONPATH: the installed package must be found on its own.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """The sdist and the wheel that ``python -m build`` makes of the repository (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], cwd=out)
    (sdist,), (wheel,) = glob.glob(str(out / "*.tar.gz")), glob.glob(str(out / "*.whl"))
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(distributions, tmp_path_factory):
    """``bin`` of a fresh virtual environment holding the wheel, and an empty work folder outside the repo."""
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=root)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", distributions[1]], cwd=root)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip()
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    with open(os.path.join(site, "test_environment.pth"), "w") as f:
        f.write("\n".join(paths) + "\n")
    work = root / "work"
    work.mkdir()
    return venv / "bin", work


def test_the_wheel_holds_the_package_and_the_synthspeech_recipes_only(distributions):
    names = zipfile.ZipFile(distributions[1]).namelist()
    recipes = "speechbrain_xfer/recipes/SynthSpeech/"
    for task in ("KWS", "intent", "emotion", "ASR"):
        assert f"{recipes}{task}/train.py" in names
        assert f"{recipes}{task}/hparams/finetune.yaml" in names
    assert f"{recipes}pretrain/train_words.py" in names and f"{recipes}pretrain/hparams/ctc_conv.yaml" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"speechbrain_xfer", f"speechbrain_xfer-{speechbrain_xfer.__version__}.dist-info"}
    assert not [n for n in names if "/tests/" in n or "/results/" in n or "__pycache__" in n or n.startswith("docs")]


def test_the_installed_package_is_the_wheels(installed):
    bin_folder, work = installed
    where = run([bin_folder / "python", "-c", "import speechbrain_xfer; print(speechbrain_xfer.__file__)"], work)
    assert where.startswith(str(bin_folder.parent)), where
    assert run([bin_folder / "sbx", "--version"], work).strip() == f"sbx {speechbrain_xfer.__version__}"
    assert "--recipes" in run([bin_folder / "sbx", "demo", "--help"], work)


def test_sbx_curve_runs_a_recipe_from_the_wheel(installed, tiny_corpus):
    bin_folder, work = installed
    root, _ = tiny_corpus
    grid = ["--task", "kws", "--shots", 1, "--methods", "scratch", "--seeds", 1, "--jobs", 1]
    run(
        [bin_folder / "sbx", "curve", *grid, "--data", root, "--out", work / "curves", "--recipe-args", RECIPE_ARGS],
        work,
    )
    rows = (work / "curves" / "curves.csv").read_text().splitlines()
    assert len(rows) == 2 and "kws" in rows[1] and "scratch" in rows[1]
    # The repository is on no path of the new environment: the recipe that ran is the wheel's.
    assert (work / "curves" / "runs" / "kws" / "scratch" / "k1" / "seed1" / "summary.json").is_file()


def test_pyproject_states_ranges_and_constraints_pin_every_dependency():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert not [r for r in requirements if "==" in r]
    with open(os.path.join(REPO, "constraints.txt")) as f:
        pinned = {line.split("==")[0].lower().replace("_", "-") for line in f if "==" in line}
    for requirement in requirements:
        name = requirement.split(";")[0].strip()
        for mark in "<>=!~[ ":
            name = name.split(mark)[0]
        assert name.lower().replace("_", "-") in pinned, f"{name} is not pinned in constraints.txt"

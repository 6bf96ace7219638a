"""The install maps the architecture folders under `inferwatch` and ships their data files."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_python_package_folder_is_listed():
    config = _config()
    folder_of = {package: Path(folder) for package, folder in config["package-dir"].items()}
    listed = set(config["packages"])
    found = set()
    for package, folder in folder_of.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed


def test_no_top_level_module_but_inferwatch():
    config = _config()
    assert all(name == "inferwatch" or name.startswith("inferwatch.") for name in config["packages"])


def test_schemas_and_deploy_files_ship_with_the_package():
    import inferwatch.deploy
    import inferwatch.schemas

    schemas = Path(inferwatch.schemas.__file__).parent
    assert (schemas / "inference_event.avsc").is_file()
    assert (schemas / "schema_ids.json").is_file()
    assert (Path(inferwatch.deploy.__file__).parent / "kafka" / "pom.xml").is_file()


# --- package boundaries: the SDK without the worker's dependencies ----------------------------------

# Installed only by the `worker` extra; none may be imported by `from inferwatch import Monitor`, and
# none may be installed by a plain `pip install inferwatch`.
WORKER_ONLY = ("faust", "aiokafka", "chdb", "clickhouse_connect", "pyarrow", "pandas", "redis", "uvloop", "river")


def _index_unreachable(python: Path) -> str | None:
    """Why pip cannot reach its configured package index (PyPI unless PIP_INDEX_URL says otherwise),
    or None when it can: asks it for setuptools' versions, bypassing the cache. setuptools is on
    every index a build needs (it is our build backend), so failing to list it means no index."""
    probe = subprocess.run([python, "-m", "pip", "index", "versions", "--no-cache-dir", "setuptools"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode == 0 and "setuptools" in probe.stdout:
        return None
    lines = (probe.stdout + probe.stderr).strip().splitlines()
    return f"`pip index versions setuptools`: {lines[-1] if lines else f'exit code {probe.returncode}'}"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_sdk_imports_none_of_the_worker_dependencies():
    # A fresh interpreter: this test process has imported the whole project already.
    code = (
        "import sys\n"
        "from inferwatch import Monitor\n"
        f"loaded = sorted({{m.partition('.')[0] for m in sys.modules}} & set({WORKER_ONLY!r}))\n"
        "assert not loaded, f'from inferwatch import Monitor imported {loaded}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_cli_knows_every_module_of_the_worker_extra():
    """cli.WORKER_MODULES (how the CLI tells a missing worker extra) covers each requirement of it."""
    from importlib.metadata import packages_distributions

    from inferwatch.cli import WORKER_MODULES

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"]
    modules_of: dict[str, set[str]] = {}
    for module, distributions in packages_distributions().items():
        for distribution in distributions:
            modules_of.setdefault(_normalized(distribution), set()).add(module)
    for requirement in extra:
        distribution = _normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group())
        assert modules_of.get(distribution, set()) & WORKER_MODULES, f"{requirement}: none of its modules in WORKER_MODULES"


def _copy_sources(destination: Path) -> Path:
    """What the build reads (pyproject, README, the mapped folders), away from the shared tree: an
    in-tree build would leave build/ and *.egg-info in it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    destination.mkdir()
    for name in ("pyproject.toml", config["project"]["readme"]):
        shutil.copy2(ROOT / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for folder in sorted(set(config["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(ROOT / folder, destination / folder, ignore=ignore)
    return destination


@pytest.mark.install
def test_a_plain_install_is_the_sdk_without_the_worker(tmp_path):
    """`pip install inferwatch` (no extra) in a fresh venv: `from inferwatch import Monitor` works and
    faust, chdb, pyarrow (the whole worker side) are not installed at all. Downloads from PyPI (the
    pip cache makes a warm run ~45 s); skipped only if pip cannot reach the index."""
    source = _copy_sources(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, script = venv / "bin" / "python", venv / "bin" / "inferwatch"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--prefer-binary", str(source)],
        capture_output=True, text=True, timeout=600)
    output = install.stdout + install.stderr
    if install.returncode != 0:
        unreachable = _index_unreachable(python)
        if unreachable:
            pytest.skip(f"pip cannot reach the package index (PyPI): {unreachable}")
        pytest.fail(f"pip install {source} failed, though the package index answers:\n{output[-4000:]}")

    check = subprocess.run([python, "-c", (
        "import importlib.util, sys\n"
        "from inferwatch import Monitor\n"
        "assert Monitor.__module__ == 'inferwatch.producers.monitor', Monitor\n"
        f"print(sorted(m for m in {WORKER_ONLY!r} if importlib.util.find_spec(m) is not None))\n"
    )], capture_output=True, text=True, cwd=tmp_path)  # not ROOT: the repository must not be importable
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["[]"], f"installed without any extra: {check.stdout}"

    # The console script: SDK-side commands work, a worker-side one says what to install.
    assert subprocess.run([script, "--help"], capture_output=True, text=True).returncode == 0
    assert "steady" in subprocess.run([script, "scenarios"], capture_output=True, text=True, check=True).stdout
    for command in (["worker"], ["status"], ["query"]):
        result = subprocess.run([script, *command], capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "INFERWATCH_STATE_DIR": str(tmp_path / "state")})
        assert result.returncode != 0
        assert "this command needs the worker extra: pip install 'inferwatch[worker]'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr

"""The install maps the architecture folders under `inferwatch` and ships their data files."""

import tomllib
from pathlib import Path

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

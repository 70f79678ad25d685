"""The packaging promises: the pins, environment.yml in step with pyproject, the book
skeleton, and CI calling the README's test command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

try:  # the library runs on Python 3.10; reading pyproject.toml there needs tomli
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads TOML with tomli")

ROOT = Path(__file__).resolve().parents[1]


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def constraint_pins() -> dict[str, str]:
    """constraints.txt's pins, by requirement name."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    specs = [line.split("#")[0].strip() for line in lines]
    return {requirement_name(spec): spec for spec in specs if spec}


def test_pins_that_work_on_this_machine():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "jupyter-book>=1.0.4,<2" in project["optional-dependencies"]["book"]
    # the library sets a floor (a GPU machine keeps its CUDA build); the project's own installs
    # pin the CPU build the course is tested with, through constraints.txt
    assert "torch>=2.11" in project["dependencies"]
    assert constraint_pins() == {"torch": "torch==2.13.0"}
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"^\t(?!@echo).*pip install.*$", makefile, re.MULTILINE)  # not advice
    assert installs and all("-c constraints.txt" in line for line in installs
                            if "-e " in line), installs


def test_environment_yml_lists_exactly_the_pyproject_requirements_with_the_same_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [spec for extra in project["optional-dependencies"].values()
                                        for spec in extra]
    wanted = {requirement_name(s): s.replace(" ", "") for s in wanted}
    wanted.update(constraint_pins())  # pinned as the Makefile's installs are
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [spec for spec in pip if not spec.startswith("-e")]
    assert {requirement_name(s): s.replace(" ", "") for s in listed} == wanted
    assert "-e ." in pip


def test_book_skeleton_lists_only_files_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert toc["format"] == "jb-book" and config["title"]
    files = [toc["root"]] + [entry["file"] for part in toc["parts"]
                             for entry in part["chapters"]]
    for name in files:
        assert any((ROOT / f"{name}{suffix}").exists() for suffix in (".md", ".ipynb")), name
    for excluded in (".venv/*", "_build/*", ".pytest_cache/*"):
        assert excluded in config["exclude_patterns"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.MULTILINE)
    assert re.search(r"^book:", makefile, re.MULTILINE)


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("What each chapter calls")]
    lines = layout.splitlines()

    def entry(package: str, folder: str) -> str:
        """The layout's text for ``folder`` of ``package`` (a subpackage's line and its
        continuation lines; the package's own for a module at its top)."""
        top = next(i for i, line in enumerate(lines) if line.startswith(f"{package}/"))
        if folder == ".":
            return "\n".join(lines[top:])  # a top module: anywhere in its package's part
        first = next(i for i in range(top, len(lines))
                     if lines[i].strip().startswith(f"{folder}/"))
        rest = (i for i in range(first + 1, len(lines)) if not lines[i].startswith("    "))
        return "\n".join(lines[first:next(rest, len(lines))])

    modules = [path for package in ("unet_lib", "unet_course")
               for path in (ROOT / package).rglob("*.py")
               if path.name not in ("__init__.py", "__main__.py")]
    assert len(modules) > 40
    # a module inside a subpackage is named in that subpackage's entry (labs/ and exercises/
    # both hold a module of their own per chapter topic: one named elsewhere does not count)
    missing = []
    for path in modules:
        package, *folders, name = path.relative_to(ROOT).parts
        if name not in entry(package, "/".join(folders) or "."):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_make_lab_turns_off_jupyterlabs_news_feed_and_update_check(tmp_path):
    """The override ``make lab`` writes is valid for the installed JupyterLab and makes "never"
    the default of both settings that would reach the internet (JupyterLab's own defaults:
    ask about the news, check for updates)."""
    import shutil
    import subprocess
    import sys

    import jsonschema
    from jupyterlab_server.settings_utils import get_settings

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    # -o: take the environment as installed; only the settings file is written
    subprocess.run(["make", "-s", "-o", f"{venv}/.installed-book", f"VENV={venv}", str(overrides)],
                   cwd=ROOT, check=True, capture_output=True)
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    name = "@jupyterlab/apputils-extension:notification"
    user = tmp_path / "user-settings"
    user.mkdir()

    def defaults(app_settings: Path) -> dict:
        found, _ = get_settings(str(app_settings), str(schemas), str(user), schema_name=name)
        return {key: value["default"] for key, value in found["schema"]["properties"].items()}

    assert defaults(tmp_path / "none")["fetchNews"] == "none"  # JupyterLab alone: it asks
    assert defaults(tmp_path / "none")["checkForUpdates"] is True
    written = json.loads(overrides.read_text())
    schema = json.loads((schemas / "@jupyterlab" / "apputils-extension"
                         / "notification.json").read_text())
    jsonschema.validate(written[name], schema)
    ours = defaults(overrides.parent)
    assert ours["fetchNews"] == "false" and ours["checkForUpdates"] is False


@pytest.mark.slow
def test_an_install_that_is_not_editable_gets_every_module_of_both_packages(tmp_path):
    """An install that is not editable (``pip install`` of a built wheel, or of the
    repository's address) must get every module of ``unet_lib`` and ``unet_course``: a package
    left out would import from the checkout in every other test here, and fail only there."""
    import subprocess
    import sys
    import zipfile

    import shutil

    source = tmp_path / "source"  # a copy: setuptools leaves a build/ folder where it builds
    for package in ("unet_lib", "unet_course"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("unet_lib-*.whl")
    inside = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    sources = {path.relative_to(ROOT).as_posix()
               for package in ("unet_lib", "unet_course")
               for path in (ROOT / package).rglob("*.py")}
    assert sources and sources == inside
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in zipfile.ZipFile(wheel).namelist()
             if name.endswith("entry_points.txt"))).decode()
    assert "unet-lib = unet_lib.cli:main" in entry_points


def test_the_wheelhouse_holds_what_builds_the_checkout_as_pyproject_asks():
    """``make wheelhouse`` adds the build backend, so that ``pip install --no-index -e .``
    works on a lab machine without internet: the same requirement pyproject.toml builds with."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r"^BUILD_REQUIRES := (\S+?)(?:#.*)?$", makefile, re.M)
    assert found and [found[1]] == build
    recipe = makefile.split("\nwheelhouse:", 1)[1].split("\n\n", 1)[0]
    assert '"$(BUILD_REQUIRES)"' in recipe and '".[course]"' in recipe
    assert "-c constraints.txt" in recipe  # PyTorch at the version the course is tested with

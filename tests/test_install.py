"""What a fresh install gets: the lock pins what pyproject.toml asks for, the README's commands and CI
install against it, and every module imports (the check CI runs in a bare venv, here in .[dev])."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"3.11": ROOT / "requirements" / "lock.txt", "3.12": ROOT / "requirements" / "lock-py312.txt"}
# scripts/refresh-lock tests the lock it is about to write, for the Python it runs on.
if os.environ.get("JAXRL_LOCK_CANDIDATE"):
    LOCKS[f"{sys.version_info[0]}.{sys.version_info[1]}"] = Path(os.environ["JAXRL_LOCK_CANDIDATE"])


def _requirements(extra: str | None = None, seen: frozenset = frozenset()) -> list[Requirement]:
    """The base dependencies (or an extra's), with ``jaxrl[...]`` self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    found = []
    for text in texts:
        requirement = Requirement(text)
        if requirement.name == "jaxrl":
            for inner in sorted(requirement.extras - seen):
                found += _requirements(inner, seen | {inner})
        else:
            found.append(requirement)
    return found


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


@pytest.mark.parametrize("python", sorted(LOCKS))
def test_lock_pins_every_dependency_of_dev_within_pyproject_ranges(python):
    pins = _lock(LOCKS[python])
    assert "jaxrl" not in pins
    for requirement in _requirements() + _requirements("dev"):
        if requirement.marker is not None and not requirement.marker.evaluate({"python_version": python}):
            continue  # a range for the other Python (navix)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{LOCKS[python].name} does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCKS[python].name} pins {name}=={pins[name]}, outside pyproject.toml's {requirement}")
    assert pins["six"]  # gymnax's undeclared import, declared by the kit


def test_readme_commands_install_the_lock_and_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", section)
    assert len(commands) == 2, commands
    train, test = commands
    for command in commands:
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
        assert "-c requirements/lock.txt" in command
    assert "jaxrl train" in train and "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci, "`.ci/run` must run the README's test command as written"


def _check_imports(*prelude: str) -> subprocess.CompletedProcess:
    code = "; ".join([*prelude, "import runpy", "runpy.run_path('scripts/check_imports.py', run_name='__main__')"])
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_module_imports():
    done = _check_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"check_imports: \d+ modules imported, 0 failed", done.stdout)


def test_import_check_names_the_modules_a_missing_dependency_breaks():
    # ``sys.modules["six"] = None`` makes ``import six`` fail as an uninstalled package would: the
    # break a bare install had when python-dateutil 4.0 stopped bringing gymnax's ``six``.
    done = _check_imports("import sys", "sys.modules['six'] = None")
    assert done.returncode == 1
    assert "import jaxrl.algorithms.ppo failed: ModuleNotFoundError" in done.stdout
    assert "six" in done.stdout and "gymnax" in done.stdout

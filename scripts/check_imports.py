"""Import every module of the installed ``jaxrl`` and ``envs`` packages, one by one.

An undeclared dependency (gymnax's ``six`` once) or a module that only imports with an extra
installed fails here with the module's name, instead of in a newcomer's first ``jaxrl train``.
The suites' adapters import their suite only when one of its environments is made, so every
module must import in a bare install. Exit status 1 if any module fails, else 0.

Usage: python scripts/check_imports.py
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback


def module_names(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    found = [package_name]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        found.append(info.name)
    return sorted(found)


def main() -> int:
    failures: list[tuple[str, str]] = []
    imported = 0
    for package_name in ("jaxrl", "envs"):
        try:
            names = module_names(package_name)
        except Exception as error:  # the package itself does not import
            failures.append((package_name, f"{type(error).__name__}: {error}"))
            continue
        for name in names:
            try:
                importlib.import_module(name)
                imported += 1
            except Exception as error:
                where = traceback.extract_tb(error.__traceback__)[-1]
                failures.append((name, f"{type(error).__name__}: {error} (raised at {where.filename}:{where.lineno})"))
    for name, message in failures:
        print(f"import {name} failed: {message}")
    print(f"check_imports: {imported} modules imported, {len(failures)} failed (python {sys.version.split()[0]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""One blueprint per screen area. Each module in this package exposes ``bp``;
they are discovered here so adding a screen never means editing a central list."""
from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint


def all_blueprints() -> list[Blueprint]:
    blueprints = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "bp", None), Blueprint):
            blueprints.append(module.bp)
    return blueprints

"""pyproject.toml (issue 28): `pip install -e .` gives an `overfeat` command with the same pins
as requirements.txt (read from that file, so they cannot drift)."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_overfeat_command_is_the_cli_and_pins_come_from_requirements():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = cfg["project"]["scripts"]["overfeat"]
    module, func = target.split(":")
    main = getattr(importlib.import_module(module), func)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "dependencies" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    reqs = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
            .splitlines()]
    reqs = [r for r in reqs if r]
    assert reqs and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", r) for r in reqs), reqs
    assert cfg["project"]["requires-python"].startswith(">=3.11")
    found = cfg["tool"]["setuptools"]["packages"]["find"]["include"]
    assert found == ["overfeat*"]  # not app_pages, tests or assets

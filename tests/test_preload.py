"""app_pages/preload.py, the server's first import: OpenMP's waiting threads sleep
(OMP_WAIT_POLICY=PASSIVE), which OpenMP reads once, when torch loads it. Checked in a fresh
interpreter, the way the server starts: the policy in the environment at the moment torch is
imported, and a deployment's own setting kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# An import hook that writes what OMP_WAIT_POLICY was when `torch` was first imported.
PROBE = """
import importlib.abc, os, sys
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" and "seen" not in globals():
            globals()["seen"] = True
            print("at torch import:", os.environ.get("OMP_WAIT_POLICY", "<unset>"))
        return None
sys.meta_path.insert(0, Spy())
import app_pages.preload
"""


def _policy_at_torch_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    (line,) = [x for x in out.splitlines() if x.startswith("at torch import:")]
    return line.split(": ", 1)[1]


def test_openmp_threads_wait_passively_from_torchs_first_import():
    assert _policy_at_torch_import(None) == "PASSIVE"


def test_a_deployments_own_policy_is_kept():
    assert _policy_at_torch_import("ACTIVE") == "ACTIVE"

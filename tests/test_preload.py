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


# After the preload, a page's first use of meta tensors (overfeat.geometry) and of each kind
# of Plotly trace imports no more modules: the 1.0-1.3 s import of torch._dynamo that the first
# meta-tensor operation set off, and plotly's validators, were paid by a student's first visit.
FIRST_USE = """
import sys
import app_pages.preload
from overfeat import geometry
from overfeat.config import preset
from overfeat.app import figures
import plotly.graph_objects as go
from plotly.subplots import make_subplots
before = set(sys.modules)
geometry.layer_table(preset("demo"), (245, 245))
fig = make_subplots(rows=1, cols=2, subplot_titles=["x", "y"])
fig.add_trace(go.Heatmap(z=[[1.0]], coloraxis="coloraxis", texttemplate="%{z}"), row=1, col=1)
fig.add_trace(go.Image(source="data:image/png;base64,", x0=0, dx=1), row=1, col=2)
fig.add_trace(go.Scatter(x=[0], y=[0], mode="text", text=["a"]))
fig.add_trace(go.Bar(x=[0], y=[0]))
fig.add_layout_image(source="data:image/png;base64,", xref="x", yref="y", x=0, y=0, sizex=1,
                     sizey=1, layer="below", row=1, col=2)  # figures.add_image
fig.update_layout(shapes=[dict(type="rect", x0=0, x1=1, y0=0, y1=1)], title=dict(text="t"),
                  annotations=[dict(text="a", x=0, y=0)], legend=dict(y=0))
figures.styled(fig)
print("new:", sorted(set(sys.modules) - before))
"""


def _new_modules(probe: str, timeout: int = 300) -> list[str]:
    """The modules a probe (run in a fresh interpreter) imported after its `before`: the list
    it prints on its "new:" line."""
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, check=True).stdout
    (line,) = [x for x in out.splitlines() if x.startswith("new:")]
    return eval(line.split(": ", 1)[1])  # a list of module names, printed by the probe


def test_first_use_of_meta_tensors_and_trace_kinds_imports_nothing_after_the_preload():
    new = _new_modules(FIRST_USE)
    assert not [m for m in new if m.startswith(("torch._dynamo", "torch._inductor"))], new
    assert not [m for m in new if m.startswith("plotly.validators")], new


# After the preload, a session's first visit to every page and the first load of every model
# import no module of the libraries the sessions share. Streamlit runs each session's script in
# its own thread: a library's first import in one session's thread while another session uses
# it handed that session a half-made module. CI's load test, three sessions on Greedy vs NMS:
# "partially initialized module 'torchvision' has no attribute '_is_tracing'" (its NMS).
SHARED = ("torch", "torchvision", "plotly", "pandas", "pyarrow", "numpy", "PIL", "orjson")
EVERY_PAGE = """
import sys
sys.path.insert(0, "tests")
import app_pages.preload
import apptest_helpers as h
from overfeat.models import registry
before = set(sys.modules)
at = h.ok(h.start(None))
for p in h.PAGES:
    h.ok(h.page(at, p))
for name in registry.MODEL_NAMES:
    registry.load(name)
print("new:", sorted(set(sys.modules) - before))
"""


def test_every_page_and_model_imports_no_shared_library_after_the_preload():
    new = _new_modules(EVERY_PAGE, timeout=600)
    assert any(m.startswith("streamlit") for m in new), "the probe visited no page"
    assert not [m for m in new if m.split(".")[0] in SHARED], new

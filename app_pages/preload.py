"""Libraries imported once, before any page runs.

Streamlit runs every session's script in its own thread. When 30 students open the link at
once, 30 threads import plotly's and Streamlit's lazy dependencies for the first time together,
and a thread can be handed a half-initialised module ("partially initialized module 'pandas'
has no attribute 'Series'", seen in tests/load_app.py --sessions 30). app.py imports this
module first: Python's import lock lets one thread run it to the end while the others wait, so
every later import finds the libraries complete.
"""

import gc
import os

# Before torch (and its OpenMP runtime) is loaded: the OpenMP worker threads that wait for work
# sleep instead of spinning. The app's runs are short bursts (a page's network pass, small
# tensor reductions) beside other sessions' runs and, on a small machine, the browser itself; a
# spinning worker held a core that they needed. Measured on the 2-core machine with Chromium
# beside the server (docs/BENCHMARKS.md): the Architecture and Offsets page switches settled
# 0.1 to 0.2 s sooner, a new upload's first results too; torch alone on an idle machine within
# the noise (an analysis at 12 views 0.20-0.23 s either way). A deployment may set its own.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy  # noqa: F401,E402
import orjson  # noqa: F401,E402  (plotly.io's JSON engine: every chart Streamlit sends)
import pandas  # noqa: F401,E402
import pyarrow.pandas_compat  # noqa: F401,E402  (Streamlit's tables, on their first use)
import pyarrow.vendored.version  # noqa: F401,E402
import plotly.graph_objects  # noqa: F401,E402
import plotly.io  # noqa: F401,E402
import plotly.subplots  # noqa: F401,E402
import torch  # noqa: F401,E402
import torch._dynamo  # noqa: F401,E402
import torch.utils.serialization  # noqa: F401,E402  (torch.load's first call)
import torchvision  # noqa: F401,E402  (its ops, models and transforms with it)
from PIL import Image  # noqa: E402

import overfeat.app.figures  # noqa: F401
import overfeat.app.state  # noqa: F401

Image.init()  # every image plugin registered once, not on a session's first upload
# torchvision (above): the Greedy vs NMS page's NMS (torchvision.ops) and the ImageNet model's
# class names (torchvision.models) imported it in a session's thread. Two sessions there at once
# broke the load test in CI: "partially initialized module 'torchvision' has no attribute
# '_is_tracing'" (one thread ran batched_nms while another was still importing the package).
# torch._dynamo (above): the first operation on meta tensors (overfeat.geometry's map sizes and
# layer tables, the Architecture page's receptive fields) imports it, 1.0 to 1.3 s that the
# first page to need it paid once per server. Plotly's validators load on a trace type's first
# use (~30 ms for those below): here once, not in a student's first visit to a page.
_go = plotly.graph_objects
_warm = plotly.subplots.make_subplots(rows=1, cols=2, subplot_titles=["a", "b"])
_warm.add_trace(_go.Scatter(x=[0], y=[0], mode="text", text=["a"], textfont=dict(size=9),
                           line=dict(width=1)), row=1, col=1)
_warm.add_trace(_go.Heatmap(z=[[0.0]], coloraxis="coloraxis", xgap=1, texttemplate="%{z}",
                            textfont=dict(size=9)),
                row=1, col=2)
_warm.add_trace(_go.Image(source="data:image/png;base64,", x0=0, dx=1))
_warm.add_trace(_go.Bar(x=[0], y=[0], marker=dict(color="red")))
_warm.update_layout(coloraxis=dict(colorbar=dict(title=dict(text="p"))), legend=dict(y=0),
                    shapes=[dict(type="rect", x0=0, x1=1, y0=0, y1=1, line=dict(width=1))],
                    annotations=[dict(text="a", x=0, y=0)], title=dict(text="t", font=dict(size=9)))
_warm.update_xaxes(title=dict(text="x", font=dict(size=9)), tickfont=dict(size=9))
_warm.update_yaxes(title=dict(text="y", font=dict(size=9)), tickfont=dict(size=9))
plotly.io.to_json(_warm)
del _go, _warm

# Every object the libraries made while importing lives as long as the server: move them out of
# the collector's generations (gc.freeze), so that its full collections (Python's own, now that
# .streamlit/config.toml turns off Streamlit's gc.collect(2) after each run) walk only what the
# sessions make. Without this one full collection took 0.15 s here.
gc.freeze()

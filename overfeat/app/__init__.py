"""The app's Streamlit-free helpers, apart from the pure ops in overfeat/: what app.py and
app_pages/ lay out, testable without a browser or a Streamlit runtime.

state (knobs -> Settings, image sources, cache keys, tables), figures/ (every Plotly figure the
app shows), share (the view <-> URL query parameters), export (one image's analysis as JSON),
jobs (training runs started from the app). Nothing here imports Streamlit.
"""

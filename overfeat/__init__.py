"""OverFeat (Sermanet et al., ICLR 2014) for teaching: one ConvNet slid over six scales.

The package never imports Streamlit; the app in app.py and app_pages/ only lays out what it returns.
"""

__version__ = "0.1.0"

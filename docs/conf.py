"""Sphinx configuration for the one pyrtlnet documentation site (all three packages)."""

import importlib.metadata
import os
from pathlib import Path

project = "pyrtlnet"
author = "The pyrtlnet developers"
copyright = "2026, The pyrtlnet developers"
release = importlib.metadata.version("pyrtlnet")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

# TensorFlow is only needed to train; the docs build without it.
autodoc_mock_imports = ["tensorflow", "tf_keras", "tensorflow_model_optimization"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}

# Cross-references to Python, NumPy and PyRTL. The build machines reach no documentation host,
# so an inventory is used from a local copy where one is installed (Debian's python3.11-doc
# ships Python's); set PYRTLNET_DOCS_ONLINE=1 to fetch every inventory from the web instead.
_INVENTORIES = {
    "python": ("https://docs.python.org/3", "/usr/share/doc/python3.11/html/objects.inv"),
    "numpy": ("https://numpy.org/doc/stable", "/usr/share/doc/python-numpy-doc/html/objects.inv"),
    "pyrtl": ("https://pyrtl.readthedocs.io/en/latest", None),
}
_online = os.environ.get("PYRTLNET_DOCS_ONLINE") == "1"
intersphinx_mapping = {
    name: (url, None if _online else local)
    for name, (url, local) in _INVENTORIES.items()
    if _online or (local is not None and Path(local).exists())
}
nitpicky = False

html_theme = "furo"
html_title = "pyrtlnet"
exclude_patterns = ["_build"]

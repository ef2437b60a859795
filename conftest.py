"""Registers the harness's pytest plugin for this repository's suites (installed copies: the entry point)."""

import importlib.metadata

# When the package is installed, pytest already loads the plugin through its `pytest11` entry point;
# naming it here too would register it twice.
_installed = any(ep.name == "nxp_matter_hil" for ep in importlib.metadata.entry_points(group="pytest11"))
pytest_plugins = [] if _installed else ["hil.pytest_plugin"]

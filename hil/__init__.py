"""nxp-matter-hil: NXP's Matter manufacturing flow as one Python library, driven by pytest.

Library first (this package), pytest plugin second (`hil.pytest_plugin`), command line third (`hil.cli`).
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is looked up on first use, not at import: `import hil` stays instant (the CLI's Ctrl-C
    # window while loading, every xdist worker's start-up).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("nxp-matter-hil")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'hil' has no attribute {name!r}")

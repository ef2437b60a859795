"""nxp-matter-hil: NXP's Matter manufacturing flow as one Python library, driven by pytest.

Library first (this package), pytest plugin second (`hil.pytest_plugin`), command line third (`hil.cli`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nxp-matter-hil")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

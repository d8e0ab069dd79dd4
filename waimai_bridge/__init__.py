"""waimai-bridge: one order model, one state machine and one API over the takeaway platforms."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("waimai-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

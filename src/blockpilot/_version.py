"""The version of blockpilot, read by the build (pyproject.toml) and ``blockpilot.__version__``."""

__version__ = "0.1.0"

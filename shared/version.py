"""artiflow's version (one distribution: the core and both integrations)."""

__version__ = "0.1.0"

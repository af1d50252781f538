"""The package's version, in a module of its own so that modules inside the package can read it without
importing the package's ``__init__`` (an import that would point upwards)."""

__version__ = "0.1.0"

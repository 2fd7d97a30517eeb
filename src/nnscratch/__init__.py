"""nnscratch: neural networks from scratch in NumPy."""

__version__ = "0.1.0"


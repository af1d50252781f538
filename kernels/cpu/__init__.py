"""The CPU kernels: Numba, over NumPy arrays."""

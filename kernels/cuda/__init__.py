"""The CUDA kernels: CUDA C sources with their launch shapes, and Numba CUDA kernels."""

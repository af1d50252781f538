"""The commands: ``train``, ``predict`` and what every command shares (``common``). Users run them as
``python -m mnist_accel.train`` and ``python -m mnist_accel.predict`` (thin modules at the package's top)
and ``python -m mnist_accel.sweep``."""

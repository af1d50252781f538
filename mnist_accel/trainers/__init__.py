"""The trainers: the tutorial's per-sample loop (``loop``), the mini-batch trainer written once against
``xp`` (``vectorized``), and the CUDA-graph replay of its step (``graphs``). Each trains an epoch; the
epoch loop around them is ``mnist_accel.training``'s."""

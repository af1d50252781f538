// Fused elementwise kernels for the vectorized trainer on the GPU (loaded by vectorized_cuda.py).
// Each replaces several CuPy launches of mnist_accel/ops.py (XpOps), which is their reference:
// bias + activation + dropout, the activation's backward, softmax cross-entropy (or squared error)
// with its gradient, and the optimizer updates. Templated on the float type (float, double). Each kernel's
// parameters are declared once, in vectorized_cuda.py (PARAMS): source() writes them where a definition
// says NAME_PARAMS, and appends the explicit instantiations; a launch passes its arguments by name.

enum { RELU = 0, TANH = 1, SIGMOID = 2, IDENTITY = 3 };

template <typename T>
__device__ T activate(T v, int act) {
    if (act == RELU) return v > T(0) ? v : T(0);
    if (act == TANH) return tanh(v);
    if (act == SIGMOID) return T(1) / (T(1) + exp(-v));
    return v;
}

// z <- act(z + b) * mask over a rows x cols matrix (b and mask are read only when their flags say so).
template <typename T>
__global__ void bias_act(BIAS_ACT_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    T v = z[i];
    if (use_bias) v += b[i % cols];
    v = activate(v, act);
    z[i] = use_mask ? v * mask[i] : v;
}

// delta <- delta * act'(a) * mask, where h = a * mask is the layer's output.
template <typename T>
__global__ void act_backward(ACT_BACKWARD_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T d = delta[i];
    if (act == RELU) {
        d = h[i] > T(0) ? d : T(0);
    } else if (act != IDENTITY) {
        T a = use_mask ? h[i] * inv_scale : h[i];
        d *= act == TANH ? T(1) - a * a : a * (T(1) - a);
    }
    delta[i] = use_mask ? d * mask[i] : d;
}

// One thread per row: grad <- d(mean loss)/dz; row_loss and row_hit receive each row's loss and hit,
// summed afterwards in a fixed order (atomics would make the loss depend on scheduling).
template <typename T>
__global__ void loss_grad(LOSS_GRAD_PARAMS) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const T* zr = z + (long long)r * k;
    T* gr = grad + (long long)r * k;
    int label = labels[r], best = 0;
    // The first maximum wins, and a NaN wins as in NumPy's argmax (a comparison with NaN is false).
    for (int j = 1; j < k && zr[best] == zr[best]; ++j) if (zr[j] > zr[best] || zr[j] != zr[j]) best = j;
    row_hit[r] = best == label;
    T inv_n = T(1) / T(rows);
    if (mse) {
        double total = 0;
        for (int j = 0; j < k; ++j) {
            T diff = zr[j] - (j == label ? T(1) : T(0));
            total += (double)diff * diff;
            gr[j] = diff * (T(2) * inv_n);
        }
        row_loss[r] = total;
        return;
    }
    T peak = zr[best], norm = 0;
    for (int j = 0; j < k; ++j) norm += exp(zr[j] - peak);
    row_loss[r] = (double)(log(norm) + peak - zr[label]);
    for (int j = 0; j < k; ++j) gr[j] = exp(zr[j] - peak) / norm * inv_n;
    gr[label] -= inv_n;
}

// The optimizers read (lr, step size, eps) from device memory `s` (optim.step_scalars), never from
// arguments, so one captured CUDA graph serves every step. Adam's step and eps fold in its bias corrections.
// Decay is added only where there is some, as optim.update does: 0 * p is NaN for an infinite p.
template <typename T>
__device__ T decayed(T g, T p, T wd) {
    return wd != T(0) ? g + wd * p : g;
}

// beta1c and beta2c are 1 - beta computed in double on the host: in float, T(1) - float(0.999) is
// 0.00099998713, which put v 1.3e-5 (relative) off optim.update's.
template <typename T>
__global__ void adam(ADAM_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T step = s[1], eps = s[2];
    T gi = decayed(g[i], p[i], wd);
    T mi = beta1 * m[i] + beta1c * gi;
    T vi = beta2 * v[i] + beta2c * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrt(vi) + eps);
}

template <typename T>
__global__ void momentum(MOMENTUM_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T lr = s[0];
    T vi = mu * vel[i] + decayed(g[i], p[i], wd);
    vel[i] = vi;
    p[i] -= lr * vi;
}

// scikit-learn's momentum (optim.update): vel = mu * vel - lr * g; then p += mu * vel - lr * g with
// lookahead (Nesterov's), else p += vel (classical).
template <typename T>
__global__ void sklearn_momentum(SKLEARN_MOMENTUM_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T step_g = s[0] * decayed(g[i], p[i], wd);
    T vi = mu * vel[i] - step_g;
    vel[i] = vi;
    p[i] += lookahead ? mu * vi - step_g : vi;
}

template <typename T>
__global__ void sgd(SGD_PARAMS) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T lr = s[0];
    p[i] -= lr * decayed(g[i], p[i], wd);
}

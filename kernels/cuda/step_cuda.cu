// One whole training step of the vectorized trainer in a few fused kernels of our own (loaded by
// step_cuda.py). No cuBLAS, so CuPy can capture the step as a CUDA graph of a handful of nodes and
// replay it. What changes from step to step (the step counter k, the epoch's shuffled order, the
// (lr, step size, eps) table, the dropout keys) is read from device memory, never passed as an
// argument: one capture then serves every full batch. The reference is XpOps (mnist_accel/ops/xp_ops.py)
// and optim.update; every sum runs in a fixed order, so a step is bit-reproducible on a given GPU.
// Templated on the float type (float, double). Each kernel's parameters are declared once, in step_cuda.py
// (PARAMS): step_cuda.source() writes them where a definition says NAME_PARAMS, and appends the explicit
// instantiations; a launch passes its arguments by those names.

enum { RELU = 0, TANH = 1, SIGMOID = 2, IDENTITY = 3 };
// The label losses compare a row with its class label; the others with the row's float targets.
enum { MSE = 0, CROSS_ENTROPY = 1, BINARY_CROSS_ENTROPY = 3, SQUARED_ERROR = 4, POISSON = 5 };
enum { SGD = 0, MOMENTUM = 1, ADAM = 2, NESTEROV = 3, CLASSICAL_MOMENTUM = 4 };
enum { DENSE = 0, PIXELS = 1, FEATURES = 2 };  // where a layer's input rows come from

// Tiled GEMM: a TILE x TILE block of outputs per 16 x 16 threads, MICRO x MICRO outputs per thread
// (strided by 16, so a warp's shared reads hit distinct banks and its global writes are contiguous).
constexpr int TILE = 32, KT = 32, THREADS_1D = 16, MICRO = TILE / THREADS_1D;
constexpr int THREADS = THREADS_1D * THREADS_1D;
// output_loss: OL_ROWS rows per block, one thread per (row, output) pair for z.
constexpr int OL_ROWS = 16, OL_MAX_M = 16, OL_KT = 64, OL_THREADS = OL_ROWS * OL_MAX_M;
constexpr int FINISH_THREADS = 256;

__device__ __forceinline__ unsigned mix32(unsigned x) {  // lowbias32, as mnist_accel/rng.py
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    return x ^ (x >> 16);
}

// Element i of a layer's inverted-dropout mask (rng.dropout_mask): recomputed wherever it is needed, so no
// mask is ever stored.
template <typename T>
__device__ __forceinline__ T keep_factor(unsigned key, unsigned i, unsigned threshold, T scale) {
    return mix32(mix32(i ^ key) + key) >= threshold ? scale : T(0);
}

template <typename T>
__device__ __forceinline__ T activate(T v, int act) {
    if (act == RELU) return v > T(0) ? v : T(0);
    if (act == TANH) return tanh(v);
    if (act == SIGMOID) return T(1) / (T(1) + exp(-v));
    return v;
}

// d * act'(a) * mask for a hidden layer whose output is h = a * mask (XpOps.act_backward): the mask
// multiplier `keep` is 0 or `scale`, and a masked tanh/sigmoid recovers a as h * scale.
template <typename T>
__device__ __forceinline__ T hidden_delta(T d, T h, int act, int masked, T keep, T scale) {
    if (act == RELU) {
        d *= T(h > T(0));
    } else if (act != IDENTITY) {
        T a = masked ? h * scale : h;
        d *= act == TANH ? T(1) - a * a : a * (T(1) - a);
    }
    return masked ? d * keep : d;
}

// A row-major rows x cols matrix whose rows are in place (DENSE) or gathered through the epoch's order
// from a uint8 pixel table (PIXELS, scaled as NumPy's x / dtype(255)) or a feature table (FEATURES).
// Zero outside its extents, so a ragged tile adds nothing to a sum.
template <typename T>
struct Matrix {
    const T* x;
    const unsigned char* pixels;
    const long long* order;
    long long base;
    int kind, rows, cols;

    __device__ T at(int r, int c) const {
        if (r >= rows || c >= cols) return T(0);
        if (kind == DENSE) return x[(long long)r * cols + c];
        long long row = order[base + r];
        if (kind == PIXELS) return T(pixels[row * cols + c]) / T(255);
        return x[row * cols + c];
    }
};

// A KT x TILE slice of an operand, PER_THREAD elements a thread, fetched into registers and then stored
// to shared memory as s[k][x]. K_IS_COL: the GEMM's k runs along the matrix's columns. Consecutive threads
// walk the matrix's contiguous dimension (coalesced reads); the padded rows keep the transposing store
// free of bank conflicts.
constexpr int PER_THREAD = KT * TILE / THREADS;

template <bool K_IS_COL, typename T>
__device__ __forceinline__ void fetch_tile(const Matrix<T>& mat, T (&reg)[PER_THREAD], int k0, int x0) {
    int t = threadIdx.y * THREADS_1D + threadIdx.x;
#pragma unroll
    for (int e = 0; e < PER_THREAD; ++e) {
        int fast = (t + e * THREADS) % TILE, slow = (t + e * THREADS) / TILE;
        reg[e] = K_IS_COL ? mat.at(x0 + slow, k0 + fast) : mat.at(k0 + slow, x0 + fast);
    }
}

template <bool K_IS_COL, typename T>
__device__ __forceinline__ void store_tile(T (*s)[TILE + 1], const T (&reg)[PER_THREAD]) {
    int t = threadIdx.y * THREADS_1D + threadIdx.x;
#pragma unroll
    for (int e = 0; e < PER_THREAD; ++e) {
        int fast = (t + e * THREADS) % TILE, slow = (t + e * THREADS) / TILE;
        if (K_IS_COL) s[fast][slow] = reg[e];
        else s[slow][fast] = reg[e];
    }
}

// acc[u][v] = sum over k of A(i, k) * B(k, j) for this block's tile, k ascending (a fixed order). The
// next slices' global reads are issued before this slice's arithmetic, so their latency overlaps it: at
// these sizes a block often has an SM to itself, with no other warps to hide behind.
// With sum_b, bias_sum also receives sum over k of B(k, j): grad_update's bias gradient, read from the
// slices already in shared memory.
template <bool A_K_IS_COL, bool B_K_IS_COL, typename T>
__device__ void tile_product(const Matrix<T>& a, const Matrix<T>& b, int K, T (&acc)[MICRO][MICRO],
                             T (*sa)[TILE + 1], T (*sb)[TILE + 1], bool sum_b, T (&bias_sum)[MICRO]) {
    int tx = threadIdx.x, ty = threadIdx.y, i0 = blockIdx.x * TILE, j0 = blockIdx.y * TILE;
    for (int u = 0; u < MICRO; ++u)
        for (int v = 0; v < MICRO; ++v) acc[u][v] = T(0);
    T ra[PER_THREAD], rb[PER_THREAD];
    fetch_tile<A_K_IS_COL>(a, ra, 0, i0);
    fetch_tile<B_K_IS_COL>(b, rb, 0, j0);
    for (int k0 = 0; k0 < K; k0 += KT) {
        store_tile<A_K_IS_COL>(sa, ra);
        store_tile<B_K_IS_COL>(sb, rb);
        __syncthreads();
        if (k0 + KT < K) {
            fetch_tile<A_K_IS_COL>(a, ra, k0 + KT, i0);
            fetch_tile<B_K_IS_COL>(b, rb, k0 + KT, j0);
        }
        int kn = K - k0 < KT ? K - k0 : KT;
        for (int kk = 0; kk < kn; ++kk) {
            T av[MICRO], bv[MICRO];
#pragma unroll
            for (int u = 0; u < MICRO; ++u) av[u] = sa[kk][ty + THREADS_1D * u];
#pragma unroll
            for (int v = 0; v < MICRO; ++v) bv[v] = sb[kk][tx + THREADS_1D * v];
#pragma unroll
            for (int u = 0; u < MICRO; ++u)
#pragma unroll
                for (int v = 0; v < MICRO; ++v) acc[u][v] += av[u] * bv[v];
        }
        if (sum_b)
            for (int kk = 0; kk < kn; ++kk)
#pragma unroll
                for (int v = 0; v < MICRO; ++v) bias_sum[v] += sb[kk][tx + THREADS_1D * v];
        __syncthreads();
    }
}

// y[r, c] = drop(act(sum_j X[r, j] W[j, c] + b[c])) for n rows of width m, fan-in f. X is the dense
// buffer x (x_kind DENSE), or the batch gathered as row order[*k * bs + r] of pixels or of x.
template <typename T>
__global__ void dense_forward(DENSE_FORWARD_PARAMS) {
    __shared__ T sa[KT][TILE + 1], sb[KT][TILE + 1];
    long long step = *k;
    Matrix<T> in{x, pixels, order, step * bs, x_kind, n, f}, w{W, nullptr, nullptr, 0, DENSE, f, m};
    T acc[MICRO][MICRO], unused[MICRO];
    tile_product<true, false>(in, w, f, acc, sa, sb, false, unused);
    unsigned key = use_dropout ? keys[step * n_keys + layer] : 0u;
    int r0 = blockIdx.x * TILE + threadIdx.y, c0 = blockIdx.y * TILE + threadIdx.x;
    for (int u = 0; u < MICRO; ++u)
        for (int v = 0; v < MICRO; ++v) {
            int r = r0 + THREADS_1D * u, c = c0 + THREADS_1D * v;
            if (r >= n || c >= m) continue;
            long long e = (long long)r * m + c;
            T z = acc[u][v];
            if (use_bias) z += b[c];
            z = activate(z, act);
            y[e] = use_dropout ? z * keep_factor(key, (unsigned)e, threshold, scale) : z;
        }
}

// Row r's loss, hit and gradient dz = d(mean loss)/dz over its m outputs z (XpOps.loss_grad), against its
// class label (MSE, CROSS_ENTROPY) or its float targets y (the others: losses.loss_sum, output_grad and
// correct_count); z is overwritten with dz.
template <typename T>
__device__ void row_loss_grad(T* z, int m, int label, const T* y, int loss, int n, double* row_loss, int* row_hit) {
    if (loss != MSE && loss != CROSS_ENTROPY) {
        T total = T(0), inv_n = T(1.0 / n);
        int hit = 1;
        for (int c = 0; c < m; ++c) {
            T v = z[c], t = y[c], p, l;
            if (loss == BINARY_CROSS_ENTROPY) {  // the logistic and softplus from exp(-|v|): no overflow
                T e = exp(-fabs(v));
                p = (v >= T(0) ? T(1) : e) / (T(1) + e);
                l = (v > T(0) ? v : T(0)) + log1p(e) - t * v;
                hit &= (v > T(0)) == (t > T(0.5));
            } else if (loss == SQUARED_ERROR) {
                p = v;
                l = T(0.5) * ((v - t) * (v - t));
            } else {  // POISSON
                p = exp(v);
                l = (t > T(0) ? t * log(t) : T(0)) - t - t * v + p;
            }
            total += l;
            z[c] = (p - t) * inv_n;
        }
        *row_hit = loss == BINARY_CROSS_ENTROPY ? hit : 0;
        *row_loss = (double)total;
        return;
    }
    int best = 0;  // the first maximum wins; a NaN wins as in NumPy's argmax
    for (int c = 1; c < m && z[best] == z[best]; ++c)
        if (z[c] > z[best] || z[c] != z[c]) best = c;
    *row_hit = best == label;
    if (loss == MSE) {
        T two_n = T(2.0 / n), total = T(0);
        for (int c = 0; c < m; ++c) {
            T diff = c == label ? z[c] - T(1) : z[c];
            total += diff * diff;
            z[c] = c == label ? z[c] * two_n - two_n : z[c] * two_n;
        }
        *row_loss = (double)total;
        return;
    }
    T peak = z[best], norm = T(0), inv_n = T(1.0 / n);
    for (int c = 0; c < m; ++c) norm += exp(z[c] - peak);
    *row_loss = (double)(log(norm) + peak - z[label]);
    for (int c = 0; c < m; ++c) {
        T p = exp(z[c] - peak) / norm;
        z[c] = (c == label ? p - T(1) : p) * inv_n;
    }
}

// The output layer (m <= OL_MAX_M outputs) on OL_ROWS rows per block: z = h W + b, each row's loss
// (row_loss), hit (row_hit) and dz (written to dz, n x m) against the row's label (labels[row]) or float
// targets (targets[row * m ...]), row = order[*k * bs + r], then the last hidden layer's delta
// delta[r, j] = (sum_c dz[r, c] W[j, c]) act'(h[r, j]) mask[r, j], its mask recomputed with key
// keys[*k * n_keys + layer]. W is only read: the output layer's grad_update runs after this.
template <typename T>
__global__ void output_loss(OUTPUT_LOSS_PARAMS) {
    __shared__ T sh[OL_ROWS][OL_KT + 1], sw[OL_KT][OL_MAX_M], sz[OL_ROWS][OL_MAX_M];
    int t = threadIdx.x, r0 = blockIdx.x * OL_ROWS, rr = t / OL_MAX_M, c = t % OL_MAX_M;
    T acc = T(0);
    for (int j0 = 0; j0 < f; j0 += OL_KT) {
        for (int q = t; q < OL_ROWS * OL_KT; q += OL_THREADS) {
            int i = q / OL_KT, j = q % OL_KT;
            sh[i][j] = r0 + i < n && j0 + j < f ? h[(long long)(r0 + i) * f + j0 + j] : T(0);
        }
        for (int q = t; q < OL_KT * OL_MAX_M; q += OL_THREADS) {
            int j = q / OL_MAX_M, cc = q % OL_MAX_M;
            sw[j][cc] = j0 + j < f && cc < m ? W[(long long)(j0 + j) * m + cc] : T(0);
        }
        __syncthreads();
        int jn = f - j0 < OL_KT ? f - j0 : OL_KT;
        for (int jj = 0; jj < jn; ++jj) acc += sh[rr][jj] * sw[jj][c];
        __syncthreads();
    }
    if (use_bias && c < m) acc += b[c];
    sz[rr][c] = acc;
    __syncthreads();
    long long step = *k;
    if (t < OL_ROWS && r0 + t < n) {
        int r = r0 + t;
        long long row = order[step * bs + r];
        row_loss_grad(sz[t], m, labels ? labels[row] : 0, targets ? targets + row * m : nullptr, loss, n, row_loss + r,
                      row_hit + r);
        for (int cc = 0; cc < m; ++cc) dz[(long long)r * m + cc] = sz[t][cc];
    }
    __syncthreads();
    unsigned key = use_dropout ? keys[step * n_keys + layer] : 0u;
    int rows = n - r0 < OL_ROWS ? n - r0 : OL_ROWS;
    for (int j = t; j < f; j += OL_THREADS) {
        T w[OL_MAX_M];  // row j of W, kept in registers for all of the block's rows
#pragma unroll
        for (int cc = 0; cc < OL_MAX_M; ++cc) w[cc] = cc < m ? W[(long long)j * m + cc] : T(0);
        for (int i = 0; i < rows; ++i) {
            T d = T(0);
#pragma unroll
            for (int cc = 0; cc < OL_MAX_M; ++cc)
                if (cc < m) d += sz[i][cc] * w[cc];
            long long e = (long long)(r0 + i) * f + j;
            T keep = use_dropout ? keep_factor(key, (unsigned)e, threshold, scale) : T(1);
            delta[e] = hidden_delta(d, h[e], act, use_dropout, keep, scale);
        }
    }
}

// For deeper nets: delta_prev[r, j] = (sum_c delta[r, c] W[j, c]) act'(h_prev[r, j]) mask_prev[r, j],
// with W (f x m) the weights between the two layers, read before their grad_update changes them.
template <typename T>
__global__ void dense_backward(DENSE_BACKWARD_PARAMS) {
    __shared__ T sa[KT][TILE + 1], sb[KT][TILE + 1];
    Matrix<T> d{delta, nullptr, nullptr, 0, DENSE, n, m}, w{W, nullptr, nullptr, 0, DENSE, f, m};
    T acc[MICRO][MICRO], unused[MICRO];
    tile_product<true, true>(d, w, m, acc, sa, sb, false, unused);
    unsigned key = use_dropout ? keys[*k * n_keys + layer] : 0u;
    int r0 = blockIdx.x * TILE + threadIdx.y, j0 = blockIdx.y * TILE + threadIdx.x;
    for (int u = 0; u < MICRO; ++u)
        for (int v = 0; v < MICRO; ++v) {
            int r = r0 + THREADS_1D * u, j = j0 + THREADS_1D * v;
            if (r >= n || j >= f) continue;
            long long e = (long long)r * f + j;
            T keep = use_dropout ? keep_factor(key, (unsigned)e, threshold, scale) : T(1);
            delta_prev[e] = hidden_delta(acc[u][v], h_prev[e], act, use_dropout, keep, scale);
        }
}

// optim.update on one element, in its operation order: wd is 0 for biases; lr/step/eps come from the
// step's row of the schedule. The momentum optimizers use beta1 as mu; beta1c and beta2c are 1 - beta rounded from
// double, as NumPy rounds (1 - cfg.beta1).
template <typename T>
__device__ void apply_update(T* p, T* s1, T* s2, long long e, T g, T wd, int opt, const T* s, T beta1, T beta1c,
                             T beta2, T beta2c) {
    if (wd != T(0)) g = g + wd * p[e];
    if (opt == SGD) {
        p[e] -= s[0] * g;
    } else if (opt == MOMENTUM) {
        T vel = beta1 * s1[e] + g;
        s1[e] = vel;
        p[e] -= s[0] * vel;
    } else if (opt == NESTEROV || opt == CLASSICAL_MOMENTUM) {
        T step_g = s[0] * g, vel = beta1 * s1[e] - step_g;
        s1[e] = vel;
        p[e] += opt == NESTEROV ? beta1 * vel - step_g : vel;
    } else {
        T mo = beta1 * s1[e] + beta1c * g, ve = beta2 * s2[e] + beta2c * (g * g);
        s1[e] = mo;
        s2[e] = ve;
        p[e] -= s[1] * mo / (sqrt(ve) + s[2]);
    }
}

// One layer's gradient and update in place: G[j, c] = sum_r A[r, j] D[r, c] and g_b[c] = sum_r D[r, c],
// each summed over r ascending, never stored: the optimizer consumes them where they are formed. A is the
// layer's input x (as dense_forward's), D its delta (or the output's dz). W_s1/W_s2 (b_s1/b_s2) are the
// optimizer's slots: velocity, or Adam's (m, v); unused ones may be null.
template <typename T>
__global__ void grad_update(GRAD_UPDATE_PARAMS) {
    __shared__ T sa[KT][TILE + 1], sb[KT][TILE + 1];
    long long step = *k;
    Matrix<T> in{x, pixels, order, step * bs, x_kind, n, f}, dm{d, nullptr, nullptr, 0, DENSE, n, m};
    T acc[MICRO][MICRO], bias_sum[MICRO] = {};
    bool bias_thread = use_bias && blockIdx.x == 0 && threadIdx.y == 0;
    tile_product<false, false>(in, dm, n, acc, sa, sb, bias_thread, bias_sum);
    const T* s = sched + step * 3;
    int j0 = blockIdx.x * TILE + threadIdx.y, c0 = blockIdx.y * TILE + threadIdx.x;
    for (int u = 0; u < MICRO; ++u)
        for (int v = 0; v < MICRO; ++v) {
            int j = j0 + THREADS_1D * u, c = c0 + THREADS_1D * v;
            if (j < f && c < m)
                apply_update(W, W_s1, W_s2, (long long)j * m + c, acc[u][v], wd, opt, s, beta1, beta1c, beta2, beta2c);
        }
    if (bias_thread)
        for (int v = 0; v < MICRO; ++v) {
            int c = c0 + THREADS_1D * v;
            if (c < m) apply_update(b, b_s1, b_s2, c, bias_sum[v], T(0), opt, s, beta1, beta1c, beta2, beta2c);
        }
}

// The step's last kernel, one block: the batch's loss and hits summed in a fixed tree (thread t takes
// rows t, t + FINISH_THREADS, ..., then halves pair up), accumulated, and the step counter advanced.
// Atomics would make the sum depend on scheduling.
__global__ void finish_step(FINISH_STEP_PARAMS) {
    __shared__ double sl[FINISH_THREADS];
    __shared__ long long sc[FINISH_THREADS];
    int t = threadIdx.x;
    double l = 0;
    long long c = 0;
    for (int r = t; r < n; r += FINISH_THREADS) {
        l += row_loss[r];
        c += row_hit[r];
    }
    sl[t] = l;
    sc[t] = c;
    __syncthreads();
    for (int half = FINISH_THREADS / 2; half > 0; half >>= 1) {
        if (t < half) {
            sl[t] += sl[t + half];
            sc[t] += sc[t + half];
        }
        __syncthreads();
    }
    if (t == 0) {
        long long step = *k;
        step_loss[step] = sl[0];
        *loss_sum += sl[0];
        *hits += (double)sc[0];
        *k = step + 1;
    }
}

/* cuda_on_cpu.h: lets CUDA C kernel sources compile unchanged with the host C++ compiler and runs a launch
 * grid faithfully on the CPU. Test code: tests/cuda_standin/cpu_runtime.py writes a translation unit that
 * includes this header, pastes the .cu source and adds one extern "C" launcher per kernel.
 *
 * Execution model. Blocks run one after another (CUDA promises no concurrency between blocks). The threads
 * of a block are cooperative fibers on one OS thread that switch only at barriers and warp collectives, so
 * every run is deterministic. A fiber runs threads to completion one after another and is parked (keeping
 * its stack) only when its thread waits, so a kernel without barriers runs every thread on one stack with
 * no context switch at all. When every started thread waits or has exited, the scheduler completes what
 * can complete (a warp collective whose live lanes have all arrived; the barrier, once every live thread
 * is at it) and reports a deadlock when nothing can.
 *
 * __shared__ is `static`: blocks run one at a time and the launches of one library are serialized by a
 * mutex, so a static is exactly one copy per block. `used` keeps it in memory as declared: g++ may neither
 * drop it nor fold a read of a never-written one to zero, and cpu_runtime.py finds it among the library's
 * symbols (its size counts against the kernel's shared memory). Shared memory starts undefined on a GPU:
 * at each block's start the launcher fills the kernel's static shared variables and the dynamic shared
 * bytes with 0xff (NaN for floats, -1 for integers), so a read before any write shows.
 *
 * Atomics are plain read-modify-writes, atomic because threads only switch at barriers. Fiber stacks are
 * 256 KiB (kernels may keep local arrays) with a guard page below, allocated lazily and reused across blocks
 * and launches.
 */
#pragma once
#include <math.h>
#include <climits>
#include <cfloat>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <assert.h>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <sys/mman.h>
#if !defined(__x86_64__) || defined(CUDA_ON_CPU_UCONTEXT)
#define CUDA_ON_CPU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

// Qualifiers and the macros NVRTC predefines, defined after every system header: glibc and libstdc++ use
// __attribute__((__noinline__)), which a __noinline__ macro would break.
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __shared__ static __attribute__((used))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __CUDACC__ 1
#define __CUDACC_RTC__ 1
#define __CUDA_ARCH__ 900
#define CUDA_ON_CPU 1
#define CUDART_INF_F (__builtin_inff())
#define CUDART_NAN_F (__builtin_nanf(""))
#define CUDART_INF (__builtin_inf())
#define CUDART_NAN (__builtin_nan(""))
#define CUDART_PI_F 3.141592654f
#define CUDART_PI 3.1415926535897931e+0

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
#define COC_VECTOR(T, N2, N3, N4, A2, A4)                                                                     \
    struct __attribute__((aligned(A2))) N2 { T x, y; };                                                       \
    struct N3 { T x, y, z; };                                                                                \
    struct __attribute__((aligned(A4))) N4 { T x, y, z, w; };                                                 \
    static inline N2 make_##N2(T x, T y) { return N2{x, y}; }                                                \
    static inline N3 make_##N3(T x, T y, T z) { return N3{x, y, z}; }                                        \
    static inline N4 make_##N4(T x, T y, T z, T w) { return N4{x, y, z, w}; }
COC_VECTOR(float, float2, float3, float4, 8, 16)
COC_VECTOR(double, double2, double3, double4, 16, 16)
COC_VECTOR(int, int2, int3, int4, 8, 16)
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
static inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    return uint4{x, y, z, w};
}

// The built-in index variables: per-library globals the scheduler rewrites before any thread (re)starts.
static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static constexpr int warpSize = 32;

namespace cuda_on_cpu {
constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024, kGuardBytes = 4096;
constexpr unsigned long long kMaxDynamicShared = 232448;  // Hopper's opt-in maximum; cpu_runtime.py agrees
alignas(64) static unsigned char dynamic_shared[kMaxDynamicShared];

enum : unsigned char { NOT_STARTED, RUNNING, EXITED, AT_BARRIER, AT_WARP, FAILED };
enum : unsigned char { OP_SYNCTHREADS, OP_SYNCTHREADS_COUNT, OP_SYNCTHREADS_AND, OP_SYNCTHREADS_OR, OP_SYNCWARP,
                       OP_SHFL, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_BALLOT, OP_ANY, OP_ALL };
static const char* const kOpNames[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                       "__syncthreads_or", "__syncwarp", "__shfl_sync", "__shfl_up_sync",
                                       "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync", "__any_sync",
                                       "__all_sync"};

#ifdef CUDA_ON_CPU_USE_UCONTEXT
struct Ctx { ucontext_t uc; };
static void ctx_switch(Ctx* from, Ctx* to) { swapcontext(&from->uc, &to->uc); }
static void ctx_init(Ctx* c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#else
// x86-64 System V switch: saves the callee-saved registers, MXCSR and the x87 control word on the old stack,
// stores its rsp, loads the new one. swapcontext would make a sigprocmask syscall on every switch.
struct Ctx { void* sp; };
extern "C" __attribute__((visibility("hidden"))) void cuda_on_cpu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .p2align 4
    .globl cuda_on_cpu_switch
    .hidden cuda_on_cpu_switch
    .type cuda_on_cpu_switch, @function
cuda_on_cpu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_on_cpu_switch, .-cuda_on_cpu_switch
)");
static void ctx_switch(Ctx* from, Ctx* to) { cuda_on_cpu_switch(&from->sp, to->sp); }
static void ctx_init(Ctx* c, char* stack, size_t size, void (*entry)()) {
    // The first switch "returns" into entry with rsp = 8 (mod 16), as if entry had just been called.
    uint64_t* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15)) - 16);
    top[1] = 0;  // entry's return address: none, it never returns
    top[0] = reinterpret_cast<uint64_t>(entry);
    uint64_t* sp = top - 7;  // control words, r15, r14, r13, r12, rbx, rbp
    std::memset(sp, 0, 7 * sizeof(uint64_t));
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    std::memcpy(sp, &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
    c->sp = sp;
}
#endif

struct Fiber { Ctx ctx; char* stack; int thread; };
struct Wait { unsigned long long value, result; unsigned mask; int arg, width, line; unsigned char op; };

static struct Runtime {
    std::mutex mutex;
    Ctx sched;
    Fiber* current;
    Fiber* fibers[kMaxThreads + 1];
    Fiber* free_fibers[kMaxThreads + 1];
    int nfibers, nfree, nthreads, next_start, live, ready_pos, ready_count;
    unsigned char state[kMaxThreads];
    Fiber* owner[kMaxThreads];
    uint3 tidx[kMaxThreads];
    Wait wait[kMaxThreads];
    int ready[kMaxThreads];
    void (*thunk)(void*);
    void* closure;
    bool failed;
    char error[4096];
} rt;

static void fiber_main();

static void set_error(const char* fmt, ...) {
    size_t used = std::strlen(rt.error);
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(rt.error + used, sizeof rt.error - used, fmt, ap);
    va_end(ap);
    rt.failed = true;
}

static Fiber* take_fiber() {
    if (rt.nfree) return rt.free_fibers[--rt.nfree];
    if (rt.nfibers == kMaxThreads + 1) return nullptr;
    void* mem = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    mprotect(mem, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
    Fiber* f = static_cast<Fiber*>(std::calloc(1, sizeof(Fiber)));
    f->stack = static_cast<char*>(mem) + kGuardBytes;
    ctx_init(&f->ctx, f->stack, kStackBytes, fiber_main);
    return rt.fibers[rt.nfibers++] = f;
}

static int resolve();

// What runs next: a fiber to start the next threads, else the next thread a completed barrier or warp
// collective released; null when the block is done or failed (back to the launch loop).
static Fiber* pick() {
    if (rt.failed) return nullptr;
    if (rt.next_start < rt.nthreads) {
        Fiber* f = take_fiber();
        if (!f) set_error("cannot allocate a fiber stack");
        return f;
    }
    if (rt.ready_pos == rt.ready_count) {
        if (rt.live == 0 || !(rt.ready_count = resolve())) return nullptr;
        rt.ready_pos = 0;
    }
    return rt.owner[rt.ready[rt.ready_pos++]];
}

// Switches from the running context straight to the next one: one switch per wait, not two via a scheduler.
static void dispatch(Ctx* from) {
    Fiber* next = pick();
    Ctx* to = next ? &next->ctx : &rt.sched;
    rt.current = next;
    if (to != from) ctx_switch(from, to);
}

static void fiber_main() {
    for (;;) {
        Fiber* me = rt.current;
        while (rt.next_start < rt.nthreads) {
            const int t = rt.next_start++;
            me->thread = t;
            rt.owner[t] = me;
            rt.state[t] = RUNNING;
            ::threadIdx = rt.tidx[t];
            rt.thunk(rt.closure);
            rt.state[t] = EXITED;
            --rt.live;
        }
        // Free again while still running: nothing takes a fiber before the next block, when it starts over.
        me->thread = -1;
        rt.free_fibers[rt.nfree++] = me;
        dispatch(&me->ctx);
    }
}

// After a failure the parked threads are abandoned: every fiber restarts from scratch.
static void reset_fibers() {
    rt.nfree = 0;
    for (int i = 0; i < rt.nfibers; ++i) {
        ctx_init(&rt.fibers[i]->ctx, rt.fibers[i]->stack, kStackBytes, fiber_main);
        rt.free_fibers[rt.nfree++] = rt.fibers[i];
    }
}

static void park(unsigned char state) {
    Fiber* me = rt.current;
    const int t = me->thread;
    rt.state[t] = state;
    dispatch(&me->ctx);
    ::threadIdx = rt.tidx[t];
}

// An error inside a kernel: recorded, and the thread never resumes; the launch then fails in Python.
[[noreturn]] static void fail(int line, const char* fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error("block (%u, %u, %u) thread (%u, %u, %u), line %d: %s", blockIdx.x, blockIdx.y, blockIdx.z,
              threadIdx.x, threadIdx.y, threadIdx.z, line, msg);
    park(FAILED);
    __builtin_unreachable();
}

static void describe(int t, char* out, size_t size) {
    const Wait& w = rt.wait[t];
    if (rt.state[t] == EXITED) std::snprintf(out, size, "exited");
    else if (rt.state[t] == AT_BARRIER) std::snprintf(out, size, "waiting at %s (line %d)", kOpNames[w.op], w.line);
    else std::snprintf(out, size, "waiting at %s with mask 0x%08x (line %d)", kOpNames[w.op], w.mask, w.line);
}

static void report_deadlock(const char* why) {
    set_error("deadlock in block (%u, %u, %u): %s", blockIdx.x, blockIdx.y, blockIdx.z, why);
    char cur[160], next[160];
    for (int t = 0, shown = 0; t < rt.nthreads; ++shown) {
        if (shown == 24) {
            set_error("\n  ...");
            break;
        }
        describe(t, cur, sizeof cur);
        int end = t + 1;
        for (; end < rt.nthreads; ++end) {
            describe(end, next, sizeof next);
            if (std::strcmp(cur, next)) break;
        }
        if (end - t == 1) set_error("\n  thread %d: %s", t, cur);
        else set_error("\n  threads %d-%d: %s", t, end - 1, cur);
        t = end;
    }
}

// PTX shfl.sync: the lane a shuffle reads, or the caller's own lane when the source is out of its segment.
static int shuffle_source(unsigned char op, int lane, int b, int width) {
    const int segmask = (32 - width) & 31, c = op == OP_SHFL_UP ? 0 : 31, bval = b & 31;
    const int max_lane = (lane & segmask) | (c & ~segmask), min_lane = lane & segmask;
    int j;
    bool ok;
    if (op == OP_SHFL_UP) { j = lane - bval; ok = j >= max_lane; }
    else if (op == OP_SHFL_DOWN) { j = lane + bval; ok = j <= max_lane; }
    else if (op == OP_SHFL_XOR) { j = lane ^ bval; ok = j <= max_lane; }
    else { j = min_lane | (bval & ~segmask); ok = j <= max_lane; }
    return ok ? j : lane;
}

static bool complete_warp(int base, unsigned group) {
    const unsigned char op = rt.wait[base + __builtin_ctz(group)].op;
    unsigned votes = 0;
    for (int l = 0; l < 32; ++l)
        if ((group >> l & 1) && rt.wait[base + l].value) votes |= 1u << l;
    for (int l = 0; l < 32; ++l) {
        if (!(group >> l & 1)) continue;
        Wait& w = rt.wait[base + l];
        if (op == OP_BALLOT) w.result = votes;
        else if (op == OP_ANY) w.result = votes != 0;
        else if (op == OP_ALL) w.result = votes == group;
        else if (op != OP_SYNCWARP) {
            const int j = shuffle_source(op, l, w.arg, w.width);
            if (!(group >> j & 1)) {
                const int t = base + l;
                set_error("block (%u, %u, %u) thread (%u, %u, %u), line %d: %s reads lane %d, which %s; the "
                          "value is undefined in CUDA", blockIdx.x, blockIdx.y, blockIdx.z, rt.tidx[t].x,
                          rt.tidx[t].y, rt.tidx[t].z, w.line, kOpNames[op], j,
                          base + j >= rt.nthreads || rt.state[base + j] == EXITED ? "has exited or does not exist"
                                                                                 : "is not in the mask");
                return false;
            }
            w.result = rt.wait[base + j].value;
        }
    }
    return true;
}

// Called when no thread can run: fills rt.ready (ascending) with the threads to resume; 0 means failure.
static int resolve() {
    const int n = rt.nthreads;
    int k = 0, mismatch_a = -1, mismatch_b = -1;
    for (int base = 0; base < n; base += 32) {
        const int lanes = n - base < 32 ? n - base : 32;
        unsigned live = 0, waiting = 0, done = 0;
        for (int l = 0; l < lanes; ++l) {
            if (rt.state[base + l] != EXITED) live |= 1u << l;
            if (rt.state[base + l] == AT_WARP) waiting |= 1u << l;
        }
        for (int l = 0; l < lanes; ++l) {
            if (!(waiting >> l & 1) || (done >> l & 1)) continue;
            const Wait& a = rt.wait[base + l];
            const unsigned group = a.mask & live;
            if ((group & waiting) != group) continue;  // a lane of the mask is still elsewhere
            bool same = true;
            for (int m = 0; m < lanes; ++m) {
                const Wait& b = rt.wait[base + m];
                if ((group >> m & 1) && (b.op != a.op || b.mask != a.mask)) {
                    same = false;
                    mismatch_a = base + l, mismatch_b = base + m;
                }
            }
            if (!same) continue;
            if (!complete_warp(base, group)) return 0;
            done |= group;
        }
        for (int l = 0; l < lanes; ++l)
            if (done >> l & 1) rt.ready[k++] = base + l;
    }
    if (k) return k;
    int first = -1;
    for (int t = 0; t < n && first != -2; ++t) {
        if (rt.state[t] == EXITED) continue;
        if (rt.state[t] != AT_BARRIER) first = -2;
        else if (first < 0) first = t;
        else if (rt.wait[t].op != rt.wait[first].op || rt.wait[t].line != rt.wait[first].line) {
            report_deadlock("threads wait at different barriers, which CUDA leaves undefined (it may hang)");
            return 0;
        }
    }
    if (first >= 0) {
        const unsigned char op = rt.wait[first].op;
        int count = 0, live = 0;
        for (int t = 0; t < n; ++t)
            if (rt.state[t] != EXITED) ++live, count += rt.wait[t].value != 0;
        const unsigned long long result = op == OP_SYNCTHREADS_AND ? count == live
                                          : op == OP_SYNCTHREADS_OR ? count != 0 : count;
        for (int t = 0; t < n; ++t)
            if (rt.state[t] != EXITED) rt.wait[t].result = result, rt.ready[k++] = t;
        return k;
    }
    if (mismatch_a >= 0) {
        char a[160], b[160];
        describe(mismatch_a, a, sizeof a);
        describe(mismatch_b, b, sizeof b);
        set_error("block (%u, %u, %u): mismatched warp collectives (undefined in CUDA): thread %d %s, while "
                  "thread %d %s", blockIdx.x, blockIdx.y, blockIdx.z, mismatch_a, a, mismatch_b, b);
    } else {
        report_deadlock("no waiting thread can ever continue (a barrier needs every live thread of the block, "
                        "a warp collective every live lane of its mask)");
    }
    return 0;
}

static bool run_block() {
    rt.next_start = rt.ready_pos = rt.ready_count = 0;
    rt.live = rt.nthreads;
    std::memset(rt.state, NOT_STARTED, rt.nthreads);
    dispatch(&rt.sched);  // back here once the block has finished or failed
    return !rt.failed;
}

// poison: (address, size) pairs of the static shared memory to fill with 0xff at each block's start.
static int launch_impl(const unsigned* g, const unsigned* b, unsigned long long shmem, void (*thunk)(void*),
                       void* closure, const unsigned long long* poison, int npoison) {
    std::lock_guard<std::mutex> lock(rt.mutex);
    rt.error[0] = 0;
    rt.failed = false;
    const unsigned long long n = 1ull * b[0] * b[1] * b[2];
    if (!n || n > kMaxThreads || !g[0] || !g[1] || !g[2] || shmem > kMaxDynamicShared)
        return set_error("invalid launch configuration"), 1;
    gridDim = dim3(g[0], g[1], g[2]);
    blockDim = dim3(b[0], b[1], b[2]);
    rt.nthreads = static_cast<int>(n);
    for (int t = 0; t < rt.nthreads; ++t)
        rt.tidx[t] = uint3{t % b[0], t / b[0] % b[1], t / (b[0] * b[1])};
    rt.thunk = thunk;
    rt.closure = closure;
    for (unsigned z = 0; z < g[2]; ++z)
        for (unsigned y = 0; y < g[1]; ++y)
            for (unsigned x = 0; x < g[0]; ++x) {
                blockIdx = uint3{x, y, z};
                std::memset(dynamic_shared, 0xff, shmem);  // shared memory starts undefined in every block
                for (int i = 0; i < npoison; ++i)
                    std::memset(reinterpret_cast<void*>(poison[2 * i]), 0xff, poison[2 * i + 1]);
                if (!run_block()) {
                    reset_fibers();
                    return 1;
                }
            }
    return 0;
}

template <class F> void call(void* f) { (*static_cast<F*>(f))(); }

// The launcher the generated wrapper instantiates: unpacks each argument from its bytes into a value of the
// kernel's own parameter type (so the compiler, not the parser, decides every type), then runs the grid.
template <class F> struct Launcher;
template <class... P> struct Launcher<void (*)(P...)> {
    template <void (*K)(P...), size_t... I>
    static int run(std::index_sequence<I...>, const unsigned* g, const unsigned* b, unsigned long long s,
                   void** args, const unsigned long long* poison, int npoison) {
        std::tuple<P...> v;
        int unpack[] = {0, (std::memcpy(&std::get<I>(v), args[I], sizeof(P)), 0)...};
        (void)unpack;
        (void)args;
        auto body = [&v] { K(std::get<I>(v)...); };
        return launch_impl(g, b, s, &call<decltype(body)>, &body, poison, npoison);
    }
};
// For the wrapper's static_asserts: the parser's idea of each parameter against the compiler's.
template <class T> constexpr char kind_of() {
    return std::is_pointer<T>::value ? 'p' : std::is_same<T, bool>::value ? 'b'
           : std::is_floating_point<T>::value ? 'f' : std::is_signed<T>::value ? 'i'
           : std::is_unsigned<T>::value ? 'u' : '?';
}
template <class F, size_t I> struct param;
template <class... P, size_t I> struct param<void (*)(P...), I> {
    using type = typename std::tuple_element<I, std::tuple<P...>>::type;
    static constexpr char kind = kind_of<type>();
    static constexpr size_t size = sizeof(type);
};
template <class F> struct arity;
template <class... P> struct arity<void (*)(P...)> { static constexpr size_t value = sizeof...(P); };
template <class F, F K> int launch(const unsigned* g, const unsigned* b, unsigned long long s, void** args,
                                   const unsigned long long* poison, int npoison) {
    return Launcher<F>::template run<K>(std::make_index_sequence<arity<F>::value>{}, g, b, s, args, poison,
                                        npoison);
}

// ---- device-side API ----------------------------------------------------------------------------------
static inline int barrier(unsigned char op, int pred, int line) {
    Wait& w = rt.wait[rt.current->thread];
    w.op = op, w.line = line, w.value = pred != 0;
    park(AT_BARRIER);
    return static_cast<int>(w.result);
}

static inline Wait& warp_op(unsigned char op, unsigned mask, int line) {
    const int t = rt.current->thread;
    if (!(mask >> (t & 31) & 1))
        fail(line, "%s with mask 0x%08x, which does not name the calling lane %d", kOpNames[op], mask, t & 31);
    Wait& w = rt.wait[t];
    w.op = op, w.mask = mask, w.line = line, w.value = 0;
    return w;
}

template <class T> T shuffle(unsigned char op, unsigned mask, T var, int arg, int width, int line) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    Wait& w = warp_op(op, mask, line);
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail(line, "%s with width %d; it must be a power of 2 from 1 to 32", kOpNames[op], width);
    w.arg = arg, w.width = width;
    std::memcpy(&w.value, &var, sizeof(T));
    park(AT_WARP);
    T out;
    std::memcpy(&out, &w.result, sizeof(T));
    return out;
}

static inline unsigned vote(unsigned char op, unsigned mask, int pred, int line) {
    Wait& w = warp_op(op, mask, line);
    w.value = pred != 0;
    park(AT_WARP);
    return static_cast<unsigned>(w.result);
}

template <class T, class F> static inline T rmw(T* address, F f) {
    const T old = *address;
    *address = f(old);
    return old;
}
}  // namespace cuda_on_cpu

// Barriers and warp collectives take the call's line (for messages and matching) as a hidden default argument.
static inline void __syncthreads(int line = __builtin_LINE()) {
    ::cuda_on_cpu::barrier(::cuda_on_cpu::OP_SYNCTHREADS, 0, line);
}
static inline int __syncthreads_count(int p, int line = __builtin_LINE()) {
    return ::cuda_on_cpu::barrier(::cuda_on_cpu::OP_SYNCTHREADS_COUNT, p, line);
}
static inline int __syncthreads_and(int p, int line = __builtin_LINE()) {
    return ::cuda_on_cpu::barrier(::cuda_on_cpu::OP_SYNCTHREADS_AND, p, line);
}
static inline int __syncthreads_or(int p, int line = __builtin_LINE()) {
    return ::cuda_on_cpu::barrier(::cuda_on_cpu::OP_SYNCTHREADS_OR, p, line);
}
static inline void __syncwarp(unsigned mask = 0xffffffffu, int line = __builtin_LINE()) {
    ::cuda_on_cpu::vote(::cuda_on_cpu::OP_SYNCWARP, mask, 0, line);
}
static inline unsigned __ballot_sync(unsigned mask, int p, int line = __builtin_LINE()) {
    return ::cuda_on_cpu::vote(::cuda_on_cpu::OP_BALLOT, mask, p, line);
}
static inline int __any_sync(unsigned mask, int p, int line = __builtin_LINE()) {
    return static_cast<int>(::cuda_on_cpu::vote(::cuda_on_cpu::OP_ANY, mask, p, line));
}
static inline int __all_sync(unsigned mask, int p, int line = __builtin_LINE()) {
    return static_cast<int>(::cuda_on_cpu::vote(::cuda_on_cpu::OP_ALL, mask, p, line));
}
// Not a real convergence mask (there is no SIMT here): the lanes of the warp that have not exited.
static inline unsigned __activemask() {
    using namespace ::cuda_on_cpu;
    const int base = rt.current->thread & ~31;
    unsigned m = 0;
    for (int l = 0; l < 32 && base + l < rt.nthreads; ++l) m |= (rt.state[base + l] != EXITED) << l;
    return m;
}
#define COC_SHUFFLES(T)                                                                                     \
    static inline T __shfl_sync(unsigned m, T v, int src, int w = 32, int line = __builtin_LINE()) {         \
        return ::cuda_on_cpu::shuffle(::cuda_on_cpu::OP_SHFL, m, v, src, w, line);                           \
    }                                                                                                      \
    static inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32, int line = __builtin_LINE()) {   \
        return ::cuda_on_cpu::shuffle(::cuda_on_cpu::OP_SHFL_UP, m, v, static_cast<int>(d), w, line);       \
    }                                                                                                      \
    static inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32, int line = __builtin_LINE()) { \
        return ::cuda_on_cpu::shuffle(::cuda_on_cpu::OP_SHFL_DOWN, m, v, static_cast<int>(d), w, line);     \
    }                                                                                                      \
    static inline T __shfl_xor_sync(unsigned m, T v, int x, int w = 32, int line = __builtin_LINE()) {       \
        return ::cuda_on_cpu::shuffle(::cuda_on_cpu::OP_SHFL_XOR, m, v, x, w, line);                         \
    }
COC_SHUFFLES(int)
COC_SHUFFLES(unsigned int)
COC_SHUFFLES(long)
COC_SHUFFLES(unsigned long)
COC_SHUFFLES(long long)
COC_SHUFFLES(unsigned long long)
COC_SHUFFLES(float)
COC_SHUFFLES(double)

static inline void __threadfence() {}
static inline void __threadfence_block() {}
static inline void __threadfence_system() {}
static inline void __nanosleep(unsigned) {}
[[noreturn]] static inline void __trap(int line = __builtin_LINE()) { ::cuda_on_cpu::fail(line, "__trap()"); }
#undef assert
#define assert(e) ((e) ? (void)0 : ::cuda_on_cpu::fail(__LINE__, "assertion failed: %s", #e))
template <class T> static inline T __ldg(const T* p) { return *p; }

// Atomics: see the header comment for why plain read-modify-writes are atomic here.
#define COC_ATOMIC(NAME, T, EXPR) \
    static inline T NAME(T* a, T v) {                                                                 \
        return ::cuda_on_cpu::rmw(a, [v](T o) { (void)o; return static_cast<T>(EXPR); });           \
    }
COC_ATOMIC(atomicAdd, int, static_cast<unsigned>(o) + static_cast<unsigned>(v))  // wraps, as on the GPU
COC_ATOMIC(atomicAdd, unsigned int, o + v)
COC_ATOMIC(atomicAdd, unsigned long long, o + v)
COC_ATOMIC(atomicAdd, float, o + v)
COC_ATOMIC(atomicAdd, double, o + v)
COC_ATOMIC(atomicSub, int, static_cast<unsigned>(o) - static_cast<unsigned>(v))
COC_ATOMIC(atomicSub, unsigned int, o - v)
#define COC_ATOMIC_INT(T)                   \
    COC_ATOMIC(atomicExch, T, v)            \
    COC_ATOMIC(atomicMax, T, o > v ? o : v) \
    COC_ATOMIC(atomicMin, T, o < v ? o : v) \
    COC_ATOMIC(atomicAnd, T, o & v)         \
    COC_ATOMIC(atomicOr, T, o | v)          \
    COC_ATOMIC(atomicXor, T, o ^ v)         \
    static inline T atomicCAS(T* a, T cmp, T v) { return ::cuda_on_cpu::rmw(a, [=](T o) { return o == cmp ? v : o; }); }
COC_ATOMIC_INT(int)
COC_ATOMIC_INT(unsigned int)
COC_ATOMIC_INT(unsigned long long)
COC_ATOMIC(atomicMax, long long, o > v ? o : v)
COC_ATOMIC(atomicMin, long long, o < v ? o : v)
COC_ATOMIC(atomicExch, float, v)
COC_ATOMIC(atomicInc, unsigned int, o >= v ? 0u : o + 1)
COC_ATOMIC(atomicDec, unsigned int, (o == 0 || o > v) ? v : o - 1)

// Device math. <math.h> already gives the float overloads of exp, log, tanh, ... (so exp(float) computes in
// float, as on the GPU) and the f-suffixed forms; the fast intrinsics are the accurate functions here.
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float rsqrt(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : x > 0.0f ? x : 0.0f; }
static inline float fdividef(float a, float b) { return a / b; }
// Macros: glibc's <math.h> declares __expf, __logf, ... itself, as aliases of expf, logf, ...
#define __expf(x) (::expf(x))
#define __logf(x) (::logf(x))
#define __log2f(x) (::log2f(x))
#define __log10f(x) (::log10f(x))
#define __powf(x, y) (::powf((x), (y)))
#define __sinf(x) (::sinf(x))
#define __cosf(x) (::cosf(x))
#define __tanf(x) (::tanf(x))
#define __exp10f(x) (::exp10f(x))
#define __fdividef(a, b) (static_cast<float>(a) / static_cast<float>(b))
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
#define COC_MINMAX(R, A, B)                                  \
    static inline R max(A a, B b) { return static_cast<R>(a) > static_cast<R>(b) ? a : b; } \
    static inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? a : b; }
COC_MINMAX(int, int, int)
COC_MINMAX(unsigned int, unsigned int, unsigned int)
COC_MINMAX(unsigned int, int, unsigned int)
COC_MINMAX(unsigned int, unsigned int, int)
COC_MINMAX(long, long, long)
COC_MINMAX(unsigned long, unsigned long, unsigned long)
COC_MINMAX(long long, long long, long long)
COC_MINMAX(unsigned long long, unsigned long long, unsigned long long)
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline float min(float a, float b) { return fminf(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }

template <class T, class U> static inline T coc_bits(U u) {
    static_assert(sizeof(T) == sizeof(U), "same width");
    T t;
    std::memcpy(&t, &u, sizeof t);
    return t;
}
static inline int __float_as_int(float x) { return coc_bits<int>(x); }
static inline unsigned int __float_as_uint(float x) { return coc_bits<unsigned int>(x); }
static inline float __int_as_float(int x) { return coc_bits<float>(x); }
static inline float __uint_as_float(unsigned int x) { return coc_bits<float>(x); }
static inline long long __double_as_longlong(double x) { return coc_bits<long long>(x); }
static inline double __longlong_as_double(long long x) { return coc_bits<double>(x); }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz(static_cast<unsigned>(x)) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll(static_cast<unsigned long long>(x)) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

#define CUDA_ON_CPU_EXPORT extern "C" __attribute__((visibility("default")))
CUDA_ON_CPU_EXPORT const char* cuda_on_cpu_error() { return ::cuda_on_cpu::rt.error; }

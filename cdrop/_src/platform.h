/*
 * platform.h -- what the compiler and the CPU offer: the OpenMP shim, whether the x86 SIMD
 * paths are compiled in, and the run-time CPU feature checks.  Pure C, no Python.
 */
#ifndef CDROP_PLATFORM_H
#define CDROP_PLATFORM_H

#include <stdint.h>

/* GCC's and Clang's extensions behind names, so that a compiler without them (MSVC) still
 * builds the scalar path: forced and forbidden inlining, a prefetch hint, count trailing zeros
 * (x != 0), and a square root that is the IEEE operation without libm's errno. */
#if defined(__GNUC__) || defined(__clang__)
#define CDROP_ALWAYS_INLINE inline __attribute__((always_inline))
#define CDROP_NOINLINE __attribute__((noinline))
#define CDROP_PREFETCH(p, rw) __builtin_prefetch((p), (rw))
#define CDROP_SQRTF(x) __builtin_sqrtf(x)
static inline int cdrop_ctz64(uint64_t x) { return __builtin_ctzll(x); }
#else
#include <math.h>
#if defined(_MSC_VER)
#define CDROP_ALWAYS_INLINE __forceinline
#define CDROP_NOINLINE __declspec(noinline)
#else
#define CDROP_ALWAYS_INLINE inline
#define CDROP_NOINLINE
#endif
#define CDROP_PREFETCH(p, rw) ((void)(p))
#define CDROP_SQRTF(x) sqrtf(x)
static inline int cdrop_ctz64(uint64_t x)
{
    int n = 0;
    while (!(x & 1u)) {
        x >>= 1;
        n++;
    }
    return n;
}
#endif

/* A software prefetch `ahead` bytes past p (0: none; a constant at every call, so the test
 * folds away).  The x86 paths call it before every float load and store of their consumers
 * (isa_avx2.c and isa_avx512.c say why and what it measured).  A hint never faults: past the
 * end of an array is harmless, and the address is computed as an integer. */
static inline void cdrop_prefetch_ahead(const void *p, uintptr_t ahead)
{
    if (ahead)
        CDROP_PREFETCH((const void *)((uintptr_t)p + ahead), 0);
}

#ifdef _OPENMP
#include <omp.h>
#define CDROP_HAVE_OPENMP 1
#else
#define CDROP_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
#endif

/* The AVX2 and AVX-512 translation units (isa_avx2.c, isa_avx512.c) need GCC or Clang on x86:
 * they are compiled for the baseline ISA with a target pragma, and run only where the CPU has
 * the instructions.  Elsewhere they compile to nothing and the portable path runs (or the scalar
 * one, below). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CDROP_HAVE_X86_SIMD 1
#include <cpuid.h> /* __get_cpuid, for F16C (cdrop_cpu_has_avx2) */
#else
#define CDROP_HAVE_X86_SIMD 0
#endif

/* The portable SIMD path (isa_portable.c) is written with GCC's and Clang's vector extensions
 * (vector_size types, __builtin_shufflevector: GCC 12 or later) and reads a step's bytes from its
 * 32-bit lanes in memory order, which is the stream's byte order on little-endian hosts only.
 * Elsewhere (MSVC, older GCC, big-endian) it compiles to nothing and "portable" runs the scalar
 * path (isa_scalar.c). */
#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)) && defined(__BYTE_ORDER__) &&    \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CDROP_HAVE_VECTOR_EXT 1
#else
#define CDROP_HAVE_VECTOR_EXT 0
#endif

/* Compile the functions that follow for a target instruction set (GCC's and Clang's spellings),
 * up to CDROP_TARGET_POP(): the whole of isa_avx2.c and isa_avx512.c. */
#define CDROP_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define CDROP_TARGET_PUSH(t)                                                                       \
    CDROP_PRAGMA(clang attribute push(__attribute__((target(t))), apply_to = function))
#define CDROP_TARGET_POP() CDROP_PRAGMA(clang attribute pop)
#else
#define CDROP_TARGET_PUSH(t) CDROP_PRAGMA(GCC push_options) CDROP_PRAGMA(GCC target(t))
#define CDROP_TARGET_POP() CDROP_PRAGMA(GCC pop_options)
#endif

/* Kernel paths, as reported by cdrop.show_config()["simd"], in order: a path the CPU or the
 * compiler lacks falls back to the next one down (kernels.c). */
#define CDROP_PATH_SCALAR 0
#define CDROP_PATH_PORTABLE 1
#define CDROP_PATH_AVX2 2
#define CDROP_PATH_AVX512 3

static inline int cdrop_have_openmp(void) { return CDROP_HAVE_OPENMP; }

/* AVX2 and F16C (float16 conversions; every AVX2 CPU has them), with OS support for the YMM
 * state (libgcc's and compiler-rt's checks read XGETBV; F16C uses the same state).  F16C is
 * read from CPUID leaf 1 (ECX bit 29), not with __builtin_cpu_supports("f16c"), which clang 14
 * (Debian 12's, Xcode 14's) rejects as an invalid feature string: cdrop did not build there. */
static inline int cdrop_cpu_has_avx2(void)
{
#if CDROP_HAVE_X86_SIMD
    unsigned int eax, ebx, ecx = 0, edx;
    __builtin_cpu_init();
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    return (__builtin_cpu_supports("avx2") && (ecx & (1u << 29))) ? 1 : 0;
#else
    return 0;
#endif
}

/* AVX-512F and AVX-512BW, with OS support for the ZMM and mask state. */
static inline int cdrop_cpu_has_avx512(void)
{
#if CDROP_HAVE_X86_SIMD
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) ? 1 : 0;
#else
    return 0;
#endif
}

#endif /* CDROP_PLATFORM_H */

/*
 * normal.h -- cdrop's counter-based standard normals (docs/rng.md, section "Normal numbers").
 * Pure C99: no Python.h, no globals, no libm.  tests/reference.py (`normals`) is the NumPy twin
 * and must agree bit for bit; producer_normal.inc.h feeds the words, per instruction set.
 *
 * Design.  Element g takes the 32-bit word of section 4's lanes seeded with
 * cdrop_normal_key(key) for block g >> 12; the words of lanes 2m and 2m+1 of one step make a
 * pair, turned into two normals by Box-Muller:
 *
 *     u = (a + 1/2) 2^-32,  r = sqrt(-2 ln u),  theta = 2 pi (b + 1/2) 2^-32,
 *     z0 = r cos theta,  z1 = r sin theta.
 *
 * Box-Muller rather than a ziggurat or an inverse CDF: it has no rejection and no table, so it
 * is one straight-line loop that GCC vectorises for every instruction set, with exactly two
 * words per two normals (the stream position of every normal is fixed, as it must be for a
 * counter-based stream).  Its cost is one division (the log), one square root and three
 * polynomials per pair.
 *
 * Bits.  Only IEEE binary32 + - * /, sqrt (all correctly rounded), int32 -> float conversions
 * (exact or round-to-nearest-even) and integer operations are used, in a fixed order, so every
 * instruction set and the NumPy reference give the same bits.  This relies on the build's
 * -ffp-contract=off: a fused multiply-add rounds once where this code rounds twice and would
 * change the last bit on the paths that have FMA (AVX2 and AVX-512 here), so it must never be
 * contracted.  It also assumes round-to-nearest, the default environment Python runs in.
 * Flush-to-zero and denormals-are-zero do not change the bits: the only subnormals are w and t1
 * in the log when u is within about 2^-30 of 1, and they are far below the last bit of t2.
 *
 * Speed.  GCC vectorises the loop only with -fno-math-errno: otherwise sqrtf keeps a call to
 * libm (to set errno for a negative argument, which cannot happen here) and the loop stays
 * scalar, 4x slower; the bits are the same either way.  Measured (bench/normal_transform.py,
 * words in L1): about 1.8, 1.0 and 0.7 ns per normal for the baseline, AVX2 and AVX-512 on a
 * 2-core Xeon VM, where np.multiply(x, c, out=x) on 4M float32 takes 0.18 ns per element.  The
 * radius (conversions, log, sqrt) is about half of it, the angle a quarter.
 *
 * Accuracy (tests/test_normal_statistics.py measures it against float64 Box-Muller on the same
 * words, the extreme words included): a few float32 ulps of r cos theta, relative, everywhere:
 * the log is fdlibm's logf (< 1 ulp), sin and cos come from an exact octant reduction of the
 * angle word and polynomials with relative error < 4e-9 (0.07 ulp).  Range: |z| <= r(a = 0) =
 * sqrt(66 ln 2) = 6.7637 (the smallest u is 2^-33); the smallest r is sqrt(2^-32) = 2^-16 (a =
 * 2^32 - 1), so there is no atom at 0.
 */
#ifndef CDROP_NORMAL_H
#define CDROP_NORMAL_H

#include <stdint.h>
#include <string.h>

#include "cdrop_rng.h"
#include "platform.h" /* CDROP_ALWAYS_INLINE, CDROP_SQRTF, cdrop_ctz64 */

/* 2^12 elements per normal block: 256 steps of the 16 lanes with one 32-bit word per element
 * (a mask block uses a byte per element, hence 2^14).  Part of the stream contract. */
#define CDROP_NORMAL_BLOCK_BITS 12

/* Domain separation of the normal stream from the mask stream of the same seed: the second
 * 64-bit word of SHA-512's initial hash value (section 5 uses the first). */
#define CDROP_NORMAL_DOMAIN UINT64_C(0xBB67AE8584CAA73B)

static inline uint64_t cdrop_normal_key(uint64_t key)
{
    return cdrop_hash64(key ^ CDROP_NORMAL_DOMAIN);
}

static inline float cdrop_nrm_f32(uint32_t i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline uint32_t cdrop_nrm_u32(float f)
{
    uint32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* mask ? x : y for mask 0 or ~0, on the bits: a branch-free select that every compiler keeps
 * in the vector loop (GCC 12 gave up on the loop over float `?:`: "control flow in loop"). */
static inline float cdrop_nrm_sel(uint32_t mask, float x, float y)
{
    return cdrop_nrm_f32((cdrop_nrm_u32(x) & mask) | (cdrop_nrm_u32(y) & ~mask));
}

/* round_to_float32(2w + 1) for a 32-bit w, through SIGNED int32 conversions only (SSE2 and AVX2
 * have no unsigned one): both halves are exact as floats (hi * 2^17 has 16 significant bits),
 * so their sum is the exact 2w + 1 rounded once, to nearest even. */
static inline float cdrop_nrm_odd(uint32_t w)
{
    const float hi = (float)(int32_t)(w >> 16);
    const float lo = (float)(int32_t)(((w & 0xFFFFu) << 1) | 1u);
    return hi * 0x1p17f + lo;
}

/* -2 ln u with u = (a + 1/2) 2^-32 in (0, 1).
 * fdlibm's logf (FreeBSD e_logf.c: reduction to m in [sqrt(1/2), sqrt(2)), s = f / (2 + f),
 * degree-8 polynomial in s, ln 2 split in a 16-bit head and a tail; error < 1 ulp), both of its
 * branches folded into one (with k = 0 the k terms add exact zeros).  Near u = 1 (k == 0) the
 * float u has lost the low bits of a, so f = u - 1 is replaced by -v, v = 1 - u =
 * (~a + 1/2) 2^-32 rounded once: ln u is then as accurate as for small u, and the smallest
 * radius is 2^-16 instead of 0. */
static inline float cdrop_nrm_r2(uint32_t a)
{
    const float u = cdrop_nrm_odd(a) * 0x1p-33f; /* exact scaling: u in [2^-33, 1] */
    /* v = 1 - u, used only where k == 0, i.e. u >= 0x1.6a09e6p-1 and a > 2^31, so that ~a <
     * 2^31 converts as a signed int32: one rounding to float32, exact for ~a < 2^24 (u within
     * 2^-8 of 1, where it matters), then + 2^-33 rounded once more (a few ulps only when
     * ~a >= 2^24, where f is far from 0).  Elsewhere v is not used (and may be negative). */
    const float v = (float)(int32_t)~a * 0x1p-32f + 0x1p-33f;
    uint32_t ix = cdrop_nrm_u32(u) + (0x3f800000u - 0x3f3504f3u);
    const int32_t k = (int32_t)(ix >> 23) - 127; /* u is normal and positive */
    ix = (ix & 0x007fffffu) + 0x3f3504f3u;
    const uint32_t k0 = 0u - (uint32_t)(k == 0);
    const float f = cdrop_nrm_sel(k0, -v, cdrop_nrm_f32(ix) - 1.0f); /* m - 1: exact (Sterbenz) */
    const float s = f / (2.0f + f);
    const float dk = (float)k;
    const float z = s * s;
    const float w = z * z;
    const float t1 = w * (0x1.999c26p-2f + w * 0x1.f13c4cp-3f);
    const float t2 = z * (0x1.555554p-1f + w * 0x1.23d3dcp-2f);
    const float R = t2 + t1;
    const float hfsq = 0.5f * f * f;
    /* ln 2 = 0x1.62e3p-1 (17 significant bits: dk * head is exact for |k| < 128) + tail. */
    const float ln = dk * 0x1.62e3p-1f - ((hfsq - (s * (hfsq + R) + dk * 0x1.2fefa2p-17f)) - f);
    return -2.0f * ln;
}

/* Two normals from the words a (radius) and b (angle): see the design note above.
 * The angle: octant o = b >> 29 (exact), psi in (0, pi/4) from the other 29 bits, mirrored in
 * odd octants (t -> 2^29 - 1 - t, exact) so that theta = o pi/4 + psi or (o + 1) pi/4 - psi
 * exactly: psi = pi (2t + 1) 2^-32.  sin psi = psi + psi^3 P(psi^2), cos psi = 1 + psi^2 Q(psi^2):
 * near-minimax (Lawson) fits on [0, pi/4] of relative error 3.9e-9 and 6.5e-11, coefficients
 * rounded to float32.  Then (cos theta, sin theta) is (c, s), swapped in octants 1, 2, 5, 6,
 * with the sign of cos flipped in octants 2..5 and of sin in 4..7 (sign-bit XOR, exact). */
static inline void cdrop_nrm_pair(uint32_t a, uint32_t b, float *z0, float *z1)
{
    const float r = CDROP_SQRTF(cdrop_nrm_r2(a));
    const uint32_t o = b >> 29;
    const uint32_t t = (b & 0x1FFFFFFFu) ^ ((0u - (o & 1u)) & 0x1FFFFFFFu);
    /* 2t + 1 < 2^30: one signed conversion, rounded to nearest even; pi rounded to float32
     * (0x1.921fb6p+1, 2.8e-8 relative), times 2^-32 exactly. */
    const float psi = (float)(int32_t)(2u * t + 1u) * 0x1.921fb6p-31f;
    const float p2 = psi * psi;
    const float sn =
        psi + psi * p2 * (-0x1.555546p-3f + p2 * (0x1.11073ep-7f + p2 * -0x1.994522p-13f));
    const float cs =
        1.0f +
        p2 * (-0x1p-1f + p2 * (0x1.55553cp-5f + p2 * (-0x1.6c07f6p-10f + p2 * 0x1.99177ap-16f)));
    const uint32_t swap = 0u - (((o + 1u) >> 1) & 1u);
    const uint32_t cneg = (((o + 2u) >> 2) & 1u) << 31;
    const uint32_t sneg = (o >> 2) << 31;
    const float c = cdrop_nrm_sel(swap, sn, cs);
    const float s = cdrop_nrm_sel(swap, cs, sn);
    *z0 = r * cdrop_nrm_f32(cdrop_nrm_u32(c) ^ cneg);
    *z1 = r * cdrop_nrm_f32(cdrop_nrm_u32(s) ^ sneg);
}

/* n (even, >= 0) normals z[0..n) from n words w[0..n): z[2m], z[2m+1] from w[2m], w[2m+1].
 * A plain loop with no calls and no branches: GCC -O3 vectorises it for SSE2, AVX2 and
 * AVX-512 (checked with -fopt-info-vec), and every path gives the same bits. */
static inline void cdrop_normals_from_words(const uint32_t *w, float *z, int64_t n)
{
    for (int64_t m = 0; m < n / 2; m++)
        cdrop_nrm_pair(w[2 * m], w[2 * m + 1], &z[2 * m], &z[2 * m + 1]);
}

#endif /* CDROP_NORMAL_H */

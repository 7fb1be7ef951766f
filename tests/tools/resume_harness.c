/*
 * resume_harness.c -- the resumable keep-bytes producer (walk.inc.h's cursor), bits_t and
 * bits_run of every instruction set against the plain U8 kernel and naive loops: random segment
 * splits (1-3 elements, step and block edges, long runs), both ways of addressing a segment
 * (local [lo, hi) or g0 moved on), fresh cursors, backward jumps and forward gaps, offsets at
 * the stream's end; bit transposes of any C, rows, c0, nc; runs of 0..699 elements.
 *   gcc -O2 -std=gnu11 -ffp-contract=off -fno-math-errno -fno-strict-aliasing \
 *       -fsanitize=address,undefined -Icdrop/_src cdrop/_src/*.c tests/tools/resume_harness.c \
 *       -o /tmp/rh -lm && /tmp/rh 20000 SEED
 */
#include "cdrop_rng.h"
#include "kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_ = 88172645463325252ull;
static uint64_t rnd(void)
{
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
}
static int64_t rn(int64_t n) { return (int64_t)(rnd() % (uint64_t)n); }

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000;
    s_ += argc > 2 ? (uint64_t)atol(argv[2]) : 0;
    const int paths[4] = {CDROP_PATH_AVX512, CDROP_PATH_AVX2, CDROP_PATH_PORTABLE,
                          CDROP_PATH_SCALAR};
    long fails = 0, cases = 0;
    uint8_t *ref = malloc(200000), *got = malloc(200000 + 64);
    uint8_t *lanes = aligned_alloc(64, 512);
    for (long it = 0; it < iters; it++) {
        cdrop_kernel_table t = cdrop_kernels_for(paths[it % 4]);
        cdrop_args a;
        memset(&a, 0, sizeof a);
        a.key = cdrop_key(rnd());
        const double ps[6] = {0.5, 0.1, 0.3, 5e-324, 1 - 1e-16, 0.123456789};
        a.thr = cdrop_threshold(ps[rn(6)]);
        int64_t n = 1 + rn(it % 3 == 0 ? 200 : it % 3 == 1 ? 5000 : 100000);
        uint64_t g0;
        switch (rn(4)) {
        case 0:
            g0 = UINT64_MAX - (uint64_t)n + 1 - (uint64_t)rn(3);
            break;
        case 1:
            g0 = (uint64_t)rn(8) * 16384 - (uint64_t)rn(130);
            break;
        case 2:
            g0 = (uint64_t)rn(1000) * 64 + (uint64_t)rn(2);
            break;
        default:
            g0 = rnd();
        }
        if (g0 > UINT64_MAX - (uint64_t)n + 1)
            g0 = UINT64_MAX - (uint64_t)n + 1;
        a.g0 = g0;
        a.dst = ref;
        t.op[CDROP_OP_U8](&a, 0, n);
        /* style A: local [lo, hi) with one args; style B: g0 shifted, lo = 0 */
        const int style = (int)rn(2);
        memset(got, 0xAA, (size_t)n + 64);
        uint64_t next = CDROP_NO_STEP;
        int64_t lo = 0;
        while (lo < n) {
            int64_t m;
            switch (rn(5)) {
            case 0:
                m = 1 + rn(3);
                break;
            case 1:
                m = 64 - (int64_t)((g0 + (uint64_t)lo) % 64) + rn(2) - 1;
                break;
            case 2:
                m = 16384 - (int64_t)((g0 + (uint64_t)lo) % 16384) + rn(3) - 1;
                break;
            case 3:
                m = 1 + rn(200);
                break;
            default:
                m = 1 + rn(20000);
            }
            if (m < 1)
                m = 1;
            if (m > n - lo)
                m = n - lo;
            if (rn(10) == 0)
                next = CDROP_NO_STEP; /* a fresh cursor now and then */
            if (style == 0) {
                cdrop_args b = a;
                b.dst = got;
                t.resume(&b, lo, lo + m, lanes, &next);
            } else {
                cdrop_args b = a;
                b.dst = got + lo;
                b.g0 = g0 + (uint64_t)lo;
                t.resume(&b, 0, m, lanes, &next);
            }
            lo += m;
        }
        cases++;
        if (memcmp(ref, got, (size_t)n) || got[n] != 0xAA) {
            fails++;
            if (fails < 10)
                printf("RESUME FAIL path=%d n=%ld g0=%llu thr=%u style=%d\n", t.path, (long)n,
                       (unsigned long long)g0, a.thr, style);
        }
        /* backward and gap: a cursor from further ahead must not be used for an earlier g */
        if (n > 300) {
            memset(got, 0, (size_t)n);
            cdrop_args b = a;
            b.dst = got;
            next = CDROP_NO_STEP;
            int64_t x = n / 2 + rn(n / 2), y = rn(n / 2);
            t.resume(&b, x, n, lanes, &next);
            t.resume(&b, y, x, lanes, &next); /* backwards: must seek */
            t.resume(&b, 0, y, lanes, &next);
            if (memcmp(ref, got, (size_t)n)) {
                fails++;
                if (fails < 10)
                    printf("RESUME BACK FAIL path=%d n=%ld g0=%llu x=%ld y=%ld\n", t.path, (long)n,
                           (unsigned long long)g0, (long)x, (long)y);
            }
            memset(got, 0, (size_t)n);
            next = CDROP_NO_STEP;
            int64_t z = rn(n - 200);
            t.resume(&b, 0, z, lanes, &next);
            int64_t z2 = z + rn(150); /* skip a gap forward (may be the same block) */
            t.resume(&b, z2, n, lanes, &next);
            if (memcmp(ref, got, (size_t)z) || memcmp(ref + z2, got + z2, (size_t)(n - z2))) {
                fails++;
                if (fails < 10)
                    printf("RESUME GAP FAIL path=%d n=%ld g0=%llu z=%ld z2=%ld\n", t.path, (long)n,
                           (unsigned long long)g0, (long)z, (long)z2);
            }
        }
        /* bits_t against a naive transpose */
        {
            int64_t C = 1 + rn(it % 2 ? 700 : 70), rows = 1 + rn(300);
            int64_t nb = rows * C;
            size_t bytes = (size_t)((nb + 63) / 64 * 8 + 16);
            uint8_t *bits = malloc(bytes);
            for (size_t i = 0; i < bytes; i++)
                bits[i] = (uint8_t)rnd();
            /* the walk zeroes past nbits: the contract is 16 readable bytes; garbage there
             * must not show in the output */
            int64_t c0 = rn(C), nc = 1 + rn(C - c0);
            int64_t w = (rows + 63) / 64;
            uint64_t *tb = calloc((size_t)(nc * w + 1), 8);
            t.bits_t(bits, C, rows, c0, nc, tb);
            for (int64_t j = 0; j < nc; j++)
                for (int64_t r = 0; r < rows; r++) {
                    int64_t o = r * C + c0 + j;
                    int e = bits[o >> 3] >> (o & 7) & 1;
                    int g = (int)(tb[j * w + r / 64] >> (r % 64) & 1);
                    if (e != g) {
                        fails++;
                        if (fails < 10)
                            printf("BITS_T FAIL path=%d C=%ld rows=%ld c0=%ld nc=%ld j=%ld r=%ld\n",
                                   t.path, (long)C, (long)rows, (long)c0, (long)nc, (long)j,
                                   (long)r);
                        goto done;
                    }
                }
        done:
            free(tb);
            free(bits);
        }
        /* bits_run against a naive loop, f32 and f64, in place and out of place */
        {
            int64_t m = rn(700);
            uint64_t bw[12];
            for (int i = 0; i < 12; i++)
                bw[i] = rnd();
            double sc = 1.0 / (1.0 - ps[rn(3)]);
            float fs[800], fd[800], fe[800];
            double ds[800], dd[800], de[800];
            for (int64_t i = 0; i < 800; i++) {
                fs[i] = (float)((int64_t)rnd() % 1000) / 7.0f;
                ds[i] = (double)((int64_t)rnd() % 100000) / 7.0;
                fd[i] = -1;
                dd[i] = -1;
            }
            for (int64_t i = 0; i < m; i++) {
                float x = fs[i] * (float)sc;
                fe[i] = (bw[i >> 6] >> (i & 63) & 1) ? x : 0.0f;
                double y = ds[i] * sc;
                de[i] = (bw[i >> 6] >> (i & 63) & 1) ? y : 0.0;
            }
            t.bits_run[0]((const char *)fs, (char *)fd, bw, m, sc);
            t.bits_run[1]((const char *)ds, (char *)dd, bw, m, sc);
            if (memcmp(fd, fe, (size_t)m * 4) || memcmp(dd, de, (size_t)m * 8) || fd[m] != -1 ||
                dd[m] != -1) {
                fails++;
                if (fails < 10)
                    printf("BITS_RUN FAIL path=%d m=%ld\n", t.path, (long)m);
            }
        }
    }
    printf("cases=%ld fails=%ld\n", cases, fails);
    free(ref);
    free(got);
    free(lanes);
    return fails != 0;
}

/*
 * normal_harness.c -- cdrop/_src/normal.h outside the extension, for tests and measurements.
 *
 *   normal_harness transform < words.u32 > normals.f32   (native-endian uint32 in, float32 out)
 *   normal_harness bench NWORDS REPS                       (median ns per normal of 15 runs)
 *
 * tests/test_normal_statistics.py builds it for the baseline, -mavx2 and -mavx512f with
 * -O3 -ffp-contract=off -fno-math-errno and compares each build's bits with tests/reference.py;
 * bench/normal_transform.py times the three builds in interleaved rounds.
 */
#include "normal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int transform(void)
{
    enum { CHUNK = 1 << 16 };
    static uint32_t w[CHUNK];
    static float z[CHUNK];
    size_t got;
    while ((got = fread(w, sizeof w[0], CHUNK, stdin)) > 0) {
        if (got % 2)
            return 2;
        cdrop_normals_from_words(w, z, (int64_t)got);
        if (fwrite(z, sizeof z[0], got, stdout) != got)
            return 1;
    }
    return 0;
}

static int cmp_double(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int bench(int64_t n, int reps)
{
    uint32_t *w = malloc((size_t)n * sizeof *w);
    float *z = malloc((size_t)n * sizeof *z);
    if (!w || !z)
        return 1;
    uint64_t s = 1;
    for (int64_t i = 0; i < n; i++)
        w[i] = (uint32_t)cdrop_hash64(s++);
    double t[15];
    volatile float sink = 0;
    for (int r = 0; r < 15; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int k = 0; k < reps; k++) {
            cdrop_normals_from_words(w, z, n);
            sink += z[k % n];
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[r] = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
               ((double)n * reps);
    }
    qsort(t, 15, sizeof t[0], cmp_double);
    printf("%.4f\n", t[7]);
    free(w);
    free(z);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && argv[1][0] == 't')
        return transform();
    if (argc == 4 && argv[1][0] == 'b')
        return bench(atoll(argv[2]) & ~(int64_t)1, atoi(argv[3]));
    fprintf(stderr, "usage: %s transform | bench NWORDS REPS\n", argv[0]);
    return 2;
}

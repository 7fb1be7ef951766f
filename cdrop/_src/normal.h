/* normal.h -- PLACEHOLDER for plumbing only (wip-normal replaces this file). */
#ifndef CDROP_NORMAL_H
#define CDROP_NORMAL_H
#include "cdrop_rng.h"
#include <stdint.h>
#define CDROP_NORMAL_BLOCK_BITS 12
static inline uint64_t cdrop_normal_key(uint64_t key)
{
    return cdrop_hash64(key ^ UINT64_C(0xBB67AE8584CAA73B));
}
static inline void cdrop_normals_from_words(const uint32_t *w, float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = (float)(w[i] >> 8) * 0x1p-24f - 0.5f;
}
#endif

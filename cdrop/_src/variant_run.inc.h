/*
 * variant_run.inc.h -- the run function of one (operation, dtype), written once.  Included by
 * variant_runs.inc.h for every pair, with
 *   CDROP_VR_NAME             the function's name
 *   CDROP_VR_NORMAL           1: k points to float32 normals (GMUL, GADD), 0: to keep bytes
 *   CDROP_VR_ELEM(x, r, b, k) the result in the working type W from the inputs in W and the
 *                             keep byte (0/1) or normal; uses the constants C0, C1, C2, Z0
 *   CDROP_VR_DROPPED_CONST    1: a dropped element's value does not depend on the inputs
 * and the dtype's macros T (storage), W (working type), CDROP_VLOAD(const T *),
 * CDROP_VSTORE(T *, W), CDROP_VCOPY (1: T is W, so a store is a copy).
 *
 * Why chunks of 64 through a local array: y may be x or r (in place, or dropout_add into its
 * residual), so y cannot be declared restrict; with plain pointers GCC guards its vector loop
 * with an overlap test that fails exactly when y == x and then runs the scalar loop.  Computing
 * 64 results into a local array and storing them afterwards needs no such test.
 */
static void CDROP_VR_NAME(const cdrop_vconst *c, const cdrop_run_ptrs *p, int64_t n)
{
    const W C0 = (W)c->c0, C1 = (W)c->c1, C2 = (W)c->c2;
    const W Z0 = (W)0; /* the second operand of ops that read no residual or bias */
    (void)C1, (void)C2, (void)Z0;
#if CDROP_VR_NORMAL
    typedef float K;
    const int64_t ksz = sizeof(float);
#else
    typedef uint8_t K;
    const int64_t ksz = 1;
#endif
    const int64_t ts = (int64_t)sizeof(T);
    const int unit = p->sx == ts && p->sy == ts && p->sr == ts && p->sb == ts;
    if (unit && p->sk == ksz) { /* every operand along the run: the vectorised loop */
        const T *x = (const T *)p->x, *r = (const T *)p->r, *b = (const T *)p->b;
        const K *k = (const K *)p->k;
        (void)r, (void)b; /* operations without a residual or bias never read them */
        T *y = (T *)p->y;
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const int m = n - i0 < 64 ? (int)(n - i0) : 64;
            W v[64];
            for (int i = 0; i < m; i++)
                v[i] = CDROP_VR_ELEM(CDROP_VLOAD(x + i0 + i), CDROP_VLOAD(r + i0 + i),
                                     CDROP_VLOAD(b + i0 + i), k[i0 + i]);
            CDROP_VSTORE64(y + i0, v, m);
        }
        return;
    }
    if (unit && p->sk == 0) { /* one keep flag for the run: noise_shape with 1 on the last axes */
        const T *x = (const T *)p->x, *r = (const T *)p->r, *b = (const T *)p->b;
        (void)r, (void)b;
        K kc;
        memcpy(&kc, p->k, sizeof kc);
        T *y = (T *)p->y;
#if CDROP_VR_DROPPED_CONST
        if (!kc) { /* a dropped channel or sample: its value needs no input, so x is not read */
            T fill;
            CDROP_VSTORE(&fill, CDROP_VR_ELEM(Z0, Z0, Z0, kc));
            for (int64_t i = 0; i < n; i++)
                y[i] = fill;
            return;
        }
#endif
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const int m = n - i0 < 64 ? (int)(n - i0) : 64;
            W v[64];
            for (int i = 0; i < m; i++)
                v[i] = CDROP_VR_ELEM(CDROP_VLOAD(x + i0 + i), CDROP_VLOAD(r + i0 + i),
                                     CDROP_VLOAD(b + i0 + i), kc);
            CDROP_VSTORE64(y + i0, v, m);
        }
        return;
    }
    /* Everything else, element by element: strided operands, a bias broadcast along the run
     * (stride 0), keep flags of a noise shape that shares them along other axes. */
    for (int64_t i = 0; i < n; i++) {
        T xs, rs, bs;
        K ks;
        memcpy(&xs, p->x + i * p->sx, sizeof xs);
        memcpy(&rs, p->r + i * p->sr, sizeof rs);
        memcpy(&bs, p->b + i * p->sb, sizeof bs);
        memcpy(&ks, p->k + i * p->sk, sizeof ks);
        const W v = CDROP_VR_ELEM(CDROP_VLOAD(&xs), CDROP_VLOAD(&rs), CDROP_VLOAD(&bs), ks);
        T ys;
        CDROP_VSTORE(&ys, v);
        memcpy(p->y + i * p->sy, &ys, sizeof ys);
    }
}

#undef CDROP_VR_NAME
#undef CDROP_VR_NORMAL
#undef CDROP_VR_ELEM
#undef CDROP_VR_DROPPED_CONST

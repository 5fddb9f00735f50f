// Workgroup-wide sums and maxima over WG invocations (WG a power of two, defined by the shader).
// With -DUSE_SUBGROUPS the subgroup arithmetic operations do most of the work and shared memory
// only combines the per-subgroup results.
#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_arithmetic : require
shared float reduce_buf[WG];
float wg_sum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) reduce_buf[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; ++i) r += reduce_buf[i];
    barrier();
    return r;
}
float wg_max(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) reduce_buf[gl_SubgroupID] = v;
    barrier();
    float r = reduce_buf[0];
    for (uint i = 1u; i < gl_NumSubgroups; ++i) r = max(r, reduce_buf[i]);
    barrier();
    return r;
}
#else
shared float reduce_buf[WG];
float wg_sum(float v) {
    uint t = gl_LocalInvocationIndex;
    reduce_buf[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s) reduce_buf[t] += reduce_buf[t + s];
        barrier();
    }
    float r = reduce_buf[0];
    barrier();
    return r;
}
float wg_max(float v) {
    uint t = gl_LocalInvocationIndex;
    reduce_buf[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s) reduce_buf[t] = max(reduce_buf[t], reduce_buf[t + s]);
        barrier();
    }
    float r = reduce_buf[0];
    barrier();
    return r;
}
#endif

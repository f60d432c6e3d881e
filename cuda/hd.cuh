// HETPIPE_HD: a function the kernels call and the host tests run as they are. nvcc compiles it for
// both sides; g++ (tests/host, the fuzz harnesses) sees a plain inline function.
#pragma once

#if defined(__CUDACC__)
#define HETPIPE_HD __host__ __device__ __forceinline__
#else
#define HETPIPE_HD inline
#endif

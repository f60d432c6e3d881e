// HETPIPE_CLONES: AVX-512 (x86-64-v4) and AVX2 clones of vectorisable functions, picked at load
// time; the default clone is baseline x86-64 (no -march: the binary runs on other machines). Only
// for integer code (or sqrt): x86-64-v4 has FMA, and GCC would contract a float a * b + c there.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HETPIPE_NO_CLONES)
#define HETPIPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define HETPIPE_CLONES
#endif

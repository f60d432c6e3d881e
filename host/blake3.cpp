// BLAKE3 from the specification. Full chunks, parents and output blocks are compressed eight at a
// time in a lane-transposed state (word w of lane l is element l of vector w), written with GCC's
// generic vectors so that every target clone (AVX-512, AVX2, baseline SSE2) lowers the same code
// to its own registers; auto-vectorising plain 16 x 8 arrays left the state in memory. With
// AVX-512, full chunks and parents go sixteen at a time (512-bit vectors). Partial chunks and
// single nodes take a scalar path.
//
// A piece is processed in batches of 64 chunks: a batch's CVs (2 KiB) are reduced level by level
// on the stack, and batch CVs are merged with the same lazy stack as tree_merger. The left-
// balanced tree of n chunks equals pairing neighbours level by level and carrying an odd last
// node up unchanged, which is what the level reduction does.
#include "host/blake3.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

// Three builds of the lane functions, picked once at run time: AVX-512 (vprold rotates), AVX2
// (16- and 8-bit rotates as byte shuffles) and baseline x86-64. Not target_clones: the AVX2 build
// needs different source (a generic byte shuffle is scalarised on the SSE2 baseline).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HETPIPE_NO_CLONES)
#define HETPIPE_B3_DISPATCH 1
#else
#define HETPIPE_B3_DISPATCH 0
#endif

// vec values only pass between inlined functions of this file, never across an ABI boundary.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

static_assert(std::endian::native == std::endian::little, "BLAKE3 words are little-endian");

namespace hetpipe::host::blake3 {
namespace {

constexpr key_words iv = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                          0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

// schedule[r][i]: the original message word used at position i in round r (the permutation
// applied r times).
constexpr std::array<std::array<std::uint8_t, 16>, 7> schedule = [] {
  constexpr std::uint8_t perm[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
  std::array<std::array<std::uint8_t, 16>, 7> s{};
  for (int i = 0; i < 16; ++i) s[0][i] = std::uint8_t(i);
  for (int r = 1; r < 7; ++r)
    for (int i = 0; i < 16; ++i) s[r][i] = s[r - 1][perm[i]];
  return s;
}();

constexpr std::size_t batch_chunks = 64;

inline std::uint32_t load32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Scalar compression

inline std::uint32_t rotr(std::uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

#define HETPIPE_B3_G(a, b, c, d, x, y) \
  do {                                 \
    a = a + b + (x);                   \
    d = ROT(d ^ a, 16);                \
    c = c + d;                         \
    b = ROT(b ^ c, 12);                \
    a = a + b + (y);                   \
    d = ROT(d ^ a, 8);                 \
    c = c + d;                         \
    b = ROT(b ^ c, 7);                 \
  } while (0)

// The same rounds with the four G functions of a half-round interleaved step by step, as
// b3sum's assembly orders them (GCC keeps the source's order on x86: it does not schedule before
// register allocation). rounds_lanes picks them where a vector is one register. 2-core Zen 1 box,
// avx2, one thread, 1 MiB in cache: 1.36 GB/s before, 1.40 with this order alone, 1.44 with the
// memory-operand shuffles alone (rotv), 1.58 with both; b3sum's kernel then no longer leads.
#define HETPIPE_B3_G4(a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, x0, x1, x2, \
                      x3, y0, y1, y2, y3)                                                         \
  do {                                                                                            \
    a0 = a0 + b0 + (x0), a1 = a1 + b1 + (x1), a2 = a2 + b2 + (x2), a3 = a3 + b3 + (x3);           \
    d0 = ROT(d0 ^ a0, 16), d1 = ROT(d1 ^ a1, 16), d2 = ROT(d2 ^ a2, 16), d3 = ROT(d3 ^ a3, 16);   \
    c0 = c0 + d0, c1 = c1 + d1, c2 = c2 + d2, c3 = c3 + d3;                                       \
    b0 = ROT(b0 ^ c0, 12), b1 = ROT(b1 ^ c1, 12), b2 = ROT(b2 ^ c2, 12), b3 = ROT(b3 ^ c3, 12);   \
    a0 = a0 + b0 + (y0), a1 = a1 + b1 + (y1), a2 = a2 + b2 + (y2), a3 = a3 + b3 + (y3);           \
    d0 = ROT(d0 ^ a0, 8), d1 = ROT(d1 ^ a1, 8), d2 = ROT(d2 ^ a2, 8), d3 = ROT(d3 ^ a3, 8);       \
    c0 = c0 + d0, c1 = c1 + d1, c2 = c2 + d2, c3 = c3 + d3;                                       \
    b0 = ROT(b0 ^ c0, 7), b1 = ROT(b1 ^ c1, 7), b2 = ROT(b2 ^ c2, 7), b3 = ROT(b3 ^ c3, 7);       \
  } while (0)

#define HETPIPE_B3_ROUNDS4(m)                                                                    \
  for (int r = 0; r < 7; ++r) {                                                                  \
    const auto& s = schedule[r];                                                                 \
    HETPIPE_B3_G4(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, m[s[0]], \
                  m[s[2]], m[s[4]], m[s[6]], m[s[1]], m[s[3]], m[s[5]], m[s[7]]);                \
    HETPIPE_B3_G4(v0, v1, v2, v3, v5, v6, v7, v4, v10, v11, v8, v9, v15, v12, v13, v14, m[s[8]], \
                  m[s[10]], m[s[12]], m[s[14]], m[s[9]], m[s[11]], m[s[13]], m[s[15]]);          \
  }

// The seven rounds on named state v0..v15 and message array m (scalar or vector: ROT and the
// types come from the caller).
#define HETPIPE_B3_ROUNDS(m)                            \
  for (int r = 0; r < 7; ++r) {                         \
    const auto& s = schedule[r];                        \
    HETPIPE_B3_G(v0, v4, v8, v12, m[s[0]], m[s[1]]);    \
    HETPIPE_B3_G(v1, v5, v9, v13, m[s[2]], m[s[3]]);    \
    HETPIPE_B3_G(v2, v6, v10, v14, m[s[4]], m[s[5]]);   \
    HETPIPE_B3_G(v3, v7, v11, v15, m[s[6]], m[s[7]]);   \
    HETPIPE_B3_G(v0, v5, v10, v15, m[s[8]], m[s[9]]);   \
    HETPIPE_B3_G(v1, v6, v11, v12, m[s[10]], m[s[11]]); \
    HETPIPE_B3_G(v2, v7, v8, v13, m[s[12]], m[s[13]]);  \
    HETPIPE_B3_G(v3, v4, v9, v14, m[s[14]], m[s[15]]);  \
  }

// out[0..8) is the new CV; out[8..16) the rest of the extended output block.
void compress(const std::uint32_t h[8], const std::uint32_t m[16], std::uint64_t counter,
              std::uint32_t blen, std::uint32_t flags, std::uint32_t out[16]) {
#define ROT rotr
  std::uint32_t v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6],
                v7 = h[7];
  std::uint32_t v8 = iv[0], v9 = iv[1], v10 = iv[2], v11 = iv[3];
  std::uint32_t v12 = std::uint32_t(counter), v13 = std::uint32_t(counter >> 32), v14 = blen,
                v15 = flags;
#pragma GCC unroll 7
  HETPIPE_B3_ROUNDS(m)
#undef ROT
  const std::uint32_t lo[8] = {v0, v1, v2, v3, v4, v5, v6, v7};
  const std::uint32_t hi[8] = {v8, v9, v10, v11, v12, v13, v14, v15};
  for (int i = 0; i < 8; ++i) {
    out[i] = lo[i] ^ hi[i];
    out[i + 8] = hi[i] ^ h[i];
  }
}

void load_block(const std::uint8_t* p, std::size_t n, std::uint32_t m[16]) {
  std::uint8_t b[64] = {};
  if (n) std::memcpy(b, p, n);  // p may be null for the empty input
  for (int i = 0; i < 16; ++i) m[i] = load32(b + 4 * i);
}

// Every block of a chunk (len <= chunk_len; 0 only for the empty input) but the last, leaving the
// last as an output node.
output_node chunk_node(const std::uint8_t* p, std::size_t len, std::uint64_t counter,
                       const key_words& key, std::uint32_t flags) {
  output_node n;
  n.input_cv = key;
  n.counter = counter;
  const std::size_t blocks = len == 0 ? 1 : (len + block_len - 1) / block_len;
  std::uint32_t m[16], out[16];
  for (std::size_t b = 0; b + 1 < blocks; ++b) {
    load_block(p + b * block_len, block_len, m);
    compress(n.input_cv.data(), m, counter, block_len, flags | (b == 0 ? flag_chunk_start : 0),
             out);
    std::copy(out, out + 8, n.input_cv.begin());
  }
  const std::size_t last = len - (blocks - 1) * block_len;
  load_block(p + (blocks - 1) * block_len, last, n.block.data());
  n.block_len = std::uint32_t(last);
  n.flags = flags | flag_chunk_end | (blocks == 1 ? flag_chunk_start : 0);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Eight lanes

constexpr int lanes = 8;
using vec = std::uint32_t __attribute__((vector_size(4 * lanes)));
// The same, for unaligned loads and stores: one vmovdqu instead of a memcpy through the stack,
// whose two 16-byte stores then stall the 32-byte reload (store forwarding fails).
using vec_u = std::uint32_t __attribute__((vector_size(4 * lanes), aligned(1), may_alias));

template <int n, bool byte_rot, class V>
[[gnu::always_inline]] inline V rotv(V x) {
#if HETPIPE_B3_DISPATCH
  static_assert(!byte_rot || sizeof(V) == 32, "byte shuffles are written for eight lanes");
  if constexpr (byte_rot && (n == 16 || n == 8)) {
    // vpshufb with its mask as a memory operand, as b3sum's assembly does: given a generic
    // shuffle the compiler kept both masks in registers, two of the sixteen, and spilled the
    // state more for it. Same bytes as the shift-or below.
    alignas(32) static constexpr std::uint8_t m16[32] = {2, 3,  0,  1,  6,  7, 4,  5,  10, 11, 8,
                                                         9, 14, 15, 12, 13, 2, 3,  0,  1,  6,  7,
                                                         4, 5,  10, 11, 8,  9, 14, 15, 12, 13};
    alignas(32) static constexpr std::uint8_t m8[32] = {1, 2,  3,  0,  5,  6, 7,  4,  9,  10, 11,
                                                        8, 13, 14, 15, 12, 1, 2,  3,  0,  5,  6,
                                                        7, 4,  9,  10, 11, 8, 13, 14, 15, 12};
    using mask_t = std::uint8_t __attribute__((vector_size(32)));
    const auto& mask = *reinterpret_cast<const mask_t*>(n == 16 ? m16 : m8);
    asm("vpshufb %1, %0, %0" : "+x"(x) : "m"(mask));
    return x;
  }
#endif
  return (x >> n) | (x << (32 - n));
}

#if defined(__clang__)
#define HETPIPE_B3_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define HETPIPE_B3_SHUF(a, b, ...) __builtin_shuffle(a, b, vec{__VA_ARGS__})
#endif

// always_inline as every helper here: a 32-byte vector returned by an out-of-line call crosses
// from the callers' AVX2/AVX-512 builds into code built for the baseline ISA, which passes it in
// another way (an -O0 build, which inlines nothing, crashed in the lanes with ASan).
[[gnu::always_inline]] inline vec splat(std::uint32_t x) {
  return vec{x, x, x, x, x, x, x, x};
}

// Transposes an 8 x 8 word matrix held as eight row vectors.
[[gnu::always_inline]] inline void transpose(vec r[8]) {
  vec t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = HETPIPE_B3_SHUF(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = HETPIPE_B3_SHUF(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      u[i + 2 * j] = HETPIPE_B3_SHUF(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * j + 1] = HETPIPE_B3_SHUF(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  // u[0..3] hold columns 0..3 (rows 0-3 in the low half, columns 4..7 in the high half); u[4..7]
  // the same for rows 4-7.
  for (int j = 0; j < 4; ++j) {
    r[j] = HETPIPE_B3_SHUF(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[j + 4] = HETPIPE_B3_SHUF(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// m[w] = word w of the 64-byte block at p[l] + offset, for each lane l.
[[gnu::always_inline]] inline void load_lanes(const std::uint8_t* const p[lanes],
                                              std::size_t offset, vec m[16]) {
  for (int half = 0; half < 2; ++half) {
    vec* r = m + 8 * half;
    for (int l = 0; l < lanes; ++l)
      r[l] = *reinterpret_cast<const vec_u*>(p[l] + offset + 32 * half);
    transpose(r);
  }
}

// The rounds on h (in: input CVs; out: v[0..16) after the rounds, h untouched).
// V: eight lanes (vec) or sixteen (vec16). g4: the four G functions of a half-round side by side
// (HETPIPE_B3_ROUNDS4), for builds where a V is one register (AVX2's eight lanes, AVX-512).
// Where it is two, one G after another spills less (Zen 1, 1 MiB in cache: baseline 0.56 GB/s
// against 0.43 side by side, avx2-16 0.70 against 0.63). The AVX-512 builds' side-by-side order
// is not measured yet; their code has fewer stack moves with it (avx512-16: 45 against 53).
template <bool byte_rot, bool g4, class V>
[[gnu::always_inline]] inline void rounds_lanes(const V h[8], const V m[16], V ctr_lo, V ctr_hi,
                                                V blen, V flags, V v[16]) {
#define ROT(x, n) rotv<n, byte_rot>(x)
  V v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
  V v8 = V{} + iv[0], v9 = V{} + iv[1], v10 = V{} + iv[2], v11 = V{} + iv[3];
  V v12 = ctr_lo, v13 = ctr_hi, v14 = blen, v15 = flags;
  if constexpr (g4) {
#pragma GCC unroll 7
    HETPIPE_B3_ROUNDS4(m)
  } else {
#pragma GCC unroll 7
    HETPIPE_B3_ROUNDS(m)
  }
#undef ROT
  v[0] = v0, v[1] = v1, v[2] = v2, v[3] = v3, v[4] = v4, v[5] = v5, v[6] = v6, v[7] = v7;
  v[8] = v8, v[9] = v9, v[10] = v10, v[11] = v11, v[12] = v12, v[13] = v13, v[14] = v14;
  v[15] = v15;
}

// The chunks after a group (batch_cvs takes them next) are fetched one line of each per block,
// so that their lines are in cache when the group starts: a 1 KiB chunk is too short a stream for
// the hardware prefetchers to find. 2-core box, one thread, 64 MiB out of cache: 1.66 -> 2.27
// GB/s. They are fetched into L2, not L1 (hint 2, prefetcht1): a group ahead is 16 KiB for
// avx512-16, which fetched into a 32 KiB L1 pushed out the lines the group in hand still needed.
// Zen 4 box, one thread, 1 GiB out of cache, avx512-16: 4.8 -> 5.5 GB/s (5.8 in cache). The
// address may lie past the input, where a prefetch does nothing (integer arithmetic: no pointer
// is formed there).
[[gnu::always_inline]] inline void prefetch_ahead(const std::uint8_t* p, std::size_t ahead) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + ahead), 0,
                     2);
}

// CVs of eight full chunks p[l] with counters counter + l.
template <bool byte_rot, bool g4>
[[gnu::always_inline]] inline void chunks_lanes_t(const std::uint8_t* const p[lanes],
                                                  std::uint64_t counter, const key_words& key,
                                                  std::uint32_t flags, cv out[lanes]) {
  vec h[8], v[16], m[16];
  for (int i = 0; i < 8; ++i) h[i] = splat(key[i]);
  vec lo, hi;
  for (int l = 0; l < lanes; ++l) {
    lo[l] = std::uint32_t(counter + l);
    hi[l] = std::uint32_t((counter + l) >> 32);
  }
  for (std::size_t b = 0; b < chunk_len / block_len; ++b) {
    for (int l = 0; l < lanes; ++l) prefetch_ahead(p[l], lanes * chunk_len + b * block_len);
    load_lanes(p, b * block_len, m);
    const std::uint32_t f = flags | (b == 0 ? flag_chunk_start : 0) |
                            (b == chunk_len / block_len - 1 ? flag_chunk_end : 0);
    rounds_lanes<byte_rot, g4>(h, m, lo, hi, splat(block_len), splat(f), v);
    for (int i = 0; i < 8; ++i) h[i] = v[i] ^ v[i + 8];
  }
  transpose(h);
  for (int l = 0; l < lanes; ++l) *reinterpret_cast<vec_u*>(out[l].data()) = h[l];
}

// Parents of the child pairs p[l][0..16) (two CVs each).
template <bool byte_rot, bool g4>
[[gnu::always_inline]] inline void parents_lanes_t(const std::uint8_t* const p[lanes],
                                                   const key_words& key, std::uint32_t flags,
                                                   cv out[lanes]) {
  vec h[8], v[16], m[16];
  for (int i = 0; i < 8; ++i) h[i] = splat(key[i]);
  load_lanes(p, 0, m);
  rounds_lanes<byte_rot, g4>(h, m, splat(0), splat(0), splat(block_len), splat(flags | flag_parent),
                             v);
  for (int i = 0; i < 8; ++i) h[i] = v[i] ^ v[i + 8];
  transpose(h);
  for (int l = 0; l < lanes; ++l) *reinterpret_cast<vec_u*>(out[l].data()) = h[l];
}

// Eight root output blocks, counters t .. t + 7, into out[0 .. 512).
template <bool byte_rot, bool g4>
[[gnu::always_inline]] inline void output_lanes_t(const output_node& n, std::uint64_t t,
                                                  std::uint8_t* out) {
  vec h[8], v[16], m[16];
  for (int i = 0; i < 8; ++i) h[i] = splat(n.input_cv[i]);
  for (int i = 0; i < 16; ++i) m[i] = splat(n.block[i]);
  vec lo, hi;
  for (int l = 0; l < lanes; ++l) {
    lo[l] = std::uint32_t(t + l);
    hi[l] = std::uint32_t((t + l) >> 32);
  }
  rounds_lanes<byte_rot, g4>(h, m, lo, hi, splat(n.block_len), splat(n.flags | flag_root), v);
  vec a[8], b[8];
  for (int i = 0; i < 8; ++i) {
    a[i] = v[i] ^ v[i + 8];
    b[i] = v[i + 8] ^ h[i];
  }
  transpose(a);
  transpose(b);
  for (int l = 0; l < lanes; ++l) {
    *reinterpret_cast<vec_u*>(out + 64 * l) = a[l];
    *reinterpret_cast<vec_u*>(out + 64 * l + 32) = b[l];
  }
}

#if HETPIPE_B3_DISPATCH
// ---------------------------------------------------------------------------------------------
// Sixteen lanes, for full chunks (the bulk of the work: a chunk is 16 compressions, its share of
// parents one) and parents: AVX-512's 512-bit registers, rotates in one instruction. Output
// blocks stay at eight lanes.

constexpr int wide = 16;
using vec16 = std::uint32_t __attribute__((vector_size(4 * wide)));
using vec16_u = std::uint32_t __attribute__((vector_size(4 * wide), aligned(1), may_alias));

// Index vector of a two-input shuffle for stage s of transpose16: row i (bit s clear) keeps its
// columns with bit s clear and takes the others from row i + s, s columns left (high: row i + s,
// the mirror image).
template <int s, bool high>
[[gnu::always_inline]] inline vec16 swap_mask() {
  vec16 m{};
  for (int j = 0; j < wide; ++j)
    m[j] = std::uint32_t(high ? ((j & s) ? wide + j : j + s) : ((j & s) ? wide + j - s : j));
  return m;
}

template <int s>
[[gnu::always_inline]] inline void swap_stage(vec16 r[wide]) {
  for (int i = 0; i < wide; ++i)
    if (!(i & s)) {
      const vec16 a = r[i], b = r[i + s];
      r[i] = __builtin_shuffle(a, b, swap_mask<s, false>());
      r[i + s] = __builtin_shuffle(a, b, swap_mask<s, true>());
    }
}

// Transposes a 16 x 16 word matrix held as 16 row vectors: stage s swaps bit s of the row index
// with bit s of the column index, and the four stages together swap the indices.
[[gnu::always_inline]] inline void transpose16(vec16 r[wide]) {
  swap_stage<8>(r);
  swap_stage<4>(r);
  swap_stage<2>(r);
  swap_stage<1>(r);
}

// h[0..8) (eight CV words, lane l in element l) out as lane l's CV in out[l].
[[gnu::always_inline]] inline void store_cvs16(vec16 h[wide], cv out[wide]) {
  for (int i = 8; i < wide; ++i) h[i] = vec16{};
  transpose16(h);  // row l: lane l's CV, then zeros
  for (int l = 0; l < wide; ++l) std::memcpy(out[l].data(), &h[l], sizeof(cv));
}

// CVs of sixteen full chunks p[l] with counters counter + l.
template <bool g4>
[[gnu::always_inline]] inline void chunks16_t(const std::uint8_t* const p[wide],
                                              std::uint64_t counter, const key_words& key,
                                              std::uint32_t flags, cv out[wide]) {
  vec16 h[wide], v[16], m[16];
  for (int i = 0; i < 8; ++i) h[i] = vec16{} + key[i];
  vec16 lo, hi;
  for (int l = 0; l < wide; ++l) {
    lo[l] = std::uint32_t(counter + l);
    hi[l] = std::uint32_t((counter + l) >> 32);
  }
  for (std::size_t b = 0; b < chunk_len / block_len; ++b) {
    for (int l = 0; l < wide; ++l) prefetch_ahead(p[l], wide * chunk_len + b * block_len);
    for (int l = 0; l < wide; ++l) m[l] = *reinterpret_cast<const vec16_u*>(p[l] + b * block_len);
    transpose16(m);
    const std::uint32_t f = flags | (b == 0 ? flag_chunk_start : 0) |
                            (b == chunk_len / block_len - 1 ? flag_chunk_end : 0);
    rounds_lanes<false, g4>(h, m, lo, hi, vec16{} + std::uint32_t(block_len), vec16{} + f, v);
    for (int i = 0; i < 8; ++i) h[i] = v[i] ^ v[i + 8];
  }
  store_cvs16(h, out);
}

// Parents of the child pairs p[l][0..16) (two CVs each), sixteen at once: a parent is one
// compression for sixteen of its chunks', and at eight lanes parents were 8% of avx512-16's time
// (perf, 1 GiB, one thread, Zen 4 box).
template <bool g4>
[[gnu::always_inline]] inline void parents16_t(const std::uint8_t* const p[wide],
                                               const key_words& key, std::uint32_t flags,
                                               cv out[wide]) {
  vec16 h[wide], v[16], m[16];
  for (int i = 0; i < 8; ++i) h[i] = vec16{} + key[i];
  for (int l = 0; l < wide; ++l) m[l] = *reinterpret_cast<const vec16_u*>(p[l]);
  transpose16(m);
  rounds_lanes<false, g4>(h, m, vec16{}, vec16{}, vec16{} + std::uint32_t(block_len),
                          vec16{} + (flags | flag_parent), v);
  for (int i = 0; i < 8; ++i) h[i] = v[i] ^ v[i + 8];
  store_cvs16(h, out);
}
#endif

using chunks_fn = void (*)(const std::uint8_t* const*, std::uint64_t, const key_words&,
                           std::uint32_t, cv*);
using parents_fn = void (*)(const std::uint8_t* const*, const key_words&, std::uint32_t, cv*);
using output_fn = void (*)(const output_node&, std::uint64_t, std::uint8_t*);
struct lane_fns {
  chunks_fn chunks;
  parents_fn parents;
  output_fn output;
  chunks_fn chunks16 = nullptr;    // sixteen chunks at once, where the build has it
  parents_fn parents16 = nullptr;  // and sixteen parents
  const char* name = "";
};

#define HETPIPE_B3_VARIANT(name, attr, byte_rot, g4)                                          \
  attr void chunks_##name(const std::uint8_t* const* p, std::uint64_t c, const key_words& k,  \
                          std::uint32_t f, cv* o) {                                           \
    chunks_lanes_t<byte_rot, g4>(p, c, k, f, o);                                              \
  }                                                                                           \
  attr void parents_##name(const std::uint8_t* const* p, const key_words& k, std::uint32_t f, \
                           cv* o) {                                                           \
    parents_lanes_t<byte_rot, g4>(p, k, f, o);                                                \
  }                                                                                           \
  attr void output_##name(const output_node& n, std::uint64_t t, std::uint8_t* o) {           \
    output_lanes_t<byte_rot, g4>(n, t, o);                                                    \
  }                                                                                           \
  constexpr lane_fns name##_fns = {chunks_##name, parents_##name, output_##name,              \
                                   nullptr,       nullptr,        #name};

HETPIPE_B3_VARIANT(baseline, , false, false)
#if HETPIPE_B3_DISPATCH
HETPIPE_B3_VARIANT(avx2, __attribute__((target("avx2"))), true, true)
HETPIPE_B3_VARIANT(avx512, __attribute__((target("avx512f,avx512vl"))), false, true)
__attribute__((target("avx512f,avx512vl"))) void chunks16_avx512(const std::uint8_t* const* p,
                                                                 std::uint64_t c,
                                                                 const key_words& k,
                                                                 std::uint32_t f, cv* o) {
  chunks16_t<true>(p, c, k, f, o);
}
// The sixteen-lane source built for AVX2 (two registers per vector): slower than avx2, kept so
// that machines without AVX-512 test the code avx512-16 runs.
__attribute__((target("avx2"))) void chunks16_avx2(const std::uint8_t* const* p, std::uint64_t c,
                                                   const key_words& k, std::uint32_t f, cv* o) {
  chunks16_t<false>(p, c, k, f, o);
}
__attribute__((target("avx512f,avx512vl"))) void parents16_avx512(const std::uint8_t* const* p,
                                                                  const key_words& k,
                                                                  std::uint32_t f, cv* o) {
  parents16_t<true>(p, k, f, o);
}
__attribute__((target("avx2"))) void parents16_avx2(const std::uint8_t* const* p,
                                                    const key_words& k, std::uint32_t f, cv* o) {
  parents16_t<false>(p, k, f, o);
}
constexpr lane_fns avx512_16_fns = {chunks_avx512,   parents_avx512,   output_avx512,
                                    chunks16_avx512, parents16_avx512, "avx512-16"};
constexpr lane_fns avx2_16_fns = {chunks_avx2,   parents_avx2,   output_avx2,
                                  chunks16_avx2, parents16_avx2, "avx2-16"};
#endif

// The builds this CPU runs, best first.
std::vector<const lane_fns*> runnable_builds() {
  std::vector<const lane_fns*> b;
#if HETPIPE_B3_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) {
    b.push_back(&avx512_16_fns);
    b.push_back(&avx512_fns);
  }
  if (__builtin_cpu_supports("avx2")) {
    b.push_back(&avx2_fns);
    b.push_back(&avx2_16_fns);
  }
#endif
  b.push_back(&baseline_fns);
  return b;
}

std::atomic<const lane_fns*> chosen{nullptr};

// The runnable build of that name, or null.
const lane_fns* find_build(std::string_view name) {
  for (const lane_fns* f : runnable_builds())
    if (f->name == name) return f;
  return nullptr;
}

// The first of the runnable builds, or the one HETPIPE_BLAKE3 names.
const lane_fns* default_build() {
  const char* want = std::getenv("HETPIPE_BLAKE3");
  if (!want || !*want) return runnable_builds().front();
  if (const lane_fns* f = find_build(want)) return f;
  std::string names;
  for (const std::string_view b : builds()) names += (names.empty() ? "" : ", ") + std::string(b);
  throw usage_error(std::string("HETPIPE_BLAKE3: '") + want +
                    "' is not a BLAKE3 build this CPU runs (" + names + ")");
}

const lane_fns& lane_impl() {
  const lane_fns* f = chosen.load(std::memory_order_relaxed);
  if (!f) {
    f = default_build();
    chosen.store(f, std::memory_order_relaxed);
  }
  return *f;
}

void chunks_lanes(const std::uint8_t* const p[lanes], std::uint64_t counter, const key_words& key,
                  std::uint32_t flags, cv out[lanes]) {
  lane_impl().chunks(p, counter, key, flags, out);
}
void parents_lanes(const std::uint8_t* const p[lanes], const key_words& key, std::uint32_t flags,
                   cv out[lanes]) {
  lane_impl().parents(p, key, flags, out);
}
void output_lanes(const output_node& n, std::uint64_t t, std::uint8_t* out) {
  lane_impl().output(n, t, out);
}

// ---------------------------------------------------------------------------------------------
// Batches and stacks

cv chunk_cv(const std::uint8_t* p, std::size_t len, std::uint64_t counter, const key_words& key,
            std::uint32_t flags) {
  return chaining_value(chunk_node(p, len, counter, key, flags));
}

// CVs of the chunks of data[0, len), 1 <= len <= batch_chunks * chunk_len; returns their count.
std::size_t batch_cvs(const std::uint8_t* data, std::size_t len, std::uint64_t counter,
                      const key_words& key, std::uint32_t flags, cv* out) {
  const std::size_t full = len / chunk_len;
  std::size_t i = 0;
  if (const chunks_fn chunks16 = lane_impl().chunks16) {
    for (; full - i >= 16; i += 16) {
      const std::uint8_t* p[16];
      for (std::size_t l = 0; l < 16; ++l) p[l] = data + (i + l) * chunk_len;
      chunks16(p, counter + i, key, flags, out + i);
    }
  }
  for (; i < full; i += lanes) {
    const std::size_t k = std::min<std::size_t>(lanes, full - i);
    if (k == 1) {
      out[i] = chunk_cv(data + i * chunk_len, chunk_len, counter + i, key, flags);
      break;
    }
    // A short group repeats its last chunk in the spare lanes and drops their results.
    const std::uint8_t* p[lanes];
    for (std::size_t l = 0; l < lanes; ++l) p[l] = data + (i + std::min(l, k - 1)) * chunk_len;
    if (k == lanes) {
      chunks_lanes(p, counter + i, key, flags, out + i);
    } else {
      cv tmp[lanes];
      chunks_lanes(p, counter + i, key, flags, tmp);
      std::copy(tmp, tmp + k, out + i);
    }
  }
  if (len % chunk_len)
    out[full] = chunk_cv(data + full * chunk_len, len % chunk_len, counter + full, key, flags);
  return full + (len % chunk_len ? 1 : 0);
}

// Reduces n CVs (a left-balanced subtree) level by level, in place, until at most `target` remain.
void reduce(cv* c, std::size_t& n, std::size_t target, const key_words& key, std::uint32_t flags) {
  const parents_fn parents16 = lane_impl().parents16;
  while (n > target) {
    const std::size_t pairs = n / 2;
    std::size_t i = 0;
    if (parents16) {
      // Group g reads c[32g, 32g + 32) and writes c[16g, 16g + 16), after reading it.
      for (; pairs - i >= 16; i += 16) {
        const std::uint8_t* p[16];
        for (std::size_t l = 0; l < 16; ++l)
          p[l] = reinterpret_cast<const std::uint8_t*>(c[2 * (i + l)].data());
        cv tmp[16];
        parents16(p, key, flags, tmp);
        std::copy(tmp, tmp + 16, c + i);
      }
    }
    for (; i < pairs; i += lanes) {
      const std::size_t k = std::min<std::size_t>(lanes, pairs - i);
      if (k == 1) {
        c[i] = parent_cv(c[2 * i], c[2 * i + 1], key, flags);
        break;
      }
      // Group g reads c[16g, 16g + 16) and writes c[8g, 8g + 8): never a later group's input.
      const std::uint8_t* p[lanes];
      for (std::size_t l = 0; l < lanes; ++l)
        p[l] = reinterpret_cast<const std::uint8_t*>(c[2 * (i + std::min(l, k - 1))].data());
      cv tmp[lanes];
      parents_lanes(p, key, flags, tmp);
      std::copy(tmp, tmp + k, c + i);
    }
    if (n % 2) c[pairs] = c[n - 1];
    n = pairs + n % 2;
  }
}

// Lazily merged CVs of complete subtrees (the incremental-hashing stack of the specification):
// a push first merges what the chunks before it allow, so nothing is merged until it is known
// not to be the root.
struct cv_stack {
  std::array<cv, 65> e;
  std::size_t n = 0;
  std::uint64_t total = 0;

  void push(const cv& c, std::uint64_t chunks, const key_words& key, std::uint32_t flags) {
    while (n > std::size_t(std::popcount(total))) {
      e[n - 2] = parent_cv(e[n - 2], e[n - 1], key, flags);
      --n;
    }
    e[n++] = c;
    total += chunks;
  }
  cv fold_cv(const key_words& key, std::uint32_t flags) const {
    cv node = e[n - 1];
    for (std::size_t i = n - 1; i-- > 0;) node = parent_cv(e[i], node, key, flags);
    return node;
  }
  output_node fold_root(const key_words& key, std::uint32_t flags) const {  // n >= 2
    cv node = e[n - 1];
    for (std::size_t i = n - 1; i-- > 1;) node = parent_cv(e[i], node, key, flags);
    return parent_node(e[0], node, key, flags);
  }
};

}  // namespace

std::vector<std::string_view> builds() {
  std::vector<std::string_view> names;
  for (const lane_fns* f : runnable_builds()) names.emplace_back(f->name);
  return names;
}

std::string_view current_build() {
  return lane_impl().name;
}

bool use_build(std::string_view name) {
  const lane_fns* f = find_build(name);
  if (f) chosen.store(f, std::memory_order_relaxed);
  return f != nullptr;
}

key_words iv_key() {
  return iv;
}

key_words keyed(const std::uint8_t key[32]) {
  key_words k;
  for (int i = 0; i < 8; ++i) k[i] = load32(key + 4 * i);
  return k;
}

std::array<std::uint8_t, 32> cv_bytes(const cv& c) {
  std::array<std::uint8_t, 32> b;
  std::memcpy(b.data(), c.data(), 32);
  return b;
}

cv chaining_value(const output_node& n) {
  std::uint32_t out[16];
  compress(n.input_cv.data(), n.block.data(), n.counter, n.block_len, n.flags, out);
  cv c;
  std::copy(out, out + 8, c.begin());
  return c;
}

void root_bytes(const output_node& n, std::uint64_t offset, std::uint8_t* out, std::size_t len) {
  std::uint64_t t = offset / block_len;
  std::size_t skip = offset % block_len;
  std::uint8_t buf[lanes * block_len];
  while (len) {
    std::size_t got;
    if (len + skip > (lanes - 1) * block_len) {
      output_lanes(n, t, buf);
      got = lanes * block_len;
      t += lanes;
    } else {
      std::uint32_t w[16];
      compress(n.input_cv.data(), n.block.data(), t, n.block_len, n.flags | flag_root, w);
      std::memcpy(buf, w, block_len);
      got = block_len;
      ++t;
    }
    const std::size_t take = std::min(len, got - skip);
    std::memcpy(out, buf + skip, take);
    out += take;
    len -= take;
    skip = 0;
  }
}

cv parent_cv(const cv& left, const cv& right, const key_words& key, std::uint32_t flags) {
  return chaining_value(parent_node(left, right, key, flags));
}

output_node parent_node(const cv& left, const cv& right, const key_words& key,
                        std::uint32_t flags) {
  output_node n;
  n.input_cv = key;
  std::copy(left.begin(), left.end(), n.block.begin());
  std::copy(right.begin(), right.end(), n.block.begin() + 8);
  n.block_len = block_len;
  n.counter = 0;
  n.flags = flags | flag_parent;
  return n;
}

cv piece_cv(const std::uint8_t* data, std::size_t len, std::uint64_t chunk_counter,
            const key_words& key, std::uint32_t flags) {
  if (len == 0) throw std::invalid_argument("blake3::piece_cv: an empty piece has no CV");
  constexpr std::size_t batch_bytes = batch_chunks * chunk_len;
  cv c[batch_chunks];
  if (len <= batch_bytes) {
    std::size_t n = batch_cvs(data, len, chunk_counter, key, flags, c);
    reduce(c, n, 1, key, flags);
    return c[0];
  }
  // Batches are aligned 64-chunk subtrees of the piece; the last may be shorter.
  cv_stack st;
  for (std::size_t off = 0; off < len; off += batch_bytes) {
    const std::size_t sub = std::min(batch_bytes, len - off);
    std::size_t n = batch_cvs(data + off, sub, chunk_counter + off / chunk_len, key, flags, c);
    const std::uint64_t chunks = n;
    reduce(c, n, 1, key, flags);
    st.push(c[0], chunks, key, flags);
  }
  return st.fold_cv(key, flags);
}

output_node piece_root(const std::uint8_t* data, std::size_t len, const key_words& key,
                       std::uint32_t flags) {
  constexpr std::size_t batch_bytes = batch_chunks * chunk_len;
  if (len <= chunk_len) return chunk_node(data, len, 0, key, flags);
  cv c[batch_chunks];
  if (len <= batch_bytes) {
    std::size_t n = batch_cvs(data, len, 0, key, flags, c);
    reduce(c, n, 2, key, flags);
    return parent_node(c[0], c[1], key, flags);
  }
  cv_stack st;
  for (std::size_t off = 0; off < len; off += batch_bytes) {
    const std::size_t sub = std::min(batch_bytes, len - off);
    std::size_t n = batch_cvs(data + off, sub, off / chunk_len, key, flags, c);
    const std::uint64_t chunks = n;
    reduce(c, n, 1, key, flags);
    st.push(c[0], chunks, key, flags);
  }
  return st.fold_root(key, flags);
}

void tree_merger::push(const cv& piece, std::uint64_t chunks) {
  if (chunks == 0) throw std::invalid_argument("blake3::tree_merger: a piece has >= 1 chunk");
  if (pieces_ > 0) {
    // The previous piece is not the last: it must be a complete, aligned subtree.
    const std::uint64_t before = total_ - last_;
    if (!std::has_single_bit(last_) || before % last_ != 0)
      throw std::invalid_argument(
          "blake3::tree_merger: a piece before the last is not an aligned power-of-two subtree");
    if (chunks > (total_ & (~total_ + 1)))
      throw std::invalid_argument("blake3::tree_merger: piece larger than the subtree before it");
  }
  while (depth_ > std::size_t(std::popcount(total_))) {
    stack_[depth_ - 2] = parent_cv(stack_[depth_ - 2], stack_[depth_ - 1], key_, flags_);
    --depth_;
  }
  stack_[depth_++] = piece;
  total_ += chunks;
  last_ = chunks;
  ++pieces_;
}

output_node tree_merger::finish() const {
  if (pieces_ < 2)
    throw std::logic_error("blake3::tree_merger: a single piece is its own root (piece_root)");
  cv node = stack_[depth_ - 1];
  for (std::size_t i = depth_ - 1; i-- > 1;) node = parent_cv(stack_[i], node, key_, flags_);
  return parent_node(stack_[0], node, key_, flags_);
}

void xof(const key_words& key, std::uint32_t flags, const void* data, std::size_t len,
         std::uint8_t* out, std::size_t out_len) {
  root_bytes(piece_root(static_cast<const std::uint8_t*>(data), len, key, flags), 0, out, out_len);
}

std::array<std::uint8_t, 32> hash(const void* data, std::size_t len) {
  std::array<std::uint8_t, 32> h;
  xof(iv, 0, data, len, h.data(), h.size());
  return h;
}

std::array<std::uint8_t, 32> keyed_hash(const std::uint8_t key[32], const void* data,
                                        std::size_t len) {
  std::array<std::uint8_t, 32> h;
  xof(keyed(key), flag_keyed_hash, data, len, h.data(), h.size());
  return h;
}

key_words derive_key_words(std::string_view context) {
  std::uint8_t k[32];
  xof(iv, flag_derive_key_context, context.data(), context.size(), k, sizeof k);
  return keyed(k);
}

void derive_key(std::string_view context, const void* material, std::size_t len, std::uint8_t* out,
                std::size_t out_len) {
  xof(derive_key_words(context), flag_derive_key_material, material, len, out, out_len);
}

}  // namespace hetpipe::host::blake3

// The hot loop of exact stats: folds raw column data into column_acc.
//
// Floats: each finite element adds its integer mantissa M to a bin indexed by sign and exponent
// field (S) and M² to the same bin (Q). Bins are machine integers; they are flushed into wider bins
// before they could overflow, and into the mpz sums once per call (or per 2^20 f64 elements). Four
// interleaved bin sets keep runs of equal exponents (the usual case) from serialising on
// store-to-load forwarding. A separate, vectorised pass over each L1-sized block (pass 1) finds the
// min/max keys, the exponent range touched (so flushes scan only that range), the count of zero
// exponents and whether any NaN/inf is present (rare: a scalar slow path redoes pass 1).
// f32 blocks whose exponents span a narrow window (most real data) skip the bins: a lighter
// pass 1 and exact sums in doubles (sum_narrow, fast_sums_f32).
// Integers: plain sums in machine integers sized so that a block cannot overflow.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "host/clones.hpp"
#include "host/stats_host.hpp"

// The vectorisable passes carry AVX2 clones (host/clones.hpp).

namespace hetpipe::host {
namespace {

using u128 = unsigned __int128;
using i128 = __int128;

template <class T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr std::size_t block_elems = 4096;  // integers: unaligned input is copied in blocks
// Multi-column blocks are transposed in bands of about band_bytes (cache-resident), at most
// max_band_rows rows.
constexpr std::size_t band_bytes = 512 << 10;
constexpr std::size_t max_band_rows = 16384;

// ---------------------------------------------------------------------------------------------
// Floats

template <class F>
struct float_traits;
template <>
struct float_traits<float> {
  static constexpr std::size_t block = 4096;  // elements per pass 1 + pass 2 unit (16 KiB)
  using bits = std::uint32_t;
  using sbits = std::int32_t;
  static constexpr int ebits = 8, fbits = 23;
  using s1 = std::uint64_t;  // M < 2^24
  using q1 = std::uint64_t;  // M² < 2^48: 2^16 adds per bin at most
  static constexpr std::size_t flush_every = 1u << 16;
};
template <>
struct float_traits<double> {
  static constexpr std::size_t block = 2048;
  using bits = std::uint64_t;
  using sbits = std::int64_t;
  static constexpr int ebits = 11, fbits = 52;
  using s1 = std::uint64_t;  // M < 2^53: 2^11 adds, so these bins are emptied after every block
  using q1 = u128;           // M² < 2^106: 2^22 adds per bin at most
  static constexpr std::size_t flush_every = 1u << 20;
};

// Pass 1 result over a block. Keys are kept in signed form (key ^ signbit) so that the vectoriser
// can use signed min/max; `amin/amax` are |bits| extremes, giving the exponent range.
template <class F>
struct scan_result {
  using sb = typename float_traits<F>::sbits;
  sb kmin, kmax, amin, amax;
  std::size_t special;               // elements with an all-ones exponent (inf or NaN)
  std::size_t zeros_pos, zeros_neg;  // elements with a zero exponent (±0, subnormals)
};

template <class F>
[[gnu::always_inline]] inline scan_result<F> scan_impl(const std::byte* p, std::size_t n) {
  using tr = float_traits<F>;
  using B = typename tr::bits;
  using S = typename tr::sbits;
  constexpr int w = 8 * sizeof(B);
  constexpr B exp_mask = B((B(1) << tr::ebits) - 1) << tr::fbits;
  constexpr B abs_mask = ~B(0) >> 1;
  S kmin = std::numeric_limits<S>::max(), kmax = std::numeric_limits<S>::min();
  S amin = std::numeric_limits<S>::max(), amax = 0;
  S special = 0, zpos = 0, zneg = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const B b = load<B>(p + i * sizeof(B));
    // signed order key: negative floats get their magnitude bits flipped.
    const S k = S(b ^ (B(S(b) >> (w - 1)) & abs_mask));
    const S a = S(b & abs_mask);
    kmin = std::min(kmin, k);
    kmax = std::max(kmax, k);
    amin = std::min(amin, a);
    amax = std::max(amax, a);
    special += S((b & exp_mask) == exp_mask);
    zpos += S((b & (exp_mask | ~abs_mask)) == 0);
    zneg += S((b & (exp_mask | ~abs_mask)) == ~abs_mask);
  }
  return {kmin, kmax, amin, amax, std::size_t(special), std::size_t(zpos), std::size_t(zneg)};
}

HETPIPE_CLONES scan_result<float> scan_f32(const std::byte* p, std::size_t n) {
  return scan_impl<float>(p, n);
}
HETPIPE_CLONES scan_result<double> scan_f64(const std::byte* p, std::size_t n) {
  return scan_impl<double>(p, n);
}

// f32 blocks whose nonzero elements span few exponents are summed exactly in doubles, without
// bins (vectorised; about 3x the binned loop on such data, measured on an AMD EPYC). With p0 =
// max(E_lo, 1) − 1 for the smallest nonzero exponent field E_lo of the block, E_hi the largest, D =
// E_hi − p0 and at most m = 2^g elements per accumulator:
//   s: every x is a multiple of u = 2^(p0 − 149) and |x| < 2^(D + 23)·u, so each running sum is a
//      multiple of u below 2^(D + 23 + g)·u ≤ 2^52·u: no addition rounds.
//   q: x² is exact in a double (48-bit significand). With σ = 2^k, k = 2(E_hi − 126) + g + 1,
//      x² < 2^(k − g − 1), so t = fl(σ + x²) lies in [σ, 2σ]: h = t − σ is exact and a multiple of
//      2^(k − 52) = 2^(2D + g − 5)·u², and l = x² − h (the rounding error of t, |l| ≤ 2^(k − 53))
//      is exact and a multiple of u². The sums of h stay below 2^(k − 1), those of l below
//      2^(2D + 2g − 6)·u² ≤ 2^52·u²: again no addition rounds.
// Hence D ≤ 29 − g (fast_window). fl(σ + x·x) and x·x − h have the same value with or without FMA
// contraction, because x·x is exact.
constexpr int fast_accs = 16;
constexpr std::size_t fast_retry = 1024;  // a block too wide is retried on its first 1024

// g for a block of n ≤ 4096 elements, and the widest window D it allows.
constexpr int fast_log2m(std::size_t n) {
  return n <= fast_retry ? 6 : 8;
}
constexpr int fast_window(std::size_t n) {
  return 29 - fast_log2m(n);
}
static_assert(fast_window(4096) == 21 && fast_window(1024) == 23);
static_assert(fast_log2m(4096) + fast_window(4096) + 23 <= 52 &&
              fast_log2m(1024) + fast_window(1024) + 23 <= 52 && fast_log2m(1024) >= 5);

struct fast_sums {
  double s[fast_accs], h[fast_accs], l[fast_accs];
};

// What sum_narrow() needs to know of an f32 block before summing it: its smallest and largest
// value (meaningless when the block holds a NaN), its largest |bits| (≥ 0x7f800000 when it holds
// an inf or a NaN) and its smallest nonzero |bits|, less one (~0u when all are ±0). Lighter than
// scan_f32, which also finds the smallest |bits| and counts zeros for the bins.
struct light_scan {
  float lo, hi;
  std::uint32_t amax, anz1;
};

// Portable versions; fast_sums_f32 and scan_light_f32 pick the AVX2 ones where the CPU has them.
// Element x into accumulator j (see above).
inline void fast_add(fast_sums& r, std::size_t j, double x, double sigma) {
  const double x2 = x * x;
  const double hi = (x2 + sigma) - sigma;
  r.s[j] += x;
  r.h[j] += hi;
  r.l[j] += x2 - hi;
}

void fast_sums_f32_generic(const std::byte* p, std::size_t n, double sigma, fast_sums& r) {
  r = {};
  for (std::size_t i = 0; i < n; ++i)
    fast_add(r, i % fast_accs, load<float>(p + i * sizeof(float)), sigma);
}

void scan_light_generic(const std::byte* p, std::size_t n, light_scan& r) {
  r = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 0, ~0u};
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = load<std::uint32_t>(p + i * 4);
    const float x = std::bit_cast<float>(b);
    r.lo = x < r.lo ? x : r.lo;
    r.hi = x > r.hi ? x : r.hi;
    r.amax = std::max(r.amax, b & 0x7fffffffu);
    r.anz1 = std::min(r.anz1, (b & 0x7fffffffu) - 1);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(HETPIPE_NO_CLONES)
#define HETPIPE_FAST_AVX2 1
// The sums with element i in accumulator i % 16: four registers of four doubles per sum. (GCC's
// vectorisation of the portable loop spilled the accumulators.) fl(σ + x·x) by FMA, which gives
// the same value (x·x is exact) on the multiply pipes, leaving the add pipes to the sums.
__attribute__((target("avx2,fma"))) void fast_sums_f32_avx2(const std::byte* p, std::size_t n,
                                                            std::size_t ahead, double sigma,
                                                            fast_sums& r) {
  static_assert(fast_accs == 16);
  const float* v = reinterpret_cast<const float*>(p);  // read only through _mm_loadu_ps
  const __m256d sg = _mm256_set1_pd(sigma);
  __m256d s[4], h[4], l[4];
  for (int k = 0; k < 4; ++k) s[k] = h[k] = l[k] = _mm256_setzero_pd();
  const std::size_t full = n / fast_accs * fast_accs;
  const std::byte* pf = p + n * sizeof(float);
  for (std::size_t i = 0; i < full; i += fast_accs) {
    if (ahead >= 64) {  // one line of the next block per line of this one
      __builtin_prefetch(pf);
      pf += 64;
      ahead -= 64;
    }
    for (int k = 0; k < 4; ++k) {
      const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 4 * k));
      const __m256d hi = _mm256_sub_pd(_mm256_fmadd_pd(x, x, sg), sg);
      s[k] = _mm256_add_pd(s[k], x);
      h[k] = _mm256_add_pd(h[k], hi);
      l[k] = _mm256_add_pd(l[k], _mm256_fmsub_pd(x, x, hi));  // x·x − hi: exact
    }
  }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_pd(r.s + 4 * k, s[k]);
    _mm256_storeu_pd(r.h + 4 * k, h[k]);
    _mm256_storeu_pd(r.l + 4 * k, l[k]);
  }
  for (std::size_t i = full; i < n; ++i)
    fast_add(r, i - full, load<float>(p + i * sizeof(float)), sigma);
}

__attribute__((target("avx2"))) void scan_light_avx2(const std::byte* p, std::size_t n,
                                                     light_scan& r) {
  const float* v = reinterpret_cast<const float*>(p);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), one = _mm256_set1_epi32(1);
  // Two sets of running values: one set's chains alone left half the issue slots idle.
  __m256 lo[2], hi[2];
  __m256i amax[2], anz1[2];
  for (int k = 0; k < 2; ++k) {
    lo[k] = _mm256_set1_ps(std::numeric_limits<float>::infinity());
    hi[k] = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    amax[k] = _mm256_setzero_si256();
    anz1[k] = _mm256_set1_epi32(-1);
  }
  const std::size_t full = n / 16 * 16;
  for (std::size_t i = 0; i < full; i += 16)
    for (int k = 0; k < 2; ++k) {
      const __m256 x = _mm256_loadu_ps(v + i + 8 * k);
      lo[k] = _mm256_min_ps(lo[k], x);
      hi[k] = _mm256_max_ps(hi[k], x);
      const __m256i a = _mm256_and_si256(_mm256_castps_si256(x), abs_mask);
      amax[k] = _mm256_max_epu32(amax[k], a);
      anz1[k] = _mm256_min_epu32(anz1[k], _mm256_sub_epi32(a, one));
    }
  alignas(32) float l8[16], h8[16];
  alignas(32) std::uint32_t a8[16], z8[16];
  for (int k = 0; k < 2; ++k) {
    _mm256_store_ps(l8 + 8 * k, lo[k]);
    _mm256_store_ps(h8 + 8 * k, hi[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(a8 + 8 * k), amax[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(z8 + 8 * k), anz1[k]);
  }
  scan_light_generic(p + full * 4, n - full, r);
  for (int k = 0; k < 16; ++k) {
    r.lo = l8[k] < r.lo ? l8[k] : r.lo;
    r.hi = h8[k] > r.hi ? h8[k] : r.hi;
    r.amax = std::max(r.amax, a8[k]);
    r.anz1 = std::min(r.anz1, z8[k]);
  }
}
#endif

// `ahead` bytes after the block are prefetched meanwhile (as bin_block does).
void fast_sums_f32(const std::byte* p, std::size_t n, [[maybe_unused]] std::size_t ahead,
                   double sigma, fast_sums& r) {
#ifdef HETPIPE_FAST_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return fast_sums_f32_avx2(p, n, ahead, sigma, r);
#endif
  fast_sums_f32_generic(p, n, sigma, r);
}

void scan_light_f32(const std::byte* p, std::size_t n, light_scan& r) {
#ifdef HETPIPE_FAST_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return scan_light_avx2(p, n, r);
#endif
  scan_light_generic(p, n, r);
}

template <class F>
class float_binner {
  using tr = float_traits<F>;
  using B = typename tr::bits;
  using S = typename tr::sbits;
  using s1 = typename tr::s1;
  using q1 = typename tr::q1;
  // Interleaved bin sets: element i goes to set i % nsets. 8 sets measured no faster on typical
  // data and slower on data spanning many exponents (the bins then overflow L1).
  static constexpr int nsets = 4;
  static constexpr unsigned nexp = 1u << tr::ebits;
  static constexpr unsigned emax_field = nexp - 1;
  static constexpr B frac_mask = (B(1) << tr::fbits) - 1;
  static constexpr B implicit = B(1) << tr::fbits;
  static constexpr B signbit = B(1) << (8 * sizeof(B) - 1);
  static constexpr bool two_level = std::is_same_v<F, float>;
  // f64: S bins are 64-bit, emptied after each block into wide_s_ (128-bit, per sign and E, one
  // set). Blocks spanning many exponents bin S straight into wide_s_ (and Q into set 0), because
  // emptying thousands of bins per block would cost more than the interleaving saves.
  static constexpr bool block_s = std::is_same_v<F, double>;
  static constexpr unsigned narrow_span = 64;

  // Level 1, indexed by sign << ebits | E. Every element adds M' = F | implicit bit, also for
  // E == 0 (zeros, subnormals), where pass 1 counts the elements so flush_l1() can take the
  // implicit bit back out: one `or` per element instead of a test and a select.
  // Rows are padded by 8 entries: unpadded, the sets lie a multiple of 4 KiB apart and the CPU
  // mistakes their loads for dependents of each other's stores (4K aliasing; 4x slower measured).
  static constexpr unsigned row = 2 * nexp + 8;
  s1 s1_[nsets][row] = {};
  q1 q1_[nsets][row] = {};
  u128 wide_s_[block_s ? row : 1] = {};
  std::uint64_t zeros_[2] = {};  // E == 0 elements per sign since the last flush
  // f32: second level, per exponent field, flushed into the mpz at end(). (f64 flushes level 1
  // straight into the mpz, every 2^20 elements and at end(): its Q bins are already 128-bit.)
  i128 s2_[two_level ? nexp : 1] = {};
  u128 q2_[two_level ? nexp : 1] = {};

  column_acc* acc_ = nullptr;
  std::size_t since_flush_ = 0;
  unsigned lo_e_ = nexp, hi_e_ = 0;    // exponent fields touched since the last flush
  unsigned lo_e2_ = nexp, hi_e2_ = 0;  // ... since the last fold into level 2 (f32)
  unsigned narrow_blocks_ = 0;         // sum_narrow() blocks since the last fold_l2()
  unsigned narrow_skip_ = 0;           // blocks left that skip sum_narrow()
  unsigned fail_streak_ = 0;           // sum_narrow() failures in a row
  S kmin_, kmax_;
  std::uint64_t n_ = 0, nan_ = 0, pinf_ = 0, ninf_ = 0;

  static int position(unsigned e) { return int(std::max(e, 1u)) - 1; }
  // The order key in signed form, as pass 1 keeps it.
  static S signed_key(B b) {
    constexpr B abs_mask = ~B(0) >> 1;
    return S(b ^ (B(S(b) >> (8 * sizeof(B) - 1)) & abs_mask));
  }

  [[gnu::always_inline]] inline void add(int set, B b) {
    const unsigned idx = unsigned(b >> tr::fbits);  // sign | E
    const B m = (b & frac_mask) | implicit;
    s1_[set][idx] += m;
    q1_[set][idx] += q1(m) * m;
  }

  // `ahead` bytes after the block are prefetched meanwhile, so that pass 1 of the next block finds
  // them in cache: pass 1 alone runs far ahead of memory, this loop far behind it.
  void bin_block(const std::byte* p, std::size_t n, std::size_t ahead) {
    constexpr std::size_t sz = sizeof(B);
    constexpr std::size_t line = 64, per_line = line / sz;
    static_assert(per_line % nsets == 0);
    const std::byte* pf = p + n * sz;
    std::size_t i = 0;
    for (; i + per_line <= n; i += per_line) {
      if (ahead >= line) {
        __builtin_prefetch(pf);
        pf += line;
        ahead -= line;
      }
      for (std::size_t j = 0; j < per_line; j += nsets)
        for (int k = 0; k < nsets; ++k) add(k, load<B>(p + (i + j + k) * sz));
    }
    for (; i < n; ++i) add(0, load<B>(p + i * sz));
  }

  // f64 blocks over many exponents: consecutive elements rarely share a bin, so one set will do.
  void bin_block_wide(const std::byte* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const B b = load<B>(p + i * sizeof(B));
      const unsigned idx = unsigned(b >> tr::fbits);
      const B m = (b & frac_mask) | implicit;
      wide_s_[idx] += m;
      q1_[0][idx] += q1(m) * m;
    }
  }

  // f64: moves the 64-bit S bins of exponent fields [lo, hi] into wide_s_.
  void empty_s1(unsigned lo, unsigned hi) {
    for (unsigned sign = 0; sign < 2; ++sign)
      for (unsigned e = lo; e <= hi; ++e) {
        u128 s = 0;
        for (int k = 0; k < nsets; ++k) {
          s += s1_[k][sign * nexp + e];
          s1_[k][sign * nexp + e] = 0;
        }
        wide_s_[block_s ? sign * nexp + e : 0] += s;
      }
  }

  void flush_l1() {
    for (unsigned sign = 0; sign < 2; ++sign) {
      for (unsigned e = lo_e_; e <= hi_e_; ++e) {
        // Sums over the sets fit: flush_every bounds the elements, not just those of one set.
        u128 s = 0, q = 0;
        if constexpr (block_s) {
          s = wide_s_[sign * nexp + e];
          wide_s_[sign * nexp + e] = 0;
        }
        for (int k = 0; k < nsets; ++k) {
          s += s1_[k][sign * nexp + e];
          q += q1_[k][sign * nexp + e];
          s1_[k][sign * nexp + e] = 0;
          q1_[k][sign * nexp + e] = 0;
        }
        if (e == emax_field) continue;  // inf/NaN land here; they never count in the sums
        if (e == 0 && zeros_[sign]) {
          // Σ(F + 2^f) = S' and Σ(F + 2^f)² = Q': take the implicit bit back out.
          const u128 c = zeros_[sign];
          q = q + (c << (2 * tr::fbits)) - (s << (tr::fbits + 1));
          s -= c << tr::fbits;
        }
        if (s == 0 && q == 0) continue;
        const i128 ss = sign ? -i128(s) : i128(s);
        if constexpr (two_level) {
          s2_[e] += ss;
          q2_[e] += q;
        } else {
          acc_->add_s_bin(position(e), ss);
          acc_->add_q_bin(2 * position(e), q);
        }
      }
    }
    lo_e2_ = std::min(lo_e2_, lo_e_);
    hi_e2_ = std::max(hi_e2_, hi_e_);
    lo_e_ = nexp;
    hi_e_ = 0;
    zeros_[0] = zeros_[1] = 0;
    since_flush_ = 0;
  }

  // f32: level 2 into the mpz sums (at end(), and before its bins could overflow).
  void fold_l2() {
    if constexpr (two_level) {
      for (unsigned e = lo_e2_; e <= hi_e2_; ++e) {
        if (s2_[e] != 0) acc_->add_s_bin(position(e), s2_[e]);
        if (q2_[e] != 0) acc_->add_q_bin(2 * position(e), q2_[e]);
        s2_[e] = 0;
        q2_[e] = 0;
      }
    }
    lo_e2_ = nexp;
    hi_e2_ = 0;
    narrow_blocks_ = 0;
  }

  enum class narrow { summed, wide, special };

  // f32: sums a block of finite elements straight into level 2 when its exponents are few enough
  // for fast_sums_f32 (see there); otherwise the block is left to the bins.
  narrow sum_narrow(const std::byte* p, std::size_t n, std::size_t ahead) {
    if constexpr (!two_level) {
      return narrow::special;
    } else {
      static_assert(tr::block <= std::size_t(fast_accs) << 8);
      light_scan ls;
      scan_light_f32(p, n, ls);
      if (ls.amax >= 0x7f800000u) return narrow::special;  // inf or NaN
      const bool zeros_only = ls.anz1 == ~0u;
      const int e_lo = zeros_only ? 0 : int((ls.anz1 + 1) >> tr::fbits);
      const int e_hi = int(ls.amax >> tr::fbits);
      const int p0 = position(unsigned(e_lo));
      const int span = e_hi - p0;
      if (span > fast_window(n)) return narrow::wide;
      if (ls.lo == 0 || ls.hi == 0) {
        // min or max is a zero: only the keys tell −0 from +0.
        const scan_result<F> r = scan_f32(p, n);
        kmin_ = std::min(kmin_, r.kmin);
        kmax_ = std::max(kmax_, r.kmax);
      } else {
        kmin_ = std::min(kmin_, signed_key(std::bit_cast<B>(ls.lo)));
        kmax_ = std::max(kmax_, signed_key(std::bit_cast<B>(ls.hi)));
      }
      if (zeros_only) return narrow::summed;
      const int g = fast_log2m(n), k = 2 * (e_hi - 126) + g + 1;
      fast_sums f;
      fast_sums_f32(p, n, ahead, std::ldexp(1.0, k), f);
      // Each sum is an integer multiple of its unit below 2^53: the scaled values convert exactly.
      const double to_s = std::ldexp(1.0, 149 - p0), to_h = std::ldexp(1.0, 52 - k),
                   to_l = std::ldexp(1.0, 298 - 2 * p0);
      std::int64_t s = 0, h = 0, l = 0;
      for (int j = 0; j < fast_accs; ++j) {
        s += std::int64_t(f.s[j] * to_s);
        h += std::int64_t(f.h[j] * to_h);
        l += std::int64_t(f.l[j] * to_l);
      }
      const i128 q = (i128(h) << (2 * span + g - 5)) + l;  // h counts units of 2^(k − 52)
      const unsigned e = unsigned(p0) + 1;                 // position(e) == p0
      s2_[e] += s;
      q2_[e] += u128(q);
      lo_e2_ = std::min(lo_e2_, e);
      hi_e2_ = std::max(hi_e2_, e);
      // A block adds below 2^(2·21 + 46 + 12) = 2^100 to a q2_ bin.
      if (++narrow_blocks_ == (1u << 20)) fold_l2();
      return narrow::summed;
    }
  }

  // min/max and counts of a block holding inf or NaN.
  void scan_slow(const std::byte* p, std::size_t n) {
    constexpr B abs_mask = ~B(0) >> 1;
    for (std::size_t i = 0; i < n; ++i) {
      const B b = load<B>(p + i * sizeof(B));
      const unsigned e = unsigned(b >> tr::fbits) & emax_field;
      // NaNs still land in (and must be cleared from) their bin, so they widen the flush range.
      lo_e_ = std::min(lo_e_, e);
      hi_e_ = std::max(hi_e_, e);
      zeros_[b >> (8 * sizeof(B) - 1)] += e == 0;
      if (e == emax_field) {
        if (b & frac_mask) {
          ++nan_;
          continue;
        }
        ++(b & signbit ? ninf_ : pinf_);
      }
      const S k = S(b ^ (B(S(b) >> (8 * sizeof(B) - 1)) & abs_mask));
      kmin_ = std::min(kmin_, k);
      kmax_ = std::max(kmax_, k);
    }
  }

 public:
  void begin(column_acc& acc) {
    acc_ = &acc;
    kmin_ = std::numeric_limits<S>::max();
    kmax_ = std::numeric_limits<S>::min();
    n_ = nan_ = pinf_ = ninf_ = 0;
  }

  void process(const std::byte* p, std::size_t n) {
    while (n) {
      std::size_t m = std::min({n, tr::block, tr::flush_every - since_flush_});
      if (narrow_skip_ > 0) {
        --narrow_skip_;
      } else {
        const std::size_t ahead = std::min(n - m, tr::block) * sizeof(B);
        narrow r = sum_narrow(p, m, ahead);
        if (r == narrow::wide && m > fast_retry) {
          // Usually one outlier (a value near zero) widens the window: the block's first quarter
          // may still be narrow, and only the part holding the outlier goes to the bins.
          m = fast_retry;
          r = sum_narrow(p, m, ahead);
        }
        if (r == narrow::summed) {
          fail_streak_ = 0;
          n_ += m;
          p += m * sizeof(B);
          n -= m;
          continue;
        }
        // Failing again and again means wide data: then skip the light pass (6% of the bins'
        // time) for up to 64 blocks, doubling.
        if (++fail_streak_ >= 3) narrow_skip_ = 1u << std::min(fail_streak_ - 3, 6u);
      }
      scan_result<F> r;
      if constexpr (std::is_same_v<F, float>)
        r = scan_f32(p, m);
      else
        r = scan_f64(p, m);
      n_ += m;
      if (r.special) {
        scan_slow(p, m);
      } else {
        kmin_ = std::min(kmin_, r.kmin);
        kmax_ = std::max(kmax_, r.kmax);
        lo_e_ = std::min(lo_e_, unsigned(B(r.amin) >> tr::fbits));
        hi_e_ = std::max(hi_e_, unsigned(B(r.amax) >> tr::fbits));
        zeros_[0] += r.zeros_pos;
        zeros_[1] += r.zeros_neg;
      }
      const unsigned lo = unsigned(B(r.amin) >> tr::fbits), hi = unsigned(B(r.amax) >> tr::fbits);
      if (!block_s) {
        bin_block(p, m, std::min(n - m, tr::block) * sizeof(B));
      } else if (r.special || hi - lo >= narrow_span) {
        bin_block_wide(p, m);
      } else {
        bin_block(p, m, std::min(n - m, tr::block) * sizeof(B));
        empty_s1(lo, hi);
      }
      since_flush_ += m;
      if (since_flush_ == tr::flush_every) flush_l1();
      p += m * sizeof(B);
      n -= m;
    }
  }

  void end() {
    flush_l1();
    fold_l2();
    column_acc& a = *acc_;
    const std::uint64_t counted = n_ - nan_;
    a.count += counted;
    a.nan_count += nan_;
    a.posinf += pinf_;
    a.neginf += ninf_;
    if (counted) {
      a.min_key = std::min<std::uint64_t>(a.min_key, B(kmin_) ^ signbit);
      a.max_key = std::max<std::uint64_t>(a.max_key, B(kmax_) ^ signbit);
    }
    acc_ = nullptr;
  }
};

// ---------------------------------------------------------------------------------------------
// Integers

template <class T>
struct int_partial {
  static constexpr bool is_signed = std::is_signed_v<T>;
  static constexpr bool wide = sizeof(T) == 8;
  // Σx fits i128 (u64: u128 would do too, but |Σ| < 2^64 · 2^63 either way for any real input).
  i128 s = 0;
  u128 q_lo = 0;           // Σx² mod 2^128
  std::uint64_t q_hi = 0;  // Σx² / 2^128 (64-bit types only)
  T lo = std::numeric_limits<T>::max(), hi = std::numeric_limits<T>::min();
  std::uint64_t n = 0;
};

// Narrow types: 32-bit partial sums over blocks short enough not to overflow, which vectorise well.
template <class T>
[[gnu::always_inline]] inline void int_block_narrow(const T* __restrict v, std::size_t n,
                                                    int_partial<T>& r) {
  static_assert(sizeof(T) <= 2);
  using sq_t = std::conditional_t<sizeof(T) == 1, std::uint32_t, std::uint64_t>;
  using wide_t = std::conditional_t<std::is_signed_v<T>, std::int32_t, std::uint32_t>;
  std::int32_t s = 0;  // |x| ≤ 2^16, n ≤ 2^14
  sq_t q = 0;          // x² ≤ 2^16 (8-bit) · 2^14, or ≤ 2^32 · 2^14
  T lo = r.lo, hi = r.hi;
  for (std::size_t i = 0; i < n; ++i) {
    const T x = v[i];
    s += x;
    q += sq_t(wide_t(x) * wide_t(x));
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  r.s += s;
  r.q_lo += q;
  r.lo = lo;
  r.hi = hi;
}

// 32-bit types: x² < 2^64 is summed as its two 32-bit halves in 64-bit accumulators.
template <class T>
[[gnu::always_inline]] inline void int_block_32(const T* __restrict v, std::size_t n,
                                                int_partial<T>& r) {
  static_assert(sizeof(T) == 4);
  std::int64_t s = 0;
  std::uint64_t q_lo = 0, q_hi = 0;
  T lo = r.lo, hi = r.hi;
  for (std::size_t i = 0; i < n; ++i) {
    const T x = v[i];
    s += x;
    const std::uint32_t a = std::is_signed_v<T> && x < 0 ? 0u - std::uint32_t(x) : std::uint32_t(x);
    const std::uint64_t sq = std::uint64_t(a) * a;
    q_lo += std::uint32_t(sq);
    q_hi += sq >> 32;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  r.s += s;
  r.q_lo += (u128(q_hi) << 32) + q_lo;
  r.lo = lo;
  r.hi = hi;
}

template <class T>
[[gnu::always_inline]] inline void int_block_64(const T* __restrict v, std::size_t n,
                                                int_partial<T>& r) {
  static_assert(sizeof(T) == 8);
  i128 s = 0;
  u128 q = r.q_lo;
  std::uint64_t carry = 0;
  T lo = r.lo, hi = r.hi;
  for (std::size_t i = 0; i < n; ++i) {
    const T x = v[i];
    s += x;
    const std::uint64_t a = std::is_signed_v<T> && x < 0 ? 0 - std::uint64_t(x) : std::uint64_t(x);
    const u128 sq = u128(a) * a;
    q += sq;
    carry += q < sq;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  r.s += s;
  r.q_lo = q;
  r.q_hi += carry;
  r.lo = lo;
  r.hi = hi;
}

// Blocks are aligned copies when the input is not aligned for T (the loops index T arrays).
template <class T>
[[gnu::always_inline]] inline void int_process_impl(const std::byte* p, std::size_t n,
                                                    int_partial<T>& r) {
  constexpr std::size_t blk = sizeof(T) <= 2 ? (1u << 14) : sizeof(T) == 4 ? (1u << 20) : ~0u;
  alignas(64) T buf[block_elems];
  r.n += n;
  while (n) {
    std::size_t m = std::min(n, blk);
    const T* v;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0) {
      v = reinterpret_cast<const T*>(p);
    } else {
      m = std::min(m, block_elems);
      std::memcpy(buf, p, m * sizeof(T));
      v = buf;
    }
    if constexpr (sizeof(T) <= 2)
      int_block_narrow(v, m, r);
    else if constexpr (sizeof(T) == 4)
      int_block_32(v, m, r);
    else
      int_block_64(v, m, r);
    p += m * sizeof(T);
    n -= m;
  }
}

#define HETPIPE_INT_PROCESS(T, name)                                               \
  HETPIPE_CLONES void name(const std::byte* p, std::size_t n, int_partial<T>& r) { \
    int_process_impl<T>(p, n, r);                                                  \
  }
HETPIPE_INT_PROCESS(std::uint8_t, int_process_u8)
HETPIPE_INT_PROCESS(std::int8_t, int_process_i8)
HETPIPE_INT_PROCESS(std::uint16_t, int_process_u16)
HETPIPE_INT_PROCESS(std::int16_t, int_process_i16)
HETPIPE_INT_PROCESS(std::uint32_t, int_process_u32)
HETPIPE_INT_PROCESS(std::int32_t, int_process_i32)
HETPIPE_INT_PROCESS(std::uint64_t, int_process_u64)
HETPIPE_INT_PROCESS(std::int64_t, int_process_i64)
#undef HETPIPE_INT_PROCESS

template <class T>
class int_kernel {
  int_partial<T> r_;
  column_acc* acc_ = nullptr;

 public:
  void begin(column_acc& acc) {
    acc_ = &acc;
    r_ = {};
  }
  void process(const std::byte* p, std::size_t n) {
    if constexpr (std::is_same_v<T, std::uint8_t>) int_process_u8(p, n, r_);
    if constexpr (std::is_same_v<T, std::int8_t>) int_process_i8(p, n, r_);
    if constexpr (std::is_same_v<T, std::uint16_t>) int_process_u16(p, n, r_);
    if constexpr (std::is_same_v<T, std::int16_t>) int_process_i16(p, n, r_);
    if constexpr (std::is_same_v<T, std::uint32_t>) int_process_u32(p, n, r_);
    if constexpr (std::is_same_v<T, std::int32_t>) int_process_i32(p, n, r_);
    if constexpr (std::is_same_v<T, std::uint64_t>) int_process_u64(p, n, r_);
    if constexpr (std::is_same_v<T, std::int64_t>) int_process_i64(p, n, r_);
  }
  void end() {
    column_acc& a = *acc_;
    if (r_.n) {
      a.count += r_.n;
      a.add_s_bin(0, r_.s);
      a.add_q_bin(0, r_.q_lo);
      a.add_q_bin(128, r_.q_hi);
      const auto key = [](T x) {
        if constexpr (std::is_signed_v<T>)
          return std::uint64_t(std::int64_t(x)) ^ (std::uint64_t(1) << 63);
        else
          return std::uint64_t(x);
      };
      a.min_key = std::min(a.min_key, key(r_.lo));
      a.max_key = std::max(a.max_key, key(r_.hi));
    }
    acc_ = nullptr;
  }
};

// ---------------------------------------------------------------------------------------------

template <class Kernel, std::size_t Size>
void run(Kernel& k, const std::byte* data, std::size_t rows, std::size_t cols, column_acc* acc) {
  if (cols == 1) {
    k.begin(acc[0]);
    k.process(data, rows);
    k.end();
    return;
  }
  // Bands of rows, each transposed (read once, row after row) into a scratch buffer that holds
  // every column of the band contiguously; then each column of it folds into its accumulator.
  // (Gathering one column at a time from the whole block read it from memory once per column: a
  // job over 256 MiB of 16 / 256 f32 columns ran at 2.1-2.4 / 1.4-1.5 GB/s, now 4.0-4.4 / 2.6-3.2
  // on the 2-core development box.)
  const std::size_t stride = cols * Size;
  // Very wide rows: still 8 rows per band (each column's fold costs an end()), up to 16 MiB.
  const std::size_t band = std::clamp<std::size_t>(
      band_bytes / stride, std::clamp<std::size_t>((16 << 20) / stride, 1, 8), max_band_rows);
  // Columns one cache line more than a multiple of 64 bytes apart: a multiple of 4 KiB would put
  // every column's stores in the same L1 set.
  const std::size_t pitch = (band * Size + 64 - 1) / 64 * 64 / Size + 64 / Size;
  thread_local std::vector<std::byte> scratch;
  scratch.resize(std::max(scratch.size(), pitch * stride));
  std::byte* t = scratch.data();
  for (std::size_t r0 = 0; r0 < rows; r0 += band) {
    const std::size_t m = std::min(band, rows - r0);
    const std::byte* b = data + r0 * stride;
    // Loads stream through the band; the stores of 16 rows fill one cache line per column.
    for (std::size_t i = 0; i < m; ++i) {
      const std::byte* row = b + i * stride;
      // The row 8 rows ahead (a prefetch past the end of the block cannot fault).
      for (std::size_t o = 0; o < stride; o += 64) __builtin_prefetch(row + 8 * stride + o);
      for (std::size_t j = 0; j < cols; ++j)
        std::memcpy(t + (j * pitch + i) * Size, row + j * Size, Size);
    }
    for (std::size_t j = 0; j < cols; ++j) {
      k.begin(acc[j]);
      k.process(t + j * pitch * Size, m);
      k.end();
    }
  }
}

template <class T>
void run_int(const std::byte* data, std::size_t rows, std::size_t cols, column_acc* acc) {
  int_kernel<T> k;
  run<int_kernel<T>, sizeof(T)>(k, data, rows, cols, acc);
}

template <class F>
void run_float(const std::byte* data, std::size_t rows, std::size_t cols, column_acc* acc) {
  // Large (f64: 512 KiB, mostly untouched); one per thread, reused across calls.
  thread_local auto k = std::make_unique<float_binner<F>>();
  run<float_binner<F>, sizeof(F)>(*k, data, rows, cols, acc);
}

}  // namespace

void accumulate(dtype t, const std::byte* data, std::size_t rows, std::size_t cols,
                column_acc* acc) {
  if (rows == 0 || cols == 0) return;
  switch (t) {
    case dtype::u8:
      return run_int<std::uint8_t>(data, rows, cols, acc);
    case dtype::i8:
      return run_int<std::int8_t>(data, rows, cols, acc);
    case dtype::u16:
      return run_int<std::uint16_t>(data, rows, cols, acc);
    case dtype::i16:
      return run_int<std::int16_t>(data, rows, cols, acc);
    case dtype::u32:
      return run_int<std::uint32_t>(data, rows, cols, acc);
    case dtype::i32:
      return run_int<std::int32_t>(data, rows, cols, acc);
    case dtype::u64:
      return run_int<std::uint64_t>(data, rows, cols, acc);
    case dtype::i64:
      return run_int<std::int64_t>(data, rows, cols, acc);
    case dtype::f32:
      return run_float<float>(data, rows, cols, acc);
    case dtype::f64:
      return run_float<double>(data, rows, cols, acc);
  }
}

}  // namespace hetpipe::host

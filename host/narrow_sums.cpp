// Exact sums of narrow float blocks in doubles (see narrow_sums.hpp).
//
// Extraction. Let σ = 2^k and y a double with |y| ≤ 2^(k − g − 1), g ≥ 0. Then σ + y lies in
// [σ/2, 3σ/2], so t = fl(σ + y) lies in [σ/2, 2σ] and h = t − σ is exact (Sterbenz) and a multiple
// of 2^(k − 53); r = y − h is the rounding error of σ + y, hence a double, computed exactly, with
// |r| ≤ 2^(k − 53). If y is a multiple of a power of two v ≤ 2^(k − 53), so are h and r. (If
// v > 2^(k − 53) nothing rounds: h = y, r = 0.) Over m ≤ 2^g such y, every running sum of the h
// stays below m·(2^(k − g − 1) + 2^(k − 53)) < 2^k = 2^53 · 2^(k − 53), and every running sum of
// the r, a multiple of v, below 2^(k − 53 + g): all these additions are exact while
// 2^(k − 53 + g) ≤ 2^53·v. Each element goes to one of A accumulators; m = ⌈n / A⌉ ≤ 2^g.
//
// f32 (A = 16): x is a multiple of u = 2^(p0 − 149) with |x| < 2^(D + 23)·u.
//   s: the x themselves, no extraction: running sums below 2^(D + 23 + g)·u ≤ 2^52·u.
//   Both hold while D ≤ 29 − g.
//   q: x² is exact in a double (a 48-bit significand) and < 2^T, T = 2(E_hi − 126). Extraction
//      with k = T + g + 1, v = u²: h a multiple of 2^(k − 52) = 2^(2D + g − 5)·u² (x² ≥ 0, so
//      t ≥ σ), and the sums of r exact while 2^(k − 53 + g) = 2^(2D + 2g − 6)·u² ≤ 2^52·u².
// f64 (A = 4): x is a multiple of u = 2^(p0 − 1074) with |x| < X = 2^(E_hi − 1022) = 2^(D + 52)·u.
//   s: one extraction, k = E_hi − 1022 + g + 1, v = u: exact while D + 2g ≤ 53. Σh counts units
//      of 2^(k − 53) = 2^(D + g)·u.
//   q: x² = P + e exactly, P = fl(x·x) and e = fma(x, x, −P), both multiples of u² (with p0 ≥ 600
//      every nonzero x is normal and nothing underflows); P ≤ 2^T, T = 2(E_hi − 1022), |e| ≤
//      2^(T − 53). P goes through three extractions, k1 = T + g + 1, k2 = k1 − 52 + g,
//      k3 = k2 − 52 + g (each one's r fits the next one's bound), the last r summed as is; e
//      through two, ke1 = T − 53 + g + 1, ke2 = ke1 − 52 + g. With T − log2(u²) = 2D + 104 the
//      last sums are exact while 2D + 4g ≤ 105 (P) and 2D + 3g ≤ 106 (e). Σh of each level
//      counts units of 2^(k − 53) = 2^shift·u² with shift = 2D + g + 52, 2D + 2g, 2D + 3g − 52
//      (P) and 2D + g − 1, 2D + 2g − 53 (e); a negative shift is exact, as σ3 and σe2 are
//      multiples of u² (hence so are the h).
// The sums are taken out as integers (each a multiple of its unit below 2^53 in magnitude) by
// exact power-of-two scaling. Nothing here may be contracted into an FMA that the text does not
// name (this file is compiled with -ffp-contract=off).
#include "host/narrow_sums.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(HETPIPE_NO_CLONES)
#define HETPIPE_NARROW_AVX2 1
#endif

namespace hetpipe::host::narrow {
namespace {

template <class T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#ifdef HETPIPE_NARROW_AVX2
bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

// g for a block of n ≥ 1 elements over A accumulators: m = ⌈n / A⌉ ≤ 2^g.
constexpr int log2m(std::size_t n, std::size_t accs) {
  return int(std::bit_width((std::max<std::size_t>(n, 1) + accs - 1) / accs - 1));
}

// (σ + y) − σ, and y minus it (see the top of the file).
inline double extract(double sigma, double y, double& r) {
  const double h = (sigma + y) - sigma;
  r = y - h;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Scans

// r takes in one more element's (or one vector lane's) values.
template <class F, class B>
inline void fold(light<F, B>& r, F lo, F hi, B amax, B anz1) {
  r.lo = lo < r.lo ? lo : r.lo;
  r.hi = hi > r.hi ? hi : r.hi;
  r.amax = std::max(r.amax, amax);
  r.anz1 = std::min(r.anz1, anz1);
}

template <class F, class B>
void scan_generic(const std::byte* p, std::size_t n, light<F, B>& r) {
  constexpr B abs_mask = ~B(0) >> 1;
  r = {std::numeric_limits<F>::infinity(), -std::numeric_limits<F>::infinity(), 0, ~B(0)};
  for (std::size_t i = 0; i < n; ++i) {
    const B b = load<B>(p + i * sizeof(B));
    const F x = std::bit_cast<F>(b);
    fold(r, x, x, B(b & abs_mask), B((b & abs_mask) - 1));
  }
}

#ifdef HETPIPE_NARROW_AVX2
__attribute__((target("avx2"))) void scan_avx2(const std::byte* p, std::size_t n, light32& r) {
  const float* v = reinterpret_cast<const float*>(p);  // read only through _mm256_loadu_ps
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
  scan_generic(p + full * 4, n - full, r);
  for (int k = 0; k < 16; ++k) fold(r, l8[k], h8[k], a8[k], z8[k]);
}

// |bits| < 2^63, so signed 64-bit compares order them (AVX2 has no unsigned 64-bit min/max).
__attribute__((target("avx2"))) void scan_avx2(const std::byte* p, std::size_t n, light64& r) {
  const double* v = reinterpret_cast<const double*>(p);
  const __m256i abs_mask = _mm256_set1_epi64x(0x7fffffffffffffff), zero = _mm256_setzero_si256();
  __m256d lo[2], hi[2];
  __m256i amax[2], anz[2];  // anz: smallest nonzero |bits| (INT64_MAX when none)
  for (int k = 0; k < 2; ++k) {
    lo[k] = _mm256_set1_pd(std::numeric_limits<double>::infinity());
    hi[k] = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
    amax[k] = zero;
    anz[k] = abs_mask;
  }
  const std::size_t full = n / 8 * 8;
  for (std::size_t i = 0; i < full; i += 8)
    for (int k = 0; k < 2; ++k) {
      const __m256d x = _mm256_loadu_pd(v + i + 4 * k);
      lo[k] = _mm256_min_pd(lo[k], x);
      hi[k] = _mm256_max_pd(hi[k], x);
      const __m256i a = _mm256_and_si256(_mm256_castpd_si256(x), abs_mask);
      amax[k] = _mm256_blendv_epi8(amax[k], a, _mm256_cmpgt_epi64(a, amax[k]));
      // A zero becomes INT64_MAX: a | (all ones >> 1).
      const __m256i c = _mm256_or_si256(a, _mm256_srli_epi64(_mm256_cmpeq_epi64(a, zero), 1));
      anz[k] = _mm256_blendv_epi8(anz[k], c, _mm256_cmpgt_epi64(anz[k], c));
    }
  alignas(32) double l4[8], h4[8];
  alignas(32) std::uint64_t a4[8], z4[8];
  for (int k = 0; k < 2; ++k) {
    _mm256_store_pd(l4 + 4 * k, lo[k]);
    _mm256_store_pd(h4 + 4 * k, hi[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(a4 + 4 * k), amax[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(z4 + 4 * k), anz[k]);
  }
  scan_generic(p + full * 8, n - full, r);
  for (int k = 0; k < 8; ++k)  // anz1 form: all ones for "no nonzero element"
    fold(r, l4[k], h4[k], a4[k], z4[k] == 0x7fffffffffffffffu ? ~std::uint64_t(0) : z4[k] - 1);
}
#endif

// ---------------------------------------------------------------------------------------------
// f32 sums: s, h, l per accumulator

constexpr std::size_t accs32 = 16;

struct sums32 {
  double s[accs32], h[accs32], l[accs32];
};

inline void add32(sums32& r, std::size_t j, double x, double sigma) {
  double l;
  r.h[j] += extract(sigma, x * x, l);  // x·x is exact
  r.s[j] += x;
  r.l[j] += l;
}

void sums32_generic(const std::byte* p, std::size_t n, double sigma, sums32& r) {
  r = {};
  for (std::size_t i = 0; i < n; ++i)
    add32(r, i % accs32, load<float>(p + i * sizeof(float)), sigma);
}

#ifdef HETPIPE_NARROW_AVX2
// Element i in accumulator i % 16: four registers of four doubles per sum. (GCC's vectorisation
// of the portable loop spilled the accumulators.) fl(σ + x·x) by FMA, the same value as x·x is
// exact; x·x − h by FMA, exact. Some sums are taken as fma(v, 1, acc), the same sum: on AMD Zen
// adds and conversions run on two pipes and FMAs on two others, and this split gives each pair 7
// of every 14 operations. With every sum on the add pipes this loop took 2.45 cycles per 4
// elements on one L1-resident block, 1.7 with the split; sum_f32 over a 1 MiB buffer went from
// 15.8 to 17.8 GB/s (EPYC 7003 at 2.45 GHz, medians of 10 interleaved runs). The same split of
// the f64 loop's extractions measured slower, so sums64_avx2 keeps its adds.
__attribute__((target("avx2,fma"))) void sums32_avx2(const std::byte* p, std::size_t n,
                                                     std::size_t ahead, double sigma, sums32& r) {
  const float* v = reinterpret_cast<const float*>(p);  // read only through _mm_loadu_ps
  const __m256d sg = _mm256_set1_pd(sigma), one = _mm256_set1_pd(1.0);
  __m256d s[4], h[4], l[4];
  for (int k = 0; k < 4; ++k) s[k] = h[k] = l[k] = _mm256_setzero_pd();
  const std::size_t full = n / accs32 * accs32;
  const std::byte* pf = p + n * sizeof(float);
  for (std::size_t i = 0; i < full; i += accs32) {
    if (ahead >= 64) {  // one line of the next block per line of this one
      prefetch_next(pf);
      pf += 64;
      ahead -= 64;
    }
    for (int k = 0; k < 4; ++k) {
      const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 4 * k));
      const __m256d hi = _mm256_sub_pd(_mm256_fmadd_pd(x, x, sg), sg);
      s[k] = k % 2 ? _mm256_add_pd(s[k], x) : _mm256_fmadd_pd(x, one, s[k]);
      h[k] = _mm256_fmadd_pd(hi, one, h[k]);
      l[k] = _mm256_add_pd(l[k], _mm256_fmsub_pd(x, x, hi));
    }
  }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_pd(r.s + 4 * k, s[k]);
    _mm256_storeu_pd(r.h + 4 * k, h[k]);
    _mm256_storeu_pd(r.l + 4 * k, l[k]);
  }
  for (std::size_t i = full; i < n; ++i)
    add32(r, i - full, load<float>(p + i * sizeof(float)), sigma);
}
#endif

// ---------------------------------------------------------------------------------------------
// f64 sums: nine per accumulator

constexpr std::size_t accs64 = 4;
enum { HS, RS, H1, H2, H3, R3, HE1, HE2, RE2, nsums64 };

struct sums64 {
  double v[nsums64][accs64];
};

// σ for s, P's three levels and e's two.
struct sigmas64 {
  double s, p1, p2, p3, e1, e2;
};

inline void add64(sums64& r, std::size_t j, double x, const sigmas64& sg) {
  double y, z;
  r.v[HS][j] += extract(sg.s, x, y);
  r.v[RS][j] += y;
  const double P = x * x, e = std::fma(x, x, -P);
  r.v[H1][j] += extract(sg.p1, P, y);
  r.v[H2][j] += extract(sg.p2, y, z);
  r.v[H3][j] += extract(sg.p3, z, y);
  r.v[R3][j] += y;
  r.v[HE1][j] += extract(sg.e1, e, y);
  r.v[HE2][j] += extract(sg.e2, y, z);
  r.v[RE2][j] += z;
}

void sums64_generic(const std::byte* p, std::size_t n, const sigmas64& sg, sums64& r) {
  r = {};
  for (std::size_t i = 0; i < n; ++i) add64(r, i % accs64, load<double>(p + i * 8), sg);
}

#ifdef HETPIPE_NARROW_AVX2
__attribute__((target("avx2,fma"))) inline __m256d extract4(__m256d sigma, __m256d y, __m256d& r) {
  const __m256d h = _mm256_sub_pd(_mm256_add_pd(sigma, y), sigma);
  r = _mm256_sub_pd(y, h);
  return h;
}

__attribute__((target("avx2,fma"))) void sums64_avx2(const std::byte* p, std::size_t n,
                                                     std::size_t ahead, const sigmas64& sg,
                                                     sums64& r) {
  const double* v = reinterpret_cast<const double*>(p);
  const __m256d ss = _mm256_set1_pd(sg.s), s1 = _mm256_set1_pd(sg.p1), s2 = _mm256_set1_pd(sg.p2),
                s3 = _mm256_set1_pd(sg.p3), se1 = _mm256_set1_pd(sg.e1),
                se2 = _mm256_set1_pd(sg.e2), one = _mm256_set1_pd(1.0);
  __m256d a[nsums64];
  for (auto& x : a) x = _mm256_setzero_pd();
  const std::size_t full = n / accs64 * accs64;
  const std::byte* pf = p + n * 8;
  for (std::size_t i = 0; i < full; i += accs64) {
    if (i % 8 == 0 && ahead >= 64) {  // one line of the next block per line of this one
      prefetch_next(pf);
      pf += 64;
      ahead -= 64;
    }
    // The accumulations as fma(h, 1, acc), the same sum: on CPUs whose adds and FMAs use
    // different pipes (AMD Zen) they then share the work with the extractions' adds.
    __m256d y, z;
    const __m256d x = _mm256_loadu_pd(v + i);
    a[HS] = _mm256_fmadd_pd(extract4(ss, x, y), one, a[HS]);
    a[RS] = _mm256_fmadd_pd(y, one, a[RS]);
    __m256d P = _mm256_mul_pd(x, x);
    __asm__("" : "+x"(P));  // P is the rounded product: never fused into σ + x·x below
    const __m256d e = _mm256_fmsub_pd(x, x, P);
    a[H1] = _mm256_fmadd_pd(extract4(s1, P, y), one, a[H1]);
    a[H2] = _mm256_fmadd_pd(extract4(s2, y, z), one, a[H2]);
    a[H3] = _mm256_fmadd_pd(extract4(s3, z, y), one, a[H3]);
    a[R3] = _mm256_fmadd_pd(y, one, a[R3]);
    a[HE1] = _mm256_fmadd_pd(extract4(se1, e, y), one, a[HE1]);
    a[HE2] = _mm256_fmadd_pd(extract4(se2, y, z), one, a[HE2]);
    a[RE2] = _mm256_fmadd_pd(z, one, a[RE2]);
  }
  for (int k = 0; k < nsums64; ++k) _mm256_storeu_pd(r.v[k], a[k]);
  for (std::size_t i = full; i < n; ++i) add64(r, i - full, load<double>(p + i * 8), sg);
}
#endif

// Σ over the accumulators of acc·scale, each an integer below 2^53 in magnitude.
template <std::size_t A>
std::int64_t take(const double (&acc)[A], double scale) {
  std::int64_t t = 0;
  for (double x : acc) t += std::int64_t(x * scale);
  return t;
}

}  // namespace

void u256::add_shifted(std::int64_t v, int shift) {
  if (v == 0) return;
  if (shift < 0) {
    v >>= -shift;  // exact: the caller's v is a multiple of 2^−shift
    shift = 0;
  }
  const bool neg = v < 0;
  const u128 mag = neg ? u128(0) - u128(i128(v)) : u128(v);
  u256 t;
  if (shift >= 128) {
    t.hi = mag << (shift - 128);
  } else if (shift == 0) {
    t.lo = mag;
  } else {
    t.lo = mag << shift;
    t.hi = mag >> (128 - shift);
  }
  if (neg) {  // two's complement of t
    t.lo = ~t.lo + 1;
    t.hi = ~t.hi + (t.lo == 0);
  }
  add(t);
}

void scan(const std::byte* p, std::size_t n, light32& r) {
#ifdef HETPIPE_NARROW_AVX2
  if (has_avx2_fma()) return scan_avx2(p, n, r);
#endif
  scan_generic(p, n, r);
}

void scan(const std::byte* p, std::size_t n, light64& r) {
#ifdef HETPIPE_NARROW_AVX2
  if (has_avx2_fma()) return scan_avx2(p, n, r);
#endif
  scan_generic(p, n, r);
}

bool f64_enabled() {
#if defined(HETPIPE_NO_CLONES) || defined(FP_FAST_FMA)
  return true;
#elif defined(HETPIPE_NARROW_AVX2)
  return has_avx2_fma();
#else
  return false;
#endif
}

int window_f32(std::size_t n) {
  return 29 - log2m(n, accs32);
}

int window_f64(std::size_t n) {
  const int g = log2m(n, accs64);
  return std::min({53 - 2 * g, (105 - 4 * g) / 2, (106 - 3 * g) / 2});
}

void sum_f32(const std::byte* p, std::size_t n, [[maybe_unused]] std::size_t ahead, int p0,
             int e_hi, std::int64_t& s, i128& q) {
  const int g = log2m(n, accs32), span = e_hi - p0;
  const int k = 2 * (e_hi - 126) + g + 1;
  sums32 r;
#ifdef HETPIPE_NARROW_AVX2
  if (has_avx2_fma())
    sums32_avx2(p, n, ahead, std::ldexp(1.0, k), r);
  else
#endif
    sums32_generic(p, n, std::ldexp(1.0, k), r);
  s = take(r.s, std::ldexp(1.0, 149 - p0));
  // Σh counts units of 2^(k − 52) = 2^(2·span + g − 5)·u²; below u² it is a multiple of u².
  const i128 h = take(r.h, std::ldexp(1.0, 52 - k));
  const int sh = 2 * span + g - 5;
  q = (sh >= 0 ? h << sh : h >> -sh) + take(r.l, std::ldexp(1.0, 298 - 2 * p0));
}

void sum_f64(const std::byte* p, std::size_t n, [[maybe_unused]] std::size_t ahead, int p0,
             int e_hi, i128& s, u256& q) {
  const int g = log2m(n, accs64), D = e_hi - p0;
  const int T = 2 * (e_hi - 1022), ks = e_hi - 1022 + g + 1;
  const int k1 = T + g + 1, k2 = k1 - 52 + g, k3 = k2 - 52 + g;
  const int ke1 = T - 53 + g + 1, ke2 = ke1 - 52 + g;
  const sigmas64 sg{std::ldexp(1.0, ks), std::ldexp(1.0, k1),  std::ldexp(1.0, k2),
                    std::ldexp(1.0, k3), std::ldexp(1.0, ke1), std::ldexp(1.0, ke2)};
  sums64 r;
#ifdef HETPIPE_NARROW_AVX2
  if (has_avx2_fma())
    sums64_avx2(p, n, ahead, sg, r);
  else
#endif
    sums64_generic(p, n, sg, r);
  const auto unit = [](int k) { return std::ldexp(1.0, 53 - k); };  // Σh in units of 2^(k − 53)
  const double per_u = std::ldexp(1.0, 1074 - p0), per_u2 = std::ldexp(1.0, 2148 - 2 * p0);
  s = (i128(take(r.v[HS], unit(ks))) << (D + g)) + take(r.v[RS], per_u);
  q = {};
  q.add_shifted(take(r.v[H1], unit(k1)), 2 * D + g + 52);
  q.add_shifted(take(r.v[H2], unit(k2)), 2 * D + 2 * g);
  q.add_shifted(take(r.v[H3], unit(k3)), 2 * D + 3 * g - 52);
  q.add_shifted(take(r.v[R3], per_u2), 0);
  q.add_shifted(take(r.v[HE1], unit(ke1)), 2 * D + g - 1);
  q.add_shifted(take(r.v[HE2], unit(ke2)), 2 * D + 2 * g - 53);
  q.add_shifted(take(r.v[RE2], per_u2), 0);
}

}  // namespace hetpipe::host::narrow

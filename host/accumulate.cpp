// The hot loop of exact stats: folds raw column data into column_acc.
//
// Floats: each finite element adds its integer mantissa M to a bin indexed by sign and exponent
// field (S) and M² to the same bin (Q). Bins are machine integers; they are flushed into wider bins
// before they could overflow, and into the mpz sums once per call (or per 2^20 f64 elements). Four
// interleaved bin sets keep runs of equal exponents (the usual case) from serialising on
// store-to-load forwarding. A separate, vectorised pass over each L1-sized block (pass 1) finds the
// min/max keys, the exponent range touched (so flushes scan only that range), the count of zero
// exponents and whether any NaN/inf is present (rare: a scalar slow path redoes pass 1).
// Blocks whose exponents span a narrow window (most real data) skip the bins: a lighter pass 1
// and exact sums in doubles (sum_narrow, host/narrow_sums.hpp).
// Integers: plain sums in machine integers sized so that a block cannot overflow.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "host/clones.hpp"
#include "host/narrow_sums.hpp"
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
// Multi-column blocks are transposed in bands of as many rows as fit band_bytes of scratch: the
// whole block, for most. (Each column's fold into its accumulator ends with an end(), which for
// data of many exponents costs as much as tens of thousands of elements: bands of 16384 rows made
// 3 mixed f64 columns 5 times slower.)
constexpr std::size_t band_bytes = 16 << 20;
constexpr std::size_t wide_rows = 1024;  // see run()

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

// A non-negative integer of Limbs 64-bit limbs (least significant first) that bins add into: a
// 128-bit value at a bit position costs a few limb additions, where an mpz shift and add cost
// about 100 ns. A column's fold ends by moving the total into its mpz once (an f64 column of data
// spanning every exponent flushes about 4000 bins each time; with 16 columns in 4 MiB chunks that
// made its fold 4 times slower than one column's).
template <std::size_t Limbs>
struct limb_sum {
  std::uint64_t w[Limbs] = {};
  std::size_t used = 0;  // limbs [used, Limbs) are zero

  void add(unsigned position, u128 v) {
    if (v == 0) return;
    const std::size_t k = position / 64;
    const unsigned sh = position % 64;
    const std::uint64_t lo = std::uint64_t(v), hi = std::uint64_t(v >> 64);
    const std::uint64_t part[3] = {lo << sh, sh ? (hi << sh) | (lo >> (64 - sh)) : hi,
                                   sh ? hi >> (64 - sh) : 0};
    unsigned char carry = 0;
    std::size_t i = k;
    for (int j = 0; j < 3 && i < Limbs; ++j, ++i) {
      unsigned long long r;
      carry = __builtin_add_overflow(w[i], part[j], &r) | __builtin_add_overflow(r, carry, &r);
      w[i] = r;
    }
    for (; carry && i < Limbs; ++i) carry = ++w[i] == 0;
    used = std::max(used, std::min(i, Limbs));
  }
  // z += total (or -= it); the sum starts again from zero.
  void move_to(mpz_class& z, bool subtract) {
    if (used == 0) return;
    thread_local mpz_class t;
    mpz_import(t.get_mpz_t(), used, -1, sizeof(std::uint64_t), 0, 0, w);
    if (subtract)
      z -= t;
    else
      z += t;
    std::fill(w, w + used, 0);
    used = 0;
  }
};

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
  // f64: the narrow blocks' sums per p0 (Σx² of one block may take 183 bits).
  i128 ns_[two_level ? 1 : nexp] = {};
  narrow::u256 nq_[two_level ? 1 : nexp] = {};

  // The column's S (as positive and negative parts) and Q since begin(): positions below
  // 2^ebits + 2 fbits plus 128 bits of a bin, and a carry's room (f64: 2173 and 4346 bits).
  static constexpr std::size_t s_limbs = (nexp + 128 + 64) / 64 + 1;
  static constexpr std::size_t q_limbs = (2 * nexp + 256 + 64) / 64 + 1;
  limb_sum<s_limbs> s_pos_, s_neg_;
  limb_sum<q_limbs> q_;
  void add_s(int position, i128 v) {
    if (v < 0)
      s_neg_.add(unsigned(position), u128(0) - u128(v));
    else
      s_pos_.add(unsigned(position), u128(v));
  }

  column_acc* acc_ = nullptr;
  std::size_t since_flush_ = 0;
  unsigned lo_e_ = nexp, hi_e_ = 0;    // exponent fields touched since the last flush
  unsigned lo_e2_ = nexp, hi_e2_ = 0;  // ... since fold_l2() (f32: e; f64: p0 of ns_/nq_)
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
        narrow::prefetch_next(pf);
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
          add_s(position(e), ss);
          q_.add(unsigned(2 * position(e)), q);
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

  // Level 2 (f32) and the narrow blocks' sums (f64) into the mpz sums: at end(), and before a bin
  // could overflow.
  void fold_l2() {
    if constexpr (two_level) {
      for (unsigned e = lo_e2_; e <= hi_e2_; ++e) {
        add_s(position(e), s2_[e]);
        q_.add(unsigned(2 * position(e)), q2_[e]);
        s2_[e] = 0;
        q2_[e] = 0;
      }
    } else {
      for (unsigned p0 = lo_e2_; p0 <= hi_e2_; ++p0) {
        add_s(int(p0), ns_[p0]);
        q_.add(2 * p0, nq_[p0].lo);  // Σx² ≥ 0: hi is its upper half
        q_.add(2 * p0 + 128, nq_[p0].hi);
        ns_[p0] = 0;
        nq_[p0] = {};
      }
    }
    lo_e2_ = nexp;
    hi_e2_ = 0;
    narrow_blocks_ = 0;
  }

  enum class outcome { summed, wide, special };

  // Sums a block of finite elements exactly when its exponents span a narrow enough window
  // (host/narrow_sums.hpp): f32 into level 2, f64 into ns_/nq_. Otherwise the block is left to
  // the bins.
  outcome sum_narrow(const std::byte* p, std::size_t n, std::size_t ahead) {
    if constexpr (!two_level) {
      static const bool enabled = narrow::f64_enabled();
      if (!enabled) return outcome::special;
    }
    constexpr B exp_mask = B((B(1) << tr::ebits) - 1) << tr::fbits;
    narrow::light<F, B> ls;
    narrow::scan(p, n, ls);
    if (ls.amax >= exp_mask) return outcome::special;  // inf or NaN
    const bool zeros_only = ls.anz1 == ~B(0);
    const int e_lo = zeros_only ? 0 : int((ls.anz1 + 1) >> tr::fbits);
    const int e_hi = int(ls.amax >> tr::fbits);
    const int p0 = position(unsigned(e_lo)), span = e_hi - p0;
    if constexpr (two_level) {
      if (span > narrow::window_f32(n)) return outcome::wide;
    } else {
      if (!zeros_only &&
          (p0 < narrow::min_p0_f64 || e_hi > narrow::max_e_f64 || span > narrow::window_f64(n)))
        return outcome::wide;
    }
    if (ls.lo == 0 || ls.hi == 0) {
      // min or max is a zero: only the keys tell −0 from +0.
      scan_result<F> r;
      if constexpr (two_level)
        r = scan_f32(p, n);
      else
        r = scan_f64(p, n);
      kmin_ = std::min(kmin_, r.kmin);
      kmax_ = std::max(kmax_, r.kmax);
    } else {
      kmin_ = std::min(kmin_, signed_key(std::bit_cast<B>(ls.lo)));
      kmax_ = std::max(kmax_, signed_key(std::bit_cast<B>(ls.hi)));
    }
    if (zeros_only) return outcome::summed;
    unsigned bin;
    if constexpr (two_level) {
      std::int64_t s;
      i128 q;
      narrow::sum_f32(p, n, ahead, p0, e_hi, s, q);
      bin = unsigned(p0) + 1;  // position(bin) == p0
      s2_[bin] += s;
      q2_[bin] += u128(q);
    } else {
      i128 s;
      narrow::u256 q;
      narrow::sum_f64(p, n, ahead, p0, e_hi, s, q);
      bin = unsigned(p0);
      ns_[bin] += s;
      nq_[bin].add(q);
    }
    lo_e2_ = std::min(lo_e2_, bin);
    hi_e2_ = std::max(hi_e2_, bin);
    // A block adds below 2^108 (f32 Σx²; f64 Σx: 2^108) to a 128-bit bin.
    if (++narrow_blocks_ == (1u << 18)) fold_l2();
    return outcome::summed;
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
        outcome r = sum_narrow(p, m, ahead);
        constexpr std::size_t retry = two_level ? narrow::retry_f32 : narrow::retry_f64;
        if (r == outcome::wide && m > retry) {
          // Usually one outlier (a value near zero) widens the window: the block's first quarter
          // may still be narrow, and only the part holding the outlier goes to the bins.
          m = retry;
          r = sum_narrow(p, m, ahead);
        }
        if (r == outcome::summed) {
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
    s_pos_.move_to(a.s, false);
    s_neg_.move_to(a.s, true);
    q_.move_to(a.q, false);
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

// Rows of C columns of Size bytes at b (C * Size bytes apart), m of them, into columns pitch
// elements apart at t. C and the row's width known to the compiler: the copies unroll into plain
// loads and stores, and in the AVX2 and AVX-512 clones GCC de-interleaves small groups of columns
// in vector registers (a loop over a run-time column count moved about 2e9 elements a second on
// the 2-core box, whatever their size; 3 columns of u8 now fold at 10.8 GB/s, f32 at 12.6). Each
// cache line of input is prefetched once, 4 KiB ahead (the hardware prefetchers stop at page
// boundaries: mapped page cache is in 4 KiB pages).
template <std::size_t Size, std::size_t C>
[[gnu::noinline]] HETPIPE_CLONES void transpose_narrow(const std::byte* b, std::size_t m,
                                                       std::byte* t, std::size_t pitch) {
  constexpr std::size_t width = C * Size, group = 64;  // 64 rows: `width` whole cache lines
  const auto copy = [&](std::size_t i) {
    const std::byte* row = b + i * width;
    for (std::size_t j = 0; j < C; ++j)
      std::memcpy(t + (j * pitch + i) * Size, row + j * Size, Size);
  };
  std::size_t i = 0;
  for (; i + group <= m; i += group) {
    for (std::size_t o = 0; o < group * width; o += 64)
      __builtin_prefetch(b + i * width + 4096 + o);
    for (std::size_t r = 0; r < group; ++r) copy(i + r);
  }
  for (; i < m; ++i) copy(i);
}

template <std::size_t Size, std::size_t C = 2>
bool transpose_narrow(std::size_t cols, const std::byte* b, std::size_t m, std::byte* t,
                      std::size_t pitch) {
  if constexpr (C > 16) {
    return false;
  } else {
    if (cols != C) return transpose_narrow<Size, C + 1>(cols, b, m, t, pitch);
    transpose_narrow<Size, C>(b, m, t, pitch);
    return true;
  }
}

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
  // Rows so wide that band_bytes holds few of them are cut into blocks of columns instead, each
  // transposed over wide_rows rows: a column's fold (its end()) then comes once per wide_rows
  // rows, not per row or two (10 rows of a million f64 columns, in chunks of a row, kept the lanes
  // busy 860 ns an element).
  const std::size_t stride = cols * Size;
  std::size_t band = std::clamp<std::size_t>(band_bytes / stride, 1, rows);
  std::size_t block = cols;
  if (band < std::min(rows, wide_rows)) {
    band = std::min(rows, wide_rows);
    block = std::clamp<std::size_t>(band_bytes / (band * Size), 1, cols);
  }
  // Columns a whole number of cache lines apart, but not of 4 KiB pages: that would put every
  // column's stores in the same L1 set.
  std::size_t pitch_bytes = band * Size;
  if (pitch_bytes >= 64) pitch_bytes = (pitch_bytes + 63) / 64 * 64;
  if (pitch_bytes % 4096 == 0) pitch_bytes += 64;
  const std::size_t pitch = pitch_bytes / Size;
  thread_local std::vector<std::byte> scratch;
  scratch.resize(std::max(scratch.size(), pitch * block * Size));
  std::byte* t = scratch.data();
  // The same columns of the row at least 4 KiB (and 8 rows) ahead.
  const std::size_t ahead = std::max<std::size_t>(8 * stride, 4096) / 64 * 64;
  for (std::size_t r0 = 0; r0 < rows; r0 += band) {
    const std::size_t m = std::min(band, rows - r0);
    for (std::size_t c0 = 0; c0 < cols; c0 += block) {
      const std::size_t nb = std::min(block, cols - c0);
      const std::byte* b = data + r0 * stride + c0 * Size;
      // Loads stream through the band; the stores of 16 rows fill one cache line per column.
      if (nb != cols || !transpose_narrow<Size>(cols, b, m, t, pitch)) {
        for (std::size_t i = 0; i < m; ++i) {
          const std::byte* row = b + i * stride;
          for (std::size_t o = 0; o < nb * Size; o += 64) __builtin_prefetch(row + ahead + o);
          for (std::size_t j = 0; j < nb; ++j)
            std::memcpy(t + (j * pitch + i) * Size, row + j * Size, Size);
        }
      }
      for (std::size_t j = 0; j < nb; ++j) {
        k.begin(acc[c0 + j]);
        k.process(t + j * pitch * Size, m);
        k.end();
      }
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

// Decimal text to double, as __host__ __device__ functions: the same grammar and the same bits as
// host::csv::number (host/csv.hpp), or status::hard where this short method cannot prove the
// correctly rounded result (ties and near-ties, subnormal, overflowing and out-of-table values):
// the caller then parses that field on the host. g++ compiles the same code (HETPIPE_HD expands to
// plain `inline`), and tests/host/test_decimal.cpp checks it against csv::number.
//
//   const auto table = make_pow10_table();  // copy to the device once
//   double v;
//   parse(" -2.5e3", 7, table.data(), v);   // status::number, v == -2500.0
//
// Method: up to 19 significant digits w and a decimal exponent q. With w <= 2^53 and |q| <= 22,
// one correctly rounded multiply or divide by an exact power of ten (Clinger). Otherwise w,
// normalised, times the truncated 128-bit significand of 10^q: the exact value X/2^64 then lies in
// [P, P + 2) for the top 128 bits P of the product, so rounding P to 53 bits is proven unless P's
// rounding remainder lies within 2 units below the half way point. Dropped digits (beyond 19)
// give the answer when w and w + 1 round to the same double, as rounding is monotonic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/hd.cuh"

namespace hetpipe::cuda::decimal {

// hi:lo = floor(10^q * 2^(127 - e2)) with e2 = floor(log2(10^q)): hi has its top bit set.
struct pow10_entry {
  std::uint64_t hi, lo;
  std::int32_t e2;
  std::int32_t unused;
};

constexpr int q_min = -342, q_max = 308;
constexpr int table_size = q_max - q_min + 1;  // entry q at index q - q_min

enum class status : std::uint8_t { number, not_number, hard };

// Host only (no HETPIPE_HD). Exact, with a little-endian big integer of 32-bit limbs: 10^q itself
// for q >= 0, and floor(2^k / 10^-q) by repeated exact division for q < 0 (whose top 128 bits are
// floor(10^q * 2^(127 - e2)), as floor(floor(a / b) / c) = floor(a / (b c))).
inline std::vector<pow10_entry> make_pow10_table() {
  using big = std::vector<std::uint32_t>;
  const auto bits = [](const big& b) {
    std::size_t top = b.size();
    while (top > 0 && b[top - 1] == 0) --top;
    return top == 0 ? 0l : static_cast<long>(32 * top) - __builtin_clz(b[top - 1]);
  };
  const auto window = [](const big& b, long at) {  // bits [at, at + 64), zero outside b
    const auto limb = [&](long i) -> std::uint64_t {
      return i >= 0 && i < static_cast<long>(b.size()) ? b[static_cast<std::size_t>(i)] : 0;
    };
    const long i = (at + 1024) / 32 - 32;  // floor(at / 32): at > -128 here
    const int sh = static_cast<int>(at - 32 * i);
    const std::uint64_t x = limb(i) | limb(i + 1) << 32;
    return sh ? x >> sh | limb(i + 2) << (64 - sh) : x;
  };
  std::vector<pow10_entry> t(table_size);
  const auto put = [&](int q, const big& b, long e2) {
    const long at = bits(b) - 128;
    t[static_cast<std::size_t>(q - q_min)] = {window(b, at + 64), window(b, at),
                                              static_cast<std::int32_t>(e2), 0};
  };
  big b{1};
  for (int q = 0; q <= q_max; ++q) {
    put(q, b, bits(b) - 1);
    std::uint64_t carry = 0;
    for (auto& limb : b) {
      carry += std::uint64_t{limb} * 10;
      limb = static_cast<std::uint32_t>(carry);
      carry >>= 32;
    }
    if (carry) b.push_back(static_cast<std::uint32_t>(carry));
  }
  constexpr long k = 1408;  // 2^k / 10^342 still has 271 bits
  b.assign(k / 32 + 1, 0);
  b.back() = 1;
  for (int q = -1; q >= q_min; --q) {
    std::uint64_t rem = 0;
    for (std::size_t i = b.size(); i-- > 0;) {
      rem = (rem << 32) | b[i];
      b[i] = static_cast<std::uint32_t>(rem / 10);
      rem %= 10;
    }
    put(q, b, bits(b) - 1 - k);
  }
  return t;
}

namespace detail {

HETPIPE_HD double from_bits(std::uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  __builtin_memcpy(&d, &u, sizeof d);
  return d;
#endif
}

HETPIPE_HD std::uint64_t mul_hi(std::uint64_t a, std::uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

HETPIPE_HD int clz(std::uint64_t x) {  // x != 0
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(x));
#else
  return __builtin_clzll(x);
#endif
}

// Round-to-nearest, never contracted into an FMA.
HETPIPE_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

HETPIPE_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

HETPIPE_HD bool digit(char c) {
  return c >= '0' && c <= '9';
}
HETPIPE_HD char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Whether s[0..n) is `word`, in any case.
HETPIPE_HD bool is_word(const char* s, std::size_t n, const char* word) {
  std::size_t i = 0;
  for (; i < n && word[i]; ++i)
    if (lower(s[i]) != word[i]) return false;
  return i == n && !word[i];
}

// The bits of |w * 10^q| (w != 0) rounded to nearest, when proven and a normal double.
HETPIPE_HD bool scale(std::uint64_t w, long long q, const pow10_entry* table, std::uint64_t& bits) {
  if (q < q_min || q > q_max) return false;
  const pow10_entry p = table[q - q_min];
  const int lz = clz(w);
  w <<= lz;
  // Top 128 bits of the 192-bit w * (hi:lo).
  const std::uint64_t lo_hi = mul_hi(w, p.lo);
  std::uint64_t top_lo = w * p.hi;
  std::uint64_t top_hi = mul_hi(w, p.hi);
  top_lo += lo_hi;
  top_hi += top_lo < lo_hi;
  // Bit t of the 128 bits leads (126 or 127); 53 bits kept, s = t - 52 (74 or 75) dropped.
  const int t = 126 + static_cast<int>(top_hi >> 63);
  const int s_hi = t - 52 - 64;  // dropped bits of top_hi: 10 or 11
  std::uint64_t m = top_hi >> s_hi;
  const std::uint64_t r_hi = top_hi & ((std::uint64_t{1} << s_hi) - 1);
  const std::uint64_t half_hi = std::uint64_t{1} << (s_hi - 1);  // half = half_hi:0
  // The remainder r = r_hi:top_lo of a value in [P, P + 2): undecided when r is half or half - 1.
  if ((r_hi == half_hi && top_lo == 0) || (r_hi == half_hi - 1 && top_lo == ~std::uint64_t{0}))
    return false;
  // value = m * 2^(t - 52 + e2 - 127 - lz + 64); a double's biased exponent is that + 52 + 1023.
  long long biased = static_cast<long long>(t) + p.e2 - lz + 960;
  if (biased < 1) return false;  // subnormal or zero: the host decides
  if (r_hi >= half_hi && ++m == (std::uint64_t{1} << 53)) {
    m >>= 1;
    ++biased;
  }
  if (biased > 2046) return false;  // overflow
  bits = (static_cast<std::uint64_t>(biased) << 52) | (m & ((std::uint64_t{1} << 52) - 1));
  return true;
}

}  // namespace detail

// text[0..n) as host::csv::number reads it (see the file comment); `out` is set when the status is
// number.
HETPIPE_HD status parse(const char* text, std::size_t n, const pow10_entry* table, double& out) {
  using u64 = std::uint64_t;
  std::size_t a = 0, b = n;
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (a < b && blank(text[a])) ++a;
  while (b > a && blank(text[b - 1])) --b;
  if (a == b) {
    out = detail::from_bits(0x7ff8000000000000);
    return status::number;
  }
  u64 sign = 0;
  if (text[a] == '+' || text[a] == '-') {
    sign = text[a] == '-' ? u64{1} << 63 : 0;
    if (++a == b) return status::not_number;
  }
  const char c0 = detail::lower(text[a]);
  if (c0 == 'i' || c0 == 'n') {
    const char* s = text + a;
    const std::size_t len = b - a;
    if (detail::is_word(s, len, "inf") || detail::is_word(s, len, "infinity")) {
      out = detail::from_bits(sign | 0x7ff0000000000000);
      return status::number;
    }
    if (len < 3 || !detail::is_word(s, 3, "nan")) return status::not_number;
    if (len > 3) {  // nan(chars): letters, digits and '_'
      if (len < 5 || s[3] != '(' || s[len - 1] != ')') return status::not_number;
      for (std::size_t i = 4; i + 1 < len; ++i) {
        const char c = detail::lower(s[i]);
        if (!detail::digit(c) && !(c >= 'a' && c <= 'z') && c != '_') return status::not_number;
      }
    }
    out = detail::from_bits(sign | 0x7ff8000000000000);
    return status::number;
  }
  // Up to 19 significant digits in w; q counts the shift of the decimal point.
  u64 w = 0;
  int kept = 0;
  bool truncated = false, any = false;
  long long q = 0;
  // A digit before the point (fraction false) or after it.
  const auto take = [&](int d, bool fraction) {
    any = true;
    if (kept < 19) {
      if (w || d) {
        w = w * 10 + static_cast<u64>(d);
        ++kept;
      }
      q -= fraction;
    } else {
      truncated |= d != 0;
      q += !fraction;
    }
  };
  std::size_t i = a;
  for (; i < b && detail::digit(text[i]); ++i) take(text[i] - '0', false);
  if (i < b && text[i] == '.')
    for (++i; i < b && detail::digit(text[i]); ++i) take(text[i] - '0', true);
  if (!any) return status::not_number;
  bool huge = false;  // an exponent past 10^5: beyond the table whatever the digits' shift
  if (i < b && (text[i] == 'e' || text[i] == 'E')) {
    bool minus = false;
    if (++i < b && (text[i] == '+' || text[i] == '-')) minus = text[i++] == '-';
    if (i == b) return status::not_number;
    long long e = 0;
    for (; i < b && detail::digit(text[i]); ++i) {
      e = e * 10 + (text[i] - '0');
      if (e > 100000) {
        huge = true;
        e = 100000;
      }
    }
    if (i < b) return status::not_number;
    q += minus ? -e : e;
  }
  if (i < b) return status::not_number;
  if (w == 0) {
    out = detail::from_bits(sign);
    return status::number;
  }
  if (huge) return status::hard;
  if (!truncated && w <= (u64{1} << 53) && q >= -22 && q <= 22) {
    double p = 1.0;  // 10^|q|: every step exact
    for (long long k = q < 0 ? -q : q; k > 0; --k) p = detail::mul(p, 10.0);
    const double x = static_cast<double>(w);
    const double v = q < 0 ? detail::div(x, p) : detail::mul(x, p);
    out = sign ? -v : v;
    return status::number;
  }
  u64 bits = 0, bits_up = 0;
  if (!detail::scale(w, q, table, bits)) return status::hard;
  if (truncated && (!detail::scale(w + 1, q, table, bits_up) || bits_up != bits))
    return status::hard;
  out = detail::from_bits(sign | bits);
  return status::number;
}

}  // namespace hetpipe::cuda::decimal

// Independent reference for exact stats: MPFR with enough precision that every sum is exact, then a
// single rounding to double (with subnormals and overflow) for each result.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <mpfr.h>

#include <catch2/catch.hpp>

#include <hetpipe/dtype.hpp>
#include <hetpipe/stats.hpp>

namespace hetpipe::test {

// One element decoded: a double for floats (f32 widens exactly), or the exact integer.
struct element {
  enum kind_t { real, sint, uint } kind;
  double d = 0;
  std::int64_t i = 0;
  std::uint64_t u = 0;
};

inline element decode(dtype t, const std::byte* p) {
  auto ld = [p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (t) {
    case dtype::u8:
      return {element::uint, 0, 0, ld(std::uint8_t{})};
    case dtype::u16:
      return {element::uint, 0, 0, ld(std::uint16_t{})};
    case dtype::u32:
      return {element::uint, 0, 0, ld(std::uint32_t{})};
    case dtype::u64:
      return {element::uint, 0, 0, ld(std::uint64_t{})};
    case dtype::i8:
      return {element::sint, 0, ld(std::int8_t{}), 0};
    case dtype::i16:
      return {element::sint, 0, ld(std::int16_t{}), 0};
    case dtype::i32:
      return {element::sint, 0, ld(std::int32_t{}), 0};
    case dtype::i64:
      return {element::sint, 0, ld(std::int64_t{}), 0};
    case dtype::f32:
      return {element::real, double(ld(float{})), 0, 0};
    case dtype::f64:
      return {element::real, ld(double{}), 0, 0};
  }
  return {};
}

// RAII mpfr_t.
struct big {
  mpfr_t v;
  explicit big(mpfr_prec_t prec) {
    mpfr_init2(v, prec);
    mpfr_set_zero(v, 1);
  }
  ~big() { mpfr_clear(v); }
  big(const big&) = delete;
  big& operator=(const big&) = delete;
  operator mpfr_ptr() { return v; }
};

// Rounds an MPFR operation's 53-bit result into the double format: overflow and gradual underflow
// are applied after the fact, from the ternary value (the documented MPFR idiom).
template <class Op>
double to_double(Op op) {
  big r(53);
  int t = op(r.v);
  const auto emin = mpfr_get_emin(), emax = mpfr_get_emax();
  mpfr_set_emin(-1073);
  mpfr_set_emax(1024);
  t = mpfr_check_range(r.v, t, MPFR_RNDN);
  mpfr_subnormalize(r.v, t, MPFR_RNDN);
  const double d = mpfr_get_d(r.v, MPFR_RNDN);
  mpfr_set_emin(emin);
  mpfr_set_emax(emax);
  return d;
}

inline std::variant<double, std::int64_t, std::uint64_t> as_variant(const element& e) {
  if (e.kind == element::real) return e.d;
  if (e.kind == element::sint) return e.i;
  return e.u;
}

// a < b in the order of hetpipe's min/max (−0 below +0).
inline bool less(const element& a, const element& b) {
  if (a.kind == element::real)
    return a.d < b.d || (a.d == b.d && std::signbit(a.d) && !std::signbit(b.d));
  if (a.kind == element::sint) return a.i < b.i;
  return a.u < b.u;
}

// Reference stats of n contiguous elements (stride bytes apart).
inline column_stats reference_stats(dtype t, const std::byte* data, std::size_t n,
                                    std::size_t stride = 0) {
  if (stride == 0) stride = dtype_size(t);
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  // Spans: f64 sums need about 2110 bits, sums of squares about 4200, plus log2(n).
  constexpr mpfr_prec_t sum_prec = 4600, num_prec = 9400;
  big S(sum_prec), Q(sum_prec), x(128), x2(256);
  column_stats r;
  std::uint64_t pinf = 0, ninf = 0;
  element lo{}, hi{};
  bool inexact = false;
  for (std::size_t i = 0; i < n; ++i) {
    const element e = decode(t, data + i * stride);
    if (e.kind == element::real) {
      if (std::isnan(e.d)) {
        ++r.nan_count;
        continue;
      }
      if (std::isinf(e.d)) ++(e.d > 0 ? pinf : ninf);
    }
    if (r.count == 0 || less(e, lo)) lo = e;
    if (r.count == 0 || less(hi, e)) hi = e;
    ++r.count;
    if (e.kind == element::real && std::isinf(e.d)) continue;
    if (e.kind == element::real)
      mpfr_set_d(x, e.d, MPFR_RNDN);
    else if (e.kind == element::sint)
      mpfr_set_si(x, long(e.i), MPFR_RNDN);
    else
      mpfr_set_ui(x, static_cast<unsigned long>(e.u), MPFR_RNDN);
    inexact |= mpfr_sqr(x2, x, MPFR_RNDN) != 0;
    inexact |= mpfr_add(S, S, x, MPFR_RNDN) != 0;
    inexact |= mpfr_add(Q, Q, x2, MPFR_RNDN) != 0;
  }
  REQUIRE_FALSE(inexact);  // the reference itself must be exact
  r.sum = 0;
  r.mean = r.variance = r.sample_variance = r.std = nan;
  if (r.count == 0) {
    r.min = r.max = nan;
    return r;
  }
  r.min = as_variant(lo);
  r.max = as_variant(hi);
  if (pinf || ninf) {
    r.sum = r.mean = pinf && ninf ? nan : pinf ? HUGE_VAL : -HUGE_VAL;
    return r;
  }
  big N(64), N2(128), N21(128), num(num_prec), s2(num_prec);
  mpfr_set_ui(N, static_cast<unsigned long>(r.count), MPFR_RNDN);
  mpfr_sqr(N2, N, MPFR_RNDN);
  mpfr_sub_ui(N21, N, 1, MPFR_RNDN);
  mpfr_mul(N21, N21, N, MPFR_RNDN);
  inexact |= mpfr_mul(num, Q, N, MPFR_RNDN) != 0;
  inexact |= mpfr_sqr(s2, S, MPFR_RNDN) != 0;
  inexact |= mpfr_sub(num, num, s2, MPFR_RNDN) != 0;
  REQUIRE_FALSE(inexact);
  r.sum = to_double([&](mpfr_ptr o) { return mpfr_set(o, S, MPFR_RNDN); });
  r.mean = to_double([&](mpfr_ptr o) { return mpfr_div(o, S, N, MPFR_RNDN); });
  r.variance = to_double([&](mpfr_ptr o) { return mpfr_div(o, num, N2, MPFR_RNDN); });
  if (r.count >= 2)
    r.sample_variance = to_double([&](mpfr_ptr o) { return mpfr_div(o, num, N21, MPFR_RNDN); });
  // sqrt(num / n²): the quotient to 20000 bits, then one rounding of its root. An inexact root can
  // only lie within 2^-4600 (relative) of a rounding boundary, far beyond what 20000 bits blur.
  big quot(20000);
  mpfr_div(quot, num, N2, MPFR_RNDN);
  r.std = to_double([&](mpfr_ptr o) { return mpfr_sqrt(o, quot, MPFR_RNDN); });
  return r;
}

inline std::string describe(double d) {
  std::ostringstream o;
  o.precision(17);
  o << d << " (0x" << std::hex << std::bit_cast<std::uint64_t>(d) << ")";
  return o.str();
}

inline std::string describe(const std::variant<double, std::int64_t, std::uint64_t>& v) {
  if (auto* d = std::get_if<double>(&v)) return "double " + describe(*d);
  if (auto* i = std::get_if<std::int64_t>(&v)) return "int64 " + std::to_string(*i);
  return "uint64 " + std::to_string(std::get<std::uint64_t>(v));
}

// Bit-identical doubles; any NaN matches any NaN.
inline bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}
inline bool same(const std::variant<double, std::int64_t, std::uint64_t>& a,
                 const std::variant<double, std::int64_t, std::uint64_t>& b) {
  if (a.index() != b.index()) return false;
  if (a.index() == 0) return same(std::get<0>(a), std::get<0>(b));
  return a == b;
}

inline void check_same(const column_stats& got, const column_stats& want) {
  CHECK(got.count == want.count);
  CHECK(got.nan_count == want.nan_count);
#define HETPIPE_CHECK_FIELD(f)                                             \
  do {                                                                     \
    INFO(#f ": got " << describe(got.f) << ", want " << describe(want.f)); \
    CHECK(same(got.f, want.f));                                            \
  } while (0)
  HETPIPE_CHECK_FIELD(min);
  HETPIPE_CHECK_FIELD(max);
  HETPIPE_CHECK_FIELD(sum);
  HETPIPE_CHECK_FIELD(mean);
  HETPIPE_CHECK_FIELD(variance);
  HETPIPE_CHECK_FIELD(sample_variance);
  HETPIPE_CHECK_FIELD(std);
#undef HETPIPE_CHECK_FIELD
}

inline bool all_same(const column_stats& a, const column_stats& b) {
  return a.count == b.count && a.nan_count == b.nan_count && same(a.min, b.min) &&
         same(a.max, b.max) && same(a.sum, b.sum) && same(a.mean, b.mean) &&
         same(a.variance, b.variance) && same(a.sample_variance, b.sample_variance) &&
         same(a.std, b.std);
}

}  // namespace hetpipe::test

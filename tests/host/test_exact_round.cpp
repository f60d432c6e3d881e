// The rational → double rounding under finalize(), against MPFR, including ties and subnormals.
#include <random>

#include <catch2/catch.hpp>

#include "host/exact_round.hpp"
#include "host/stats_reference.hpp"

using namespace hetpipe;
using namespace hetpipe::test;

namespace {

mpz_class random_integer(std::mt19937_64& rng, int max_bits) {
  mpz_class z = 0;
  const int bits = 1 + int(rng() % max_bits);
  for (int i = 0; i < bits; i += 64) z = (z << 64) + static_cast<unsigned long>(rng());
  z >>= (bits + 63) / 64 * 64 - bits;
  // Long runs of ones and zeros make near-ties, which plain random bits rarely reach.
  if (rng() % 3 == 0) z = (mpz_class(1) << bits) - 1 - (rng() % 2 ? 0 : mpz_class(rng() % 1000));
  return z <= 0 ? mpz_class(1) : z;
}

double mpfr_ratio(const mpz_class& num, const mpz_class& den, long e) {
  big n(20000), d(20000);
  mpfr_set_z(n, num.get_mpz_t(), MPFR_RNDN);
  mpfr_set_z(d, den.get_mpz_t(), MPFR_RNDN);
  return to_double([&](mpfr_ptr o) {
    const int t = mpfr_div(o, n, d, MPFR_RNDN);
    mpfr_mul_2si(o, o, e, MPFR_RNDN);  // exact: MPFR's own exponent range is far wider
    return t;
  });
}

double mpfr_sqrt_ratio(const mpz_class& num, const mpz_class& den, long e) {
  big n(20000), d(20000), q(20000);
  mpfr_set_z(n, num.get_mpz_t(), MPFR_RNDN);
  mpfr_set_z(d, den.get_mpz_t(), MPFR_RNDN);
  mpfr_div(q, n, d, MPFR_RNDN);
  return to_double([&](mpfr_ptr o) {
    const int t = mpfr_sqrt(o, q, MPFR_RNDN);
    mpfr_mul_2si(o, o, e / 2, MPFR_RNDN);
    return t;
  });
}

}  // namespace

TEST_CASE("Rationals round to the nearest double, ties to even, at every exponent", "[stats]") {
  std::mt19937_64 rng(123);
  for (int i = 0; i < 20000; ++i) {
    mpz_class num = random_integer(rng, 300), den = random_integer(rng, 200);
    if (i % 4 == 0) {
      // An exact midpoint between two doubles (or two subnormals): an odd 54-bit (or shorter) m.
      const int bits = 2 + int(rng() % 53);
      num = ((random_integer(rng, bits - 1) | 1) + (mpz_class(1) << (bits - 1))) * den;
      if (num % 2 == 0) num += den;
      if (i % 8 == 0) num += rng() % 2 ? 1 : -1;  // a hair off the midpoint
    }
    if (rng() % 2) num = -num;
    const long bits =
        long(mpz_sizeinbase(num.get_mpz_t(), 2)) - long(mpz_sizeinbase(den.get_mpz_t(), 2));
    // Land around the normal range, the subnormal range, the overflow threshold or beyond.
    const long targets[] = {0, -1074, -1022, 1023, -1130, 1100, long(rng() % 2200) - 1100};
    const long e = targets[rng() % std::size(targets)] - bits + long(rng() % 7) - 3;
    const double got = host::round_ratio(num, den, e), want = mpfr_ratio(num, den, e);
    INFO("num " << num << " den " << den << " exp2 " << e);
    INFO("got " << describe(got) << ", want " << describe(want));
    REQUIRE(same(got, want));
  }
  CHECK(host::round_ratio(0, 7, 5) == 0.0);
  CHECK_FALSE(std::signbit(host::round_ratio(0, 7, 5)));
}

TEST_CASE("Square roots of rationals are rounded once, correctly", "[stats]") {
  std::mt19937_64 rng(321);
  for (int i = 0; i < 5000; ++i) {
    mpz_class num = random_integer(rng, 300), den = random_integer(rng, 200);
    if (i % 5 == 0) num = num * num * den;  // a perfect square ratio
    if (i % 5 == 1) {
      // Just above or below the square of a midpoint m (odd, 54 bits): only the remainder of the
      // division, not the integer square root, tells which way to round.
      const mpz_class m = (random_integer(rng, 52) << 1) + 1 + (mpz_class(1) << 53);
      den += 1;
      num = m * m * den + (rng() % 2 ? 1 : -1);
    }
    const long bits =
        long(mpz_sizeinbase(num.get_mpz_t(), 2)) - long(mpz_sizeinbase(den.get_mpz_t(), 2));
    long e = long(rng() % 4400) - 2200 - bits;
    e -= e % 2;
    const double got = host::round_sqrt_ratio(num, den, e), want = mpfr_sqrt_ratio(num, den, e);
    INFO("num " << num << " den " << den << " exp2 " << e);
    INFO("got " << describe(got) << ", want " << describe(want));
    REQUIRE(same(got, want));
  }
}

#include "host/exact_round.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>

namespace hetpipe::host {
namespace {

constexpr long mant_bits = 53;       // double precision
constexpr long min_ulp_exp = -1074;  // exponent of the smallest subnormal
// Bits of quotient kept before the final rounding: 53 + a guard bit + one more, so the remainder
// (the sticky bit) only ever decides ties.
constexpr long work_bits = 55;

long bit_length(const mpz_class& x) {
  return x == 0 ? 0 : long(mpz_sizeinbase(x.get_mpz_t(), 2));
}

}  // namespace

double round_scaled(bool negative, const mpz_class& q, long exp2, bool sticky) {
  if (q == 0 && !sticky) return 0.0;
  const long nb = bit_length(q);
  // Bits to drop: down to 53 significant bits, or fewer where the result is subnormal.
  const long drop = std::max(nb - mant_bits, min_ulp_exp - exp2);
  std::uint64_t kept;
  if (drop <= 0) {
    assert(!sticky);  // the callers always deliver enough bits to round
    kept = q.get_ui();
    double r = exp2 > 2000 ? HUGE_VAL : std::ldexp(double(kept), int(exp2));
    return negative ? -r : r;
  }
  if (drop > nb) {
    kept = 0;  // below half of the smallest subnormal: rounds to zero
  } else {
    mpz_class k;
    mpz_fdiv_q_2exp(k.get_mpz_t(), q.get_mpz_t(), mp_bitcnt_t(drop));
    kept = k.get_ui();
    const bool guard = mpz_tstbit(q.get_mpz_t(), mp_bitcnt_t(drop - 1));
    // Anything below the guard bit, or beyond q altogether, makes a half into more than a half.
    const bool below = sticky || (drop >= 2 && mpz_scan1(q.get_mpz_t(), 0) < mp_bitcnt_t(drop - 1));
    if (guard && (below || (kept & 1))) ++kept;  // kept ≤ 2^53: exact in a double
  }
  const long e = exp2 + drop;
  double r;
  if (e > 2000)
    r = HUGE_VAL;
  else
    r = std::ldexp(double(kept), int(e));  // exact, or ±inf past the largest double
  return negative ? -r : r;
}

double round_ratio(const mpz_class& num, const mpz_class& den, long exp2) {
  assert(den > 0);
  if (num == 0) return 0.0;
  mpz_class a = abs(num), d = den;
  // Scale so that the quotient has work_bits or work_bits + 1 bits.
  const long shift = work_bits - (bit_length(a) - bit_length(d));
  if (shift > 0)
    a <<= mp_bitcnt_t(shift);
  else if (shift < 0)
    d <<= mp_bitcnt_t(-shift);
  mpz_class q, r;
  mpz_tdiv_qr(q.get_mpz_t(), r.get_mpz_t(), a.get_mpz_t(), d.get_mpz_t());
  return round_scaled(num < 0, q, exp2 - shift, r != 0);
}

double round_sqrt_ratio(const mpz_class& num, const mpz_class& den, long exp2) {
  assert(num >= 0 && den > 0 && exp2 % 2 == 0);
  if (num == 0) return 0.0;
  mpz_class a = num, d = den;
  // sqrt(a / d · 4^t) must have at least work_bits bits: a / d · 4^t ≥ 2^(2·work_bits).
  // floor(sqrt(x)) == isqrt(floor(x)), and sqrt(x) is an integer only if x is one, so the two
  // remainders together give the sticky bit.
  const long t = (2 * work_bits + 2 - (bit_length(a) - bit_length(d)) + 1) / 2;
  if (t > 0)
    a <<= mp_bitcnt_t(2 * t);
  else if (t < 0)
    d <<= mp_bitcnt_t(-2 * t);
  mpz_class x, r1, root, r2;
  mpz_tdiv_qr(x.get_mpz_t(), r1.get_mpz_t(), a.get_mpz_t(), d.get_mpz_t());
  mpz_sqrtrem(root.get_mpz_t(), r2.get_mpz_t(), x.get_mpz_t());
  return round_scaled(false, root, exp2 / 2 - t, r1 != 0 || r2 != 0);
}

}  // namespace hetpipe::host

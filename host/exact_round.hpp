// Correct rounding of exact rationals (and their square roots) to double, with GMP integers only.
#pragma once

#include <gmpxx.h>

namespace hetpipe::host {

// RN(num / den · 2^exp2): round to nearest, ties to even, gradual underflow, overflow to ±inf.
// den > 0. An exact zero gives +0.
double round_ratio(const mpz_class& num, const mpz_class& den, long exp2);

// RN(sqrt(num / den · 2^exp2)); num ≥ 0, den > 0, exp2 even.
double round_sqrt_ratio(const mpz_class& num, const mpz_class& den, long exp2);

// RN(±q · 2^exp2), where `sticky` says that the exact value lies strictly above q · 2^exp2 (by
// less than one unit of q's last place). q must have at least two bits more than it keeps when
// sticky is set, which the functions above ensure.
double round_scaled(bool negative, const mpz_class& q, long exp2, bool sticky);

}  // namespace hetpipe::host

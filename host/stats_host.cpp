// column_acc, order keys and finalize(); the hot loop is in accumulate.cpp.
#include "host/stats_host.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "host/exact_round.hpp"

namespace hetpipe::host {
namespace {

// value as an mpz; mpz_class has no constructor for 128-bit integers.
void set_u128(mpz_class& z, unsigned __int128 v) {
  mpz_set_ui(z.get_mpz_t(), static_cast<unsigned long>(v >> 64));
  mpz_mul_2exp(z.get_mpz_t(), z.get_mpz_t(), 64);
  mpz_add_ui(z.get_mpz_t(), z.get_mpz_t(), static_cast<unsigned long>(v));
}

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

void column_acc::add_s_bin(int position, __int128 value) {
  if (value == 0) return;
  thread_local mpz_class t;
  const bool neg = value < 0;
  // |INT128_MIN| does not fit __int128 but does fit unsigned __int128.
  set_u128(t, neg ? -static_cast<unsigned __int128>(value) : static_cast<unsigned __int128>(value));
  mpz_mul_2exp(t.get_mpz_t(), t.get_mpz_t(), mp_bitcnt_t(position));
  if (neg)
    s -= t;
  else
    s += t;
}

void column_acc::add_q_bin(int position, unsigned __int128 value) {
  if (value == 0) return;
  thread_local mpz_class t;
  set_u128(t, value);
  mpz_mul_2exp(t.get_mpz_t(), t.get_mpz_t(), mp_bitcnt_t(position));
  q += t;
}

void column_acc::merge(const column_acc& o) {
  count += o.count;
  nan_count += o.nan_count;
  posinf += o.posinf;
  neginf += o.neginf;
  min_key = std::min(min_key, o.min_key);
  max_key = std::max(max_key, o.max_key);
  s += o.s;
  q += o.q;
}

std::uint64_t order_key(dtype t, const std::byte* e) {
  switch (t) {
    case dtype::u8:
      return load<std::uint8_t>(e);
    case dtype::u16:
      return load<std::uint16_t>(e);
    case dtype::u32:
      return load<std::uint32_t>(e);
    case dtype::u64:
      return load<std::uint64_t>(e);
    case dtype::i8:
      return std::uint64_t(std::int64_t(load<std::int8_t>(e))) ^ (1ull << 63);
    case dtype::i16:
      return std::uint64_t(std::int64_t(load<std::int16_t>(e))) ^ (1ull << 63);
    case dtype::i32:
      return std::uint64_t(std::int64_t(load<std::int32_t>(e))) ^ (1ull << 63);
    case dtype::i64:
      return std::uint64_t(load<std::int64_t>(e)) ^ (1ull << 63);
    case dtype::f32: {
      const auto b = load<std::uint32_t>(e);
      return b >> 31 ? std::uint32_t(~b) : b | 0x80000000u;
    }
    case dtype::f64: {
      const auto b = load<std::uint64_t>(e);
      return b >> 63 ? ~b : b | (1ull << 63);
    }
  }
  return 0;
}

std::variant<double, std::int64_t, std::uint64_t> key_value(dtype t, std::uint64_t key) {
  switch (t) {
    case dtype::f32: {
      const auto k = std::uint32_t(key);
      const std::uint32_t b = k >> 31 ? k & 0x7fffffffu : ~k;
      return double(std::bit_cast<float>(b));
    }
    case dtype::f64:
      return std::bit_cast<double>(key >> 63 ? key & ~(1ull << 63) : ~key);
    case dtype::i8:
    case dtype::i16:
    case dtype::i32:
    case dtype::i64:
      return std::int64_t(key ^ (1ull << 63));
    default:
      return key;
  }
}

column_stats finalize(dtype t, const column_acc& acc) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr double inf = std::numeric_limits<double>::infinity();
  column_stats r;
  r.count = acc.count;
  r.nan_count = acc.nan_count;
  r.sum = 0;
  r.mean = r.variance = r.sample_variance = r.std = nan;
  if (acc.count == 0) {
    r.min = r.max = nan;
    return r;
  }
  r.min = key_value(t, acc.min_key);
  r.max = key_value(t, acc.max_key);
  if (acc.posinf || acc.neginf) {
    r.sum = r.mean = acc.posinf && acc.neginf ? nan : acc.posinf ? inf : -inf;
    return r;
  }
  const long L = scale_shift(t);
  const mpz_class n(static_cast<unsigned long>(acc.count));
  r.sum = round_ratio(acc.s, 1, -L);
  r.mean = round_ratio(acc.s, n, -L);
  // n·Q − S² ≥ 0 exactly (Cauchy–Schwarz); zero when all values are equal.
  const mpz_class m2 = n * acc.q - acc.s * acc.s;
  r.variance = round_ratio(m2, n * n, -2 * L);
  if (acc.count >= 2) r.sample_variance = round_ratio(m2, n * (n - 1), -2 * L);
  r.std = round_sqrt_ratio(m2, n * n, -2 * L);
  return r;
}

}  // namespace hetpipe::host

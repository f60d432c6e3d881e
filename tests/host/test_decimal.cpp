// cuda/decimal.cuh on the host: its power-of-ten table against MPFR, and parse() against
// host::csv::number on hand cases, printed random doubles, exact half way points and junk text.
// parse() may answer `hard` for a number, never a wrong double or another verdict on number-ness.
#include <mpfr.h>
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cuda/decimal.cuh"
#include "host/csv.hpp"

using namespace hetpipe;
namespace csv = host::csv;
namespace dec = cuda::decimal;

namespace {

const std::vector<dec::pow10_entry>& table() {
  static const auto t = dec::make_pow10_table();
  return t;
}

dec::status parse(const std::string& s, double& v) {
  return dec::parse(s.data(), s.size(), table().data(), v);
}

std::uint64_t bits(double x) {
  return std::bit_cast<std::uint64_t>(x);
}

// Compares parse() with csv::number over many texts; keeps the first few disagreements.
struct checker {
  std::size_t total = 0, hard = 0;
  std::vector<std::string> wrong;

  void operator()(const std::string& s) {
    ++total;
    double want = 0, got = 0;
    const bool is_number = csv::number(s, want);
    const dec::status st = parse(s, got);
    hard += st == dec::status::hard;
    bool ok = is_number == (st != dec::status::not_number);
    if (ok && st == dec::status::number)
      ok = std::isnan(want) ? std::isnan(got) : bits(want) == bits(got);
    if (!ok && wrong.size() < 10)
      wrong.push_back("'" + s + "' status " + std::to_string(static_cast<int>(st)));
  }
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

#define REQUIRE_AGREES(c)       \
  do {                          \
    INFO(join((c).wrong));      \
    REQUIRE((c).wrong.empty()); \
  } while (0)

std::string format(const char* fmt, double x) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

// A random normal double (any sign, any exponent from 1 to 2046).
double random_normal(std::mt19937_64& rng) {
  const std::uint64_t e = 1 + rng() % 2046;
  return std::bit_cast<double>((rng() & 0x800fffffffffffff) | (e << 52));
}

// Random sign and random blanks around the text.
std::string dress(std::string s, std::mt19937_64& rng) {
  static const char blanks[] = " \t\r";
  const auto pad = [&] {
    std::string p;
    for (int n = rng() % 4 == 0 ? 1 + rng() % 3 : 0; n > 0; --n) p += blanks[rng() % 3];
    return p;
  };
  if (s[0] != '-' && rng() % 3 == 0) s = (rng() % 2 ? "-" : "+") + s;
  return pad() + s + pad();
}

// A non-negative big integer in base 10^9, for exact decimal expansions.
struct decimal_int {
  std::vector<std::uint32_t> limb{0};
  void mul(std::uint32_t f) {
    std::uint64_t carry = 0;
    for (auto& l : limb) {
      carry += std::uint64_t{l} * f;
      l = static_cast<std::uint32_t>(carry % 1000000000);
      carry /= 1000000000;
    }
    while (carry) {
      limb.push_back(static_cast<std::uint32_t>(carry % 1000000000));
      carry /= 1000000000;
    }
  }
  void add(std::uint64_t x) {  // x < 10^18
    for (std::size_t i = 0; x; ++i) {
      if (i == limb.size()) limb.push_back(0);
      x += limb[i];
      limb[i] = static_cast<std::uint32_t>(x % 1000000000);
      x /= 1000000000;
    }
  }
  void sub1() {  // *this > 0
    std::size_t i = 0;
    while (limb[i] == 0) limb[i++] = 999999999;
    --limb[i];
  }
  std::string str() const {
    std::size_t top = limb.size();
    while (top > 1 && limb[top - 1] == 0) --top;
    std::string s = std::to_string(limb[top - 1]);
    char buf[16];
    for (std::size_t i = top - 1; i-- > 0;) {
      std::snprintf(buf, sizeof buf, "%09u", limb[i]);
      s += buf;
    }
    return s;
  }
};

// The digits N and decimal exponent k of the point half way between finite x > 0 and its
// successor: N * 10^k exactly.
std::pair<decimal_int, int> midpoint(double x) {
  const std::uint64_t u = bits(x);
  const int be = static_cast<int>(u >> 52);
  std::uint64_t m = u & 0xfffffffffffff;
  if (be) m |= std::uint64_t{1} << 52;
  int e = (be ? be : 1) - 1075 - 1;  // x = 2m * 2^e, the midpoint (2m + 1) * 2^e
  decimal_int n;
  n.add(2 * m + 1);
  int k = 0;
  for (; e >= 30; e -= 30) n.mul(1u << 30);
  if (e > 0) n.mul(1u << e);
  for (; e <= -13; e += 13, k -= 13) n.mul(1220703125);  // 5^13: 2^-13 = 5^13 / 10^13
  for (; e < 0; ++e, --k) n.mul(5);
  return {n, k};
}

// N * 10^k as digits with an exponent, or in scientific form d.ddde+x.
std::string decimal_text(const decimal_int& n, int k, bool scientific) {
  const std::string d = n.str();
  if (!scientific) return k ? d + "e" + std::to_string(k) : d;
  const int e = k + static_cast<int>(d.size()) - 1;
  return d.substr(0, 1) + (d.size() > 1 ? "." + d.substr(1) : "") + "e" + std::to_string(e);
}

}  // namespace

TEST_CASE("decimal: the power-of-ten table is exact", "[csv][decimal]") {
  const auto& t = table();
  REQUIRE(t.size() == dec::table_size);
  const auto at = [&](int q) { return t[q - dec::q_min]; };
  CHECK(at(0).hi == std::uint64_t{1} << 63);
  CHECK(at(0).lo == 0);
  CHECK(at(0).e2 == 0);
  CHECK(at(1).hi == 0xA000000000000000);
  CHECK(at(1).lo == 0);
  CHECK(at(1).e2 == 3);
  CHECK(at(-1).hi == 0xCCCCCCCCCCCCCCCC);
  CHECK(at(-1).lo == 0xCCCCCCCCCCCCCCCC);
  CHECK(at(-1).e2 == -4);
  // 10^19 < 2^64 is exact in hi; 1e308 is 10^308 rounded to 53 bits.
  CHECK(at(19).hi == 10000000000000000000u);
  CHECK(at(19).e2 == 63);
  int e = 0;
  const double f = std::frexp(1e308, &e);
  CHECK(at(308).e2 == e - 1);
  const std::uint64_t m53 = (at(308).hi >> 11) + ((at(308).hi >> 10) & 1);
  CHECK(m53 == static_cast<std::uint64_t>(std::ldexp(f, 53)));

  // Every entry against MPFR: 10^q rounded toward zero to 128 bits.
  mpfr_t x, y;
  mpfr_init2(x, 128);
  mpfr_init2(y, 128);
  int bad = 0;
  for (int q = dec::q_min; q <= dec::q_max; ++q) {
    mpfr_set_ui(x, 10, MPFR_RNDN);
    mpfr_pow_si(x, x, q, MPFR_RNDZ);
    const long e2 = mpfr_get_exp(x) - 1;      // x = 0.1xxx * 2^exp
    mpfr_mul_2si(x, x, 127 - e2, MPFR_RNDN);  // exact: an integer in [2^127, 2^128)
    mpfr_div_2ui(y, x, 64, MPFR_RNDN);
    const std::uint64_t hi = mpfr_get_ui(y, MPFR_RNDZ);
    mpfr_set_ui(y, hi, MPFR_RNDN);
    mpfr_mul_2ui(y, y, 64, MPFR_RNDN);
    mpfr_sub(x, x, y, MPFR_RNDN);
    const std::uint64_t lo = mpfr_get_ui(x, MPFR_RNDZ);
    const auto& p = at(q);
    if (p.hi != hi || p.lo != lo || p.e2 != e2 || !(p.hi >> 63)) ++bad;
    if (q > dec::q_min) {
      const int step = p.e2 - at(q - 1).e2;
      if (step != 3 && step != 4) ++bad;
    }
  }
  mpfr_clear(x);
  mpfr_clear(y);
  REQUIRE(bad == 0);
}

TEST_CASE("decimal: hand cases give csv::number's verdict and bits", "[csv][decimal]") {
  using dec::status;
  const std::string zeros(400, '0');
  const std::vector<std::pair<std::string, status>> cases = {
      {"", status::number},
      {" \t\r ", status::number},
      {"1.", status::number},
      {".5", status::number},
      {"-.5", status::number},
      {"00012", status::number},
      {"0", status::number},
      {"-0", status::number},
      {"-0.000e-5", status::number},
      {"0e99999999999999999999", status::number},
      {"-0e99999999999999999999", status::number},
      {"1e+05", status::number},
      {"1E-5", status::number},
      {"1.e5", status::number},
      {" \t-2.5e3\r ", status::number},
      {"123456789012345678", status::number},
      {"9007199254740992", status::number},
      {"9007199254740993", status::hard},  // 2^53 + 1: an exact tie
      {"9007199254740995", status::hard},
      {"9007199254740994", status::number},
      {"1e22", status::number},
      {"1e23", status::hard},  // 10^23 lies exactly half way between two doubles
      {"1e-22", status::number},
      {"1.7976931348623157e308", status::number},
      {"1.7976931348623158e308", status::number},  // above DBL_MAX, rounds down to it
      {"1.7976931348623159e308", status::hard},    // overflows
      {"2.2250738585072014e-308", status::number},
      {"2.2250738585072011e-308", status::hard},  // subnormal
      {"1e400", status::hard},
      {"1e-400", status::hard},
      {"-1e-400", status::hard},
      {"4.9e-324", status::hard},
      {"2e-324", status::hard},
      {"1e99999999999999999999", status::hard},
      {"1e-99999999999999999999", status::hard},
      {"0." + zeros + "1", status::hard},        // csv::number says inf (see the report)
      {"1" + zeros + "e-5", status::hard},       // csv::number says 0
      {"0." + zeros + "1e500", status::number},  // 10^99
      {"1" + zeros + "e-390", status::number},   // 10^10
      // 10^(10^9 - 99991): an exponent past any clamp, digits shifting it back into the table
      {"0." + std::string(99990, '0') + "1e1000000000", status::hard},
      {"3.14159265358979323846264338327950288", status::number},
      {"inf", status::number},
      {"-inf", status::number},
      {"+INF", status::number},
      {"infinity", status::number},
      {"iNfInItY", status::number},
      {"nan", status::number},
      {"-nan", status::number},
      {"nan()", status::number},
      {"nan(abc_1)", status::number},
      {"NAN(Z9)", status::number},
      {".", status::not_number},
      {"+.e1", status::not_number},
      {".e5", status::not_number},
      {"e5", status::not_number},
      {"1e", status::not_number},
      {"1e+", status::not_number},
      {"1e-", status::not_number},
      {"1ex", status::not_number},
      {"1e5.5", status::not_number},
      {"-", status::not_number},
      {"+", status::not_number},
      {" - ", status::not_number},
      {"+-1", status::not_number},
      {"++1", status::not_number},
      {"- 1", status::not_number},
      {"1 2", status::not_number},
      {"1..2", status::not_number},
      {"1.2.3", status::not_number},
      {"1_000", status::not_number},
      {"0x1p3", status::not_number},
      {"0x10", status::not_number},
      {"\v1", status::not_number},
      {"1\n", status::not_number},
      {"1d", status::not_number},
      {"infinit", status::not_number},
      {"infe", status::not_number},
      {"in", status::not_number},
      {"na", status::not_number},
      {"NaN(", status::not_number},
      {"nan(-)", status::not_number},
      {"nan(a b)", status::not_number},
      {"nan)", status::not_number},
      {"nanx", status::not_number},
      {"-+inf", status::not_number},
  };
  for (const auto& [s, want] : cases) {
    INFO("'" << s << "'");
    double ref = 0, v = 0;
    const bool is_number = csv::number(s, ref);
    const status st = parse(s, v);
    CHECK(st == want);
    CHECK(is_number == (st != status::not_number));
    if (st == status::number) {
      if (std::isnan(ref)) {
        CHECK(std::isnan(v));
        CHECK(std::signbit(v) == std::signbit(ref));
      } else {
        CHECK(bits(v) == bits(ref));
      }
    }
  }
}

TEST_CASE("decimal: printed random doubles come back as csv::number reads them", "[csv][decimal]") {
  std::mt19937_64 rng(20240611);
  const auto run = [&](const char* name, std::size_t count, auto&& text) {
    checker c;
    for (std::size_t i = 0; i < count; ++i) c(dress(text(), rng));
    WARN(name << ": " << c.total << " texts, " << c.hard << " hard");
    REQUIRE_AGREES(c);
    return c;
  };

  const checker g17 =
      run("%.17g of normal doubles", 100000, [&] { return format("%.17g", random_normal(rng)); });
  CHECK(g17.hard * 10000 < g17.total);
  for (const char* fmt : {"%.16g", "%.15g", "%.6g", "%.20e", "%.25e", "%.40e"})
    run(fmt, 30000, [&] { return format(fmt, random_normal(rng)); });

  // Short decimals: the fast path and its edges (|q| about 22, w about 2^53).
  run("nice decimals", 60000, [&] {
    const int digits = 1 + static_cast<int>(rng() % 17);
    std::string d = std::to_string(1 + rng() % 9);
    for (int i = 1; i < digits; ++i) d += static_cast<char>('0' + rng() % 10);
    const int point = static_cast<int>(rng() % (digits + 1));
    if (point < digits) d.insert(static_cast<std::size_t>(point), ".");
    const int e = static_cast<int>(rng() % 61) - 30;
    return rng() % 2 ? d + (rng() % 2 ? "e" : "E") + std::to_string(e) : d;
  });
  run("fixed notation", 30000, [&] {
    const double x = std::pow(10.0, std::uniform_real_distribution<>(-5, 15)(rng));
    return format(("%." + std::to_string(rng() % 21) + "f").c_str(), x);
  });
  run("integers near 2^53, 2^64, 10^19", 30000, [&] {
    using u128 = unsigned __int128;
    const u128 base[] = {u128{1} << 53, u128{1} << 64, u128{10000000000000000000u}};
    const std::int64_t d = static_cast<std::int64_t>(rng() % 2001) - 1000;
    u128 v = base[rng() % 3] + static_cast<u128>(d);
    std::string s;
    for (; v; v /= 10) s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    return s;
  });
}

TEST_CASE("decimal: exact half way points are hard or right, never wrong", "[csv][decimal]") {
  std::mt19937_64 rng(77);
  checker any_mid, any_near;
  for (int i = 0; i < 4000; ++i) {
    auto [n, k] = midpoint(std::fabs(random_normal(rng)));
    const bool sci = rng() % 2;
    any_mid(decimal_text(n, k, sci));
    n.add(1);
    any_near(decimal_text(n, k, sci));
    n.sub1();
    n.sub1();
    any_near(decimal_text(n, k, sci));
  }
  WARN("midpoints of random doubles: " << any_mid.total << " texts, " << any_mid.hard << " hard; "
                                       << "+-1 in the last digit: " << any_near.total << ", "
                                       << any_near.hard << " hard");
  REQUIRE_AGREES(any_mid);
  REQUIRE_AGREES(any_near);

  // Doubles in [2^50, 2^63): the midpoint has at most 19 digits, so no digit is dropped. The tie
  // itself cannot be decided; one unit away in the last digit always can.
  checker mid, near;
  for (int i = 0; i < 20000; ++i) {
    const double x = std::ldexp(1.0 + std::ldexp(static_cast<double>(rng() >> 12), -52),
                                50 + static_cast<int>(rng() % 13));
    auto [n, k] = midpoint(x);
    if (n.str().size() > 19) continue;
    mid(decimal_text(n, k, false));
    n.add(1);
    near(decimal_text(n, k, rng() % 2));
    n.sub1();
    n.sub1();
    near(decimal_text(n, k, rng() % 2));
  }
  WARN("short midpoints: " << mid.total << " texts, " << mid.hard << " hard; +-1: " << near.total
                           << ", " << near.hard << " hard");
  REQUIRE_AGREES(mid);
  REQUIRE_AGREES(near);
  CHECK(mid.total > 10000);
  CHECK(mid.hard == mid.total);
  CHECK(near.hard == 0);
}

TEST_CASE("decimal: junk text gets csv::number's verdict", "[csv][decimal]") {
  std::mt19937_64 rng(5);
  static const char alphabet[] = "0123456789+-.eEinfatyINFATY() x_\t";
  checker c;
  for (int i = 0; i < 300000; ++i) {
    std::string s(rng() % 13, ' ');
    for (auto& ch : s) ch = alphabet[rng() % (sizeof alphabet - 1)];
    c(s);
  }
  // Junk biased toward the grammar: short pieces of numbers, words and signs glued together.
  static const char* const pieces[] = {"1",     "0",   "9", ".", "e", "E", "+",  "-", "inf",
                                       "inity", "nan", "(", ")", "_", "a", "12", " ", "\t"};
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    for (int n = static_cast<int>(rng() % 6); n > 0; --n) s += pieces[rng() % std::size(pieces)];
    c(s);
  }
  WARN("junk: " << c.total << " texts, " << c.hard << " hard");
  REQUIRE_AGREES(c);
}

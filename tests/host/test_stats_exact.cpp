// Exact stats on the CPU against an independent MPFR reference, bit for bit.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "host/stats_data.hpp"
#include "host/stats_host.hpp"
#include "host/stats_reference.hpp"

using namespace hetpipe;
using namespace hetpipe::test;
using host::column_acc;

namespace {

const char* shape_name(shape s) {
  constexpr const char* names[] = {"mixed",    "typical",  "cancellation",
                                   "specials", "constant", "tiny"};
  return names[int(s)];
}

column_stats host_stats(dtype t, const std::vector<std::byte>& col) {
  column_acc acc;
  host::accumulate(t, col.data(), col.size() / dtype_size(t), 1, &acc);
  return host::finalize(t, acc);
}

// Σx and Σx² of float data as the exact integers column_acc holds (units 2^−L and 2^−2L, L = 149
// or 1074), from the bits: sensitive to an error of one unit, which the rounded results could hide.
template <class B, int fbits, unsigned emax>
std::pair<mpz_class, mpz_class> exact_sums(const std::vector<std::byte>& col) {
  mpz_class s, q;
  for (std::size_t i = 0; i + sizeof(B) <= col.size(); i += sizeof(B)) {
    B b;
    std::memcpy(&b, col.data() + i, sizeof b);
    const unsigned e = unsigned(b >> fbits) & emax;
    const B f = b & ((B(1) << fbits) - 1);
    if (e == emax) continue;
    mpz_class m;
    mpz_import(m.get_mpz_t(), 1, -1, sizeof(B), 0, 0, &f);
    if (e) m += mpz_class(1) << fbits;
    const mpz_class x = m << (e ? e - 1 : 0);
    if (b >> (8 * sizeof(B) - 1))
      s -= x;
    else
      s += x;
    q += x * x;
  }
  return {s, q};
}

// Columns at the edges of the narrow-block windows (host/narrow_sums.hpp): exponent fields in
// [e_hi − width + 1, e_hi], blocks of `block` elements, three and a bit of them.
template <class F>
void check_windows(std::initializer_list<int> widths, std::initializer_list<unsigned> e_his,
                   std::size_t block, unsigned min_e) {
  using B = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  constexpr int fbits = std::numeric_limits<F>::digits - 1;
  constexpr B frac_max = (B(1) << fbits) - 1;
  const dtype t = sizeof(F) == 4 ? dtype::f32 : dtype::f64;
  std::mt19937_64 rng(99);
  const std::size_t n = 3 * block + 5;
  for (const int width : widths)
    for (const unsigned e_hi : e_his)
      for (const int signs : {0, 1, 2, 3}) {  // all positive, all negative, mixed; 3: dense
        const unsigned e_lo = std::max<int>(int(e_hi) - width + 1, int(min_e));
        std::vector<std::byte> col;
        for (std::size_t i = 0; i < n; ++i) {
          const B sign = signs == 2 ? B(rng() & 1) : B(signs == 1);
          unsigned e = i % 7 == 0 ? e_lo : i % 3 == 0 ? e_hi : e_lo + rng() % (e_hi - e_lo + 1);
          B frac = i % 5 == 0 ? frac_max : B(rng() & frac_max);
          if (signs == 3) {
            // The largest values first, then odd multiples of the window's unit: the running
            // sums are as large as the window allows when the low bits arrive.
            const bool tail = i % (block / 4) >= block / 4 - block / 64;
            e = tail ? std::max(e_lo, 1u) : e_hi;
            frac = tail ? 1 : frac_max;
          }
          put(col, std::bit_cast<F>(B(sign << (8 * sizeof(B) - 1) | B(e) << fbits | frac)));
        }
        INFO("window " << width << ", E_hi " << e_hi << ", signs " << signs);
        column_acc acc;
        host::accumulate(t, col.data(), n, 1, &acc);
        const auto [s, q] =
            sizeof(F) == 4 ? exact_sums<B, fbits, 0xff>(col) : exact_sums<B, fbits, 0x7ff>(col);
        CHECK(acc.s == s);
        CHECK(acc.q == q);
        check_same(host::finalize(t, acc), reference_stats(t, col.data(), n));
      }
}

template <class T>
std::vector<std::byte> bytes_of(std::initializer_list<T> values) {
  std::vector<std::byte> out;
  for (T v : values) put(out, v);
  return out;
}

}  // namespace

TEST_CASE("Stats of random columns match the MPFR reference bit for bit", "[stats]") {
  std::mt19937_64 rng(20240611);
  const std::size_t sizes[] = {1, 2, 3, 7, 100, 4097, 30000};
  for (dtype t : all_dtypes)
    for (shape sh : all_shapes)
      for (std::size_t n : sizes) {
        const auto col = make_column(t, sh, n, rng);
        INFO("dtype " << dtype_name(t) << ", shape " << shape_name(sh) << ", n " << n);
        check_same(host_stats(t, col), reference_stats(t, col.data(), n));
      }
}

TEST_CASE("Long columns cross every internal flush boundary and stay exact", "[stats]") {
  // f32 flushes its 64-bit bins every 2^16 elements, f64 its 128-bit bins every 2^20.
  std::mt19937_64 rng(7);
  for (dtype t : {dtype::f32, dtype::f64, dtype::i32, dtype::u64, dtype::u8}) {
    for (shape sh : {shape::mixed, shape::typical, shape::constant}) {
      const std::size_t n = (t == dtype::f64 ? (1u << 20) : (1u << 17)) + 77;
      const auto col = make_column(t, sh, n, rng);
      INFO("dtype " << dtype_name(t) << ", shape " << shape_name(sh));
      check_same(host_stats(t, col), reference_stats(t, col.data(), n));
    }
  }
}

TEST_CASE("Float blocks summed in doubles stay exact at the edges of their exponent window",
          "[stats]") {
  // accumulate() sums an f32 block of 4096 without bins when its nonzero exponent fields E lie in
  // [E_lo, E_hi] with E_hi − max(E_lo, 1) + 1 ≤ 21, and retries a wider one on its first 1024
  // with a window of 23 (host/narrow_sums.hpp). These blocks sit at the edges of those windows and
  // past them, at the top, middle and bottom of the range, with all-ones mantissas (the largest
  // sums of squares a window holds) and both signs.
  check_windows<float>({20, 21, 22, 23, 24, 25, 26, 32}, {254u, 140u, 21u, 20u}, 4096, 0);
  // f64: blocks of 2048 with a window of 34, retried on 512 with 38, and only for p0 ≥ 600
  // (E_lo ≥ 601) and E_hi ≤ 1500; past those limits, the bins.
  check_windows<double>({30, 34, 35, 36, 38, 39, 40, 60}, {1500u, 1501u, 1100u, 640u, 635u}, 2048,
                        590);
  // Zeros in narrow blocks: only their order keys tell the min or max (−0 below +0).
  for (const float z : {0.0f, -0.0f})
    for (const float v : {1.5f, -1.5f}) {
      std::vector<std::byte> col;
      for (int i = 0; i < 5000; ++i) put(col, i == 1234 ? z : v * float(1 + i % 9));
      INFO("zero " << z << " among " << v);
      check_same(host_stats(dtype::f32, col), reference_stats(dtype::f32, col.data(), 5000));
    }
  std::vector<std::byte> zeros;
  for (int i = 0; i < 9000; ++i) put(zeros, i % 3 ? 0.0f : -0.0f);
  check_same(host_stats(dtype::f32, zeros), reference_stats(dtype::f32, zeros.data(), 9000));
}

TEST_CASE("Sums whose binary digits carry across many limbs stay exact", "[stats]") {
  // An f64 column's bins and narrow sums are added into fixed arrays of 64-bit limbs, then into
  // its mpz once. A wide block of 300 powers of two (exponent fields 700..999: bins) leaves S with
  // 300 one bits in a row; a narrow block of 2048 copies of 2^(689 - 1023) then adds 2^11 · 2^52
  // units at the lowest of them (narrow sums go in after the bins), and its carry runs through
  // five limbs. Split over one and over three columns, which fold every band on their own.
  std::vector<std::byte> col;
  for (int i = 0; i < 2048; ++i) put(col, i < 300 ? std::ldexp(1.0, 700 + i - 1023) : 0.0);
  for (int i = 0; i < 2048; ++i) put(col, std::ldexp(1.0, 689 - 1023));
  const std::size_t n = col.size() / 8;
  column_acc acc;
  host::accumulate(dtype::f64, col.data(), n, 1, &acc);
  const auto [s, q] = exact_sums<std::uint64_t, 52, 0x7ff>(col);
  CHECK(acc.s == s);
  CHECK(acc.q == q);
  CHECK(mpz_sizeinbase(s.get_mpz_t(), 2) > 751 + 300);  // the carry ran past the ones
  check_same(host::finalize(dtype::f64, acc), reference_stats(dtype::f64, col.data(), n));
  // The same values as the middle column of three.
  std::vector<std::byte> rows;
  for (std::size_t i = 0; i < n; ++i) {
    put(rows, 1.0);
    rows.insert(rows.end(), col.begin() + 8 * i, col.begin() + 8 * i + 8);
    put(rows, -2.0);
  }
  column_acc three[3];
  host::accumulate(dtype::f64, rows.data(), n, 3, three);
  CHECK(three[1].s == s);
  CHECK(three[1].q == q);
}

TEST_CASE("Hand-picked hard cases give the correctly rounded results", "[stats]") {
  using lim = std::numeric_limits<double>;
  const double dmax = lim::max(), dmin = lim::denorm_min();

  SECTION("catastrophic cancellation keeps the small term") {
    const auto col = bytes_of<double>({1e16, 1.0, -1e16});
    const auto s = host_stats(dtype::f64, col);
    CHECK(s.sum == 1.0);
    check_same(s, reference_stats(dtype::f64, col.data(), 3));
  }
  SECTION("huge and tiny magnitudes together") {
    const auto col = bytes_of<double>({1e300, 1e-300, -1e300, dmin});
    const auto s = host_stats(dtype::f64, col);
    CHECK(s.sum == 1e-300);
    check_same(s, reference_stats(dtype::f64, col.data(), 4));
  }
  SECTION("a subnormal mean rounds half to even") {
    // (3·2^-1074 + 0) / 2 = 1.5·2^-1074 → 2·2^-1074
    const auto col = bytes_of<double>({3 * dmin, 0.0});
    const auto s = host_stats(dtype::f64, col);
    CHECK(s.mean == 2 * dmin);
    CHECK(s.variance == 0.0);  // 2.25·2^-2148 underflows
    check_same(s, reference_stats(dtype::f64, col.data(), 2));
  }
  SECTION("sums past the largest double overflow to infinity, means do not") {
    const auto col = bytes_of<double>({dmax, dmax});
    const auto s = host_stats(dtype::f64, col);
    CHECK(s.sum == lim::infinity());
    CHECK(s.mean == dmax);
    CHECK(s.variance == 0.0);
    check_same(s, reference_stats(dtype::f64, col.data(), 2));
    const auto spread = bytes_of<double>({dmax, -dmax});
    const auto v = host_stats(dtype::f64, spread);
    CHECK(v.variance == lim::infinity());
    CHECK(v.std == dmax);
    check_same(v, reference_stats(dtype::f64, spread.data(), 2));
  }
  SECTION("f32 extremes") {
    using fl = std::numeric_limits<float>;
    const auto col = bytes_of<float>({fl::max(), fl::denorm_min(), -fl::max(), -0.0f, 0.0f});
    const auto s = host_stats(dtype::f32, col);
    CHECK(s.sum == double(fl::denorm_min()));
    CHECK(std::get<double>(s.min) == -double(fl::max()));
    check_same(s, reference_stats(dtype::f32, col.data(), 5));
  }
  SECTION("negative zero orders below positive zero") {
    const auto col = bytes_of<double>({0.0, -0.0});
    const auto s = host_stats(dtype::f64, col);
    CHECK(std::signbit(std::get<double>(s.min)));
    CHECK_FALSE(std::signbit(std::get<double>(s.max)));
    CHECK_FALSE(std::signbit(s.sum));  // an exact zero is +0
    check_same(s, reference_stats(dtype::f64, col.data(), 2));
  }
  SECTION("integer extremes: squares past 128 bits") {
    constexpr auto u64max = std::numeric_limits<std::uint64_t>::max();
    const auto u = bytes_of<std::uint64_t>({u64max, u64max, u64max, 0});
    const auto su = host_stats(dtype::u64, u);
    CHECK(std::get<std::uint64_t>(su.max) == u64max);
    check_same(su, reference_stats(dtype::u64, u.data(), 4));
    constexpr auto i64min = std::numeric_limits<std::int64_t>::min();
    constexpr auto i64max = std::numeric_limits<std::int64_t>::max();
    const auto i = bytes_of<std::int64_t>({i64min, i64max, i64min, i64min});
    const auto si = host_stats(dtype::i64, i);
    CHECK(std::get<std::int64_t>(si.min) == i64min);
    CHECK(std::get<std::int64_t>(si.max) == i64max);
    check_same(si, reference_stats(dtype::i64, i.data(), 4));
  }
  SECTION("infinities: sums and means are infinite, or NaN with both signs") {
    const double inf = lim::infinity(), nan = lim::quiet_NaN();
    const auto pos = bytes_of<double>({1.0, inf, nan, 2.0});
    const auto sp = host_stats(dtype::f64, pos);
    CHECK(sp.count == 3);
    CHECK(sp.nan_count == 1);
    CHECK(sp.sum == inf);
    CHECK(sp.mean == inf);
    CHECK(std::isnan(sp.variance));
    CHECK(std::get<double>(sp.max) == inf);
    CHECK(std::get<double>(sp.min) == 1.0);
    const auto both = bytes_of<float>({-INFINITY, 1.0f, INFINITY});
    const auto sb = host_stats(dtype::f32, both);
    CHECK(std::isnan(sb.sum));
    CHECK(std::get<double>(sb.min) == -inf);
    check_same(sb, reference_stats(dtype::f32, both.data(), 3));
  }
}

TEST_CASE("Empty, all-NaN and single-element columns", "[stats]") {
  for (dtype t : all_dtypes) {
    INFO("dtype " << dtype_name(t));
    column_acc empty;
    host::accumulate(t, nullptr, 0, 1, &empty);
    const auto e = host::finalize(t, empty);
    CHECK(e.count == 0);
    CHECK(std::isnan(std::get<double>(e.min)));
    CHECK(std::isnan(std::get<double>(e.max)));
    CHECK(e.sum == 0.0);
    CHECK(std::isnan(e.mean));
    CHECK(std::isnan(e.variance));
    CHECK(std::isnan(e.std));

    std::mt19937_64 rng(11 + int(t));
    const auto one = make_column(t, shape::mixed, 1, rng);
    const auto s = host_stats(t, one);
    CHECK(s.count == 1);
    CHECK(std::isnan(s.sample_variance));
    CHECK(s.variance == 0.0);
    CHECK(s.std == 0.0);
    check_same(s, reference_stats(t, one.data(), 1));
  }
  for (dtype t : {dtype::f32, dtype::f64}) {
    std::vector<std::byte> nans;
    for (int i = 0; i < 1000; ++i)
      t == dtype::f32 ? put(nans, (i % 2 ? -1 : 1) * std::numeric_limits<float>::quiet_NaN())
                      : put(nans, std::bit_cast<double>(0x7ff0000000000001ull + i));
    const auto s = host_stats(t, nans);
    CHECK(s.count == 0);
    CHECK(s.nan_count == 1000);
    CHECK(std::isnan(std::get<double>(s.min)));
    CHECK(s.sum == 0.0);
    CHECK(std::isnan(s.mean));
  }
}

TEST_CASE("Splitting a column anywhere and merging in any order gives identical bits", "[stats]") {
  std::mt19937_64 rng(424242);
  for (dtype t : all_dtypes)
    for (shape sh : all_shapes) {
      const std::size_t n = 5000 + rng() % 20000, es = dtype_size(t);
      const auto col = make_column(t, sh, n, rng);
      const auto whole = host_stats(t, col);
      for (int trial = 0; trial < 3; ++trial) {
        // Random cut points, pieces copied to odd addresses (unaligned), merged in random order.
        std::vector<std::size_t> cuts = {0, n};
        for (int k = 0; k < 1 + int(rng() % 8); ++k) cuts.push_back(rng() % (n + 1));
        std::sort(cuts.begin(), cuts.end());
        std::vector<column_acc> parts(cuts.size() - 1);
        for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
          std::vector<std::byte> piece(1 + (cuts[k + 1] - cuts[k]) * es);
          std::copy(col.begin() + cuts[k] * es, col.begin() + cuts[k + 1] * es, piece.begin() + 1);
          host::accumulate(t, piece.data() + 1, cuts[k + 1] - cuts[k], 1, &parts[k]);
        }
        std::shuffle(parts.begin(), parts.end(), rng);
        column_acc total;
        for (auto& p : parts) total.merge(p);
        INFO("dtype " << dtype_name(t) << ", shape " << shape_name(sh) << ", trial " << trial);
        CHECK(all_same(host::finalize(t, total), whole));
        // Accumulating straight into one column_acc piece by piece is the same again.
        column_acc running;
        for (std::size_t k = 0; k + 1 < cuts.size(); ++k)
          host::accumulate(t, col.data() + cuts[k] * es, cuts[k + 1] - cuts[k], 1, &running);
        CHECK(running.s == total.s);
        CHECK(running.q == total.q);
        CHECK(all_same(host::finalize(t, running), whole));
      }
    }
}

TEST_CASE("Row-major blocks with several columns give each column its own stats", "[stats]") {
  std::mt19937_64 rng(31337);
  for (dtype t : all_dtypes) {
    const std::size_t es = dtype_size(t);
    // accumulate() transposes bands of as many rows as fit 16 MiB: 3 × 20000 and 1000 × 300 take
    // one band. Rows so wide that 16 MiB holds fewer than 1024 of them (wide_rows) are cut into
    // blocks of columns over 1024 rows: 70000 f64 columns × 64 rows in blocks of 32768 + 32768 +
    // 4464 columns, 5000 f32 columns × 1100 rows in 4096 + 904 columns over 1024 + 76 rows.
    // 2..16 columns are copied by an unrolled loop for each count (transpose_narrow), 17 and more
    // by the general one.
    std::vector<std::size_t> counts = {1000, 5000, 70000};
    for (std::size_t c = 2; c <= 17; ++c) counts.push_back(c);
    for (std::size_t cols : counts) {
      if (cols == 70000 && t != dtype::f64) continue;  // many columns take a while
      if (cols == 5000 && t != dtype::f32) continue;
      const std::size_t rows = cols == 3      ? 20000
                               : cols <= 17   ? 2000 + 7 * cols
                               : cols == 1000 ? 300
                               : cols == 5000 ? 1100
                                              : 64;
      // Column j gets shape j % 6 so the columns differ visibly (70000: typical, which keeps the
      // per-column folds cheap).
      std::vector<std::vector<std::byte>> columns;
      for (std::size_t j = 0; j < cols; ++j)
        columns.push_back(make_column(
            t, cols == 70000 ? shape::typical : all_shapes[j % std::size(all_shapes)], rows, rng));
      std::vector<std::byte> block(rows * cols * es);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j)
          std::memcpy(block.data() + (r * cols + j) * es, columns[j].data() + r * es, es);
      std::vector<column_acc> acc(cols);
      host::accumulate(t, block.data(), rows, cols, acc.data());
      std::size_t differ = 0, first = cols;
      for (std::size_t j = 0; j < cols; ++j) {
        const auto got = host::finalize(t, acc[j]);
        // Against the column alone (whose stats the other tests check against MPFR).
        if (!all_same(got, host_stats(t, columns[j]))) {
          ++differ;
          first = std::min(first, j);
        }
      }
      INFO("dtype " << dtype_name(t) << ", cols " << cols << ", first differing column " << first);
      CHECK(differ == 0);
    }
  }
}

TEST_CASE("Order keys sort like the numbers and map back to them", "[stats]") {
  std::mt19937_64 rng(99);
  for (dtype t : all_dtypes) {
    const std::size_t es = dtype_size(t);
    const auto col = make_column(t, shape::mixed, 2000, rng);
    for (std::size_t i = 0; i + 1 < 2000; ++i) {
      const auto a = decode(t, col.data() + i * es), b = decode(t, col.data() + (i + 1) * es);
      const auto ka = host::order_key(t, col.data() + i * es);
      const auto kb = host::order_key(t, col.data() + (i + 1) * es);
      INFO("dtype " << dtype_name(t) << ", element " << i);
      CHECK((ka < kb) == less(a, b));
      CHECK(same(host::key_value(t, ka), as_variant(a)));
    }
  }
  const double inf = std::numeric_limits<double>::infinity();
  for (double v : {-inf, -1.0, -0.0}) {
    double w = v == -inf ? -1.0 : v == -1.0 ? -0.0 : 0.0;
    CHECK(host::order_key(dtype::f64, reinterpret_cast<const std::byte*>(&v)) <
          host::order_key(dtype::f64, reinterpret_cast<const std::byte*>(&w)));
  }
}

TEST_CASE("GPU-style 128-bit bins fold into the same exact sums", "[stats]") {
  // A lane that pre-sums mantissas into 128-bit bins by position must land on the same S and Q.
  std::mt19937_64 rng(5);
  const auto col = make_column(dtype::f64, shape::mixed, 3000, rng);
  column_acc direct;
  host::accumulate(dtype::f64, col.data(), 3000, 1, &direct);
  column_acc binned;
  for (std::size_t i = 0; i < 3000; ++i) {
    std::uint64_t b;
    std::memcpy(&b, col.data() + 8 * i, 8);
    const int e = int(b >> 52) & 0x7ff;
    const std::uint64_t m = (b & ((1ull << 52) - 1)) | (e ? 1ull << 52 : 0);
    const int p = std::max(e, 1) - 1;
    binned.add_s_bin(p, b >> 63 ? -__int128(m) : __int128(m));
    binned.add_q_bin(2 * p, (unsigned __int128)m * m);
  }
  CHECK(binned.s == direct.s);
  CHECK(binned.q == direct.q);
  column_acc extremes;
  const __int128 i128min = -(__int128(1) << 126) * 2;
  extremes.add_s_bin(3, i128min);
  extremes.add_q_bin(0, ~(unsigned __int128)0);
  mpz_class want_s = -(mpz_class(1) << 130), want_q = (mpz_class(1) << 128) - 1;
  CHECK(extremes.s == want_s);
  CHECK(extremes.q == want_q);
}

TEST_CASE("Threads accumulating into distinct accumulators do not disturb each other", "[stats]") {
  std::mt19937_64 rng(77);
  for (dtype t : {dtype::f32, dtype::f64, dtype::i64}) {
    const std::size_t n = 300000;
    std::vector<std::vector<std::byte>> cols;
    for (int k = 0; k < 4; ++k) cols.push_back(make_column(t, all_shapes[k], n, rng));
    std::vector<column_acc> acc(4);
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
      threads.emplace_back([&, k] {
        // Many small calls interleave the threads' use of their scratch bins.
        for (std::size_t r0 = 0; r0 < n; r0 += 1000)
          host::accumulate(t, cols[k].data() + r0 * dtype_size(t),
                           std::min<std::size_t>(1000, n - r0), 1, &acc[k]);
      });
    for (auto& th : threads) th.join();
    for (int k = 0; k < 4; ++k) {
      INFO("dtype " << dtype_name(t) << ", column " << k);
      CHECK(all_same(host::finalize(t, acc[k]), host_stats(t, cols[k])));
    }
  }
}

// The CSV parse kernels against the same per-record code run on the host (cuda/csv_device.cuh,
// itself checked against host::csv in tests/host/test_csv_device.cpp): record starts, every
// row's values and text flags bit for bit, the status word, and the stats kernel over a row count
// the device wrote.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hetpipe/dtype.hpp>
#include <hetpipe/error.hpp>

#include "cuda/csv_device.cuh"
#include "cuda/csv_kernels.hpp"
#include "cuda/runtime.hpp"
#include "cuda/stats_kernels.hpp"
#include "host/stats_host.hpp"

namespace {

namespace hc = hetpipe::cuda;
namespace cd = hetpipe::cuda::csv_detail;

struct parsed {
  std::vector<std::uint64_t> words;
  std::vector<double> values;  // rows x cols
};

struct kernel_case {
  std::string text;
  char delim = ',';
  std::uint32_t fields = 0;
  std::vector<std::uint32_t> pick;
  bool strict = false;
  std::size_t max_records = 0;  // 0: csv_max_records
};

// A case's buffers on the device and its csv_parse, queued on `s`.
struct device_case {
  hc::stream s{0};
  hc::device_buffer d_text, d_pow10, d_columns, d_scratch, d_values, d_words;
  hc::pinned_buffer h_text, h_pow10, h_columns;
  hc::csv_parse_args a;

  explicit device_case(const kernel_case& k)
      : d_text(std::max<std::size_t>(k.text.size(), 1)),  // no byte past the text to read
        d_pow10(hc::decimal::table_size * sizeof(hc::decimal::pow10_entry)),
        d_columns((k.fields + k.pick.size()) * 4),
        d_scratch(hc::csv_scratch_bytes(k.text.size())),
        d_values(max_records(k) * k.pick.size() * 8),
        d_words(hc::csv_words(k.pick.size()) * 8),
        h_text(d_text.size()),
        h_pow10(d_pow10.size()),
        h_columns(d_columns.size()) {
    const auto pow10 = hc::decimal::make_pow10_table();
    const auto columns = hc::csv_columns(k.fields, k.pick);
    std::memcpy(h_text.get(), k.text.data(), k.text.size());
    std::memcpy(h_pow10.get(), pow10.data(), h_pow10.size());
    std::memcpy(h_columns.get(), columns.data(), h_columns.size());
    hc::copy_h2d_async(d_text.get(), h_text.get(), k.text.size(), s);
    hc::copy_h2d_async(d_pow10.get(), h_pow10.get(), h_pow10.size(), s);
    hc::copy_h2d_async(d_columns.get(), h_columns.get(), h_columns.size(), s);
    // Words the launch must overwrite, not add to; values past the rows it writes.
    hc::memset_async(d_words.get(), 0x5a, d_words.size(), s);
    hc::memset_async(d_values.get(), 0x7f, d_values.size(), s);
    a.d_text = static_cast<const char*>(d_text.get());
    a.size = k.text.size();
    a.delim = k.delim;
    a.fields = k.fields;
    a.cols = static_cast<std::uint32_t>(k.pick.size());
    a.strict = k.strict;
    a.d_pow10 = static_cast<const hc::decimal::pow10_entry*>(d_pow10.get());
    a.d_columns = static_cast<const std::int32_t*>(d_columns.get());
    a.d_scratch = d_scratch.get();
    a.scratch_bytes = d_scratch.size();
    a.d_values = static_cast<double*>(d_values.get());
    a.max_records = max_records(k);
    a.d_words = static_cast<std::uint64_t*>(d_words.get());
    hc::csv_parse(a, s.handle());
  }
  static std::size_t max_records(const kernel_case& k) {
    return k.max_records ? k.max_records : hc::csv_max_records(k.text.size(), k.fields);
  }
};

parsed on_gpu(const kernel_case& k) {
  device_case d(k);
  parsed p;
  p.words.resize(hc::csv_words(k.pick.size()));
  hc::copy_d2h_async(p.words.data(), d.d_words.get(), d.d_words.size(), d.s);
  d.s.synchronize();
  // Every row the buffer holds: those past the device's row count must be as the test left them.
  p.values.resize(d.a.max_records * k.pick.size());
  hc::copy_d2h_async(p.values.data(), d.d_values.get(), p.values.size() * 8, d.s);
  d.s.synchronize();
  const std::size_t written = std::min<std::size_t>(p.words[hc::csv_rows], d.a.max_records);
  std::size_t touched = 0;
  for (std::size_t i = written * k.pick.size(); i < p.values.size(); ++i)
    touched += std::bit_cast<std::uint64_t>(p.values[i]) != 0x7f7f7f7f7f7f7f7full;
  CHECK(touched == 0);
  p.values.resize(written * k.pick.size());
  return p;
}

// The same records through the per-record code on the host, in order.
parsed on_host(const kernel_case& k, std::vector<std::size_t>& starts) {
  const auto pow10 = hc::decimal::make_pow10_table();
  const auto columns = hc::csv_columns(k.fields, k.pick);
  hc::csv_parse_args a;  // the host's tables, as the kernel reads the device's
  a.delim = k.delim;
  a.fields = k.fields;
  a.cols = static_cast<std::uint32_t>(k.pick.size());
  a.strict = k.strict;
  a.d_pow10 = pow10.data();
  a.d_columns = columns.data();
  const cd::record_layout l = hc::record_layout_of(a);
  parsed p;
  p.words.assign(hc::csv_words(l.cols), 0);
  const std::size_t max_records =
      k.max_records ? k.max_records : hc::csv_max_records(k.text.size(), k.fields);
  for (std::size_t i = 0; i < k.text.size(); ++i)
    if (cd::starts_record(k.text.data(), k.text.size(), i)) starts.push_back(i);
  p.words[hc::csv_selected] = starts.size();
  p.words[hc::csv_rows] = std::min(starts.size(), max_records);
  p.words[hc::csv_status] = starts.size() > max_records;
  p.values.assign(p.words[hc::csv_rows] * l.cols, 0);
  for (std::size_t r = 0; r < p.words[hc::csv_rows]; ++r) {
    const std::size_t end = cd::record_end(k.text.data(), k.text.size(), starts[r]);
    if (cd::parse_record(k.text.data() + starts[r], end - starts[r], l, &p.values[r * l.cols],
                         p.words.data() + hc::csv_flags) != cd::record_ok)
      p.words[hc::csv_status] = 1;
  }
  return p;
}

void check_case(const kernel_case& k) {
  std::vector<std::size_t> starts;
  const parsed want = on_host(k, starts);
  const parsed got = on_gpu(k);
  CHECK(got.words[hc::csv_selected] == want.words[hc::csv_selected]);
  CHECK(got.words[hc::csv_rows] == want.words[hc::csv_rows]);
  CHECK(got.words[hc::csv_status] == want.words[hc::csv_status]);
  // A chunk with its status set goes to the host: its values and flags are not read.
  if (want.words[hc::csv_status] != 0 || got.values.size() != want.values.size()) return;
  for (std::size_t c = 0; c < k.pick.size(); ++c)
    CHECK((got.words[hc::csv_flags + c] != 0) == (want.words[hc::csv_flags + c] != 0));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < want.values.size(); ++i) {
    const double g = got.values[i], w = want.values[i];
    const bool same = std::isnan(w)
                          ? std::isnan(g)
                          : std::bit_cast<std::uint64_t>(g) == std::bit_cast<std::uint64_t>(w);
    if (!same && bad++ == 0) {
      const std::size_t r = i / k.pick.size();
      INFO("row " << r << " at byte " << starts[r] << " column " << i % k.pick.size());
      CHECK(std::bit_cast<std::uint64_t>(g) == std::bit_cast<std::uint64_t>(w));
    }
  }
  CHECK(bad == 0);
}

std::string random_number(std::mt19937_64& g) {
  char buf[64];
  const double x = std::ldexp(static_cast<double>(g() >> 11), static_cast<int>(g() % 120) - 80);
  switch (g() % 6) {
    case 0:
      std::snprintf(buf, sizeof buf, "%.17g", x);
      break;
    case 1:
      std::snprintf(buf, sizeof buf, "%.3f", x);
      break;
    case 2:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(g() % 100000) - 50000);
      break;
    case 3:
      std::snprintf(buf, sizeof buf, " \"%.6e\" ", -x);
      break;
    case 4:
      return "";
    default:
      std::snprintf(buf, sizeof buf, "%.25e", x);
  }
  return buf;
}

}  // namespace

TEST_CASE("CSV kernels: records, values and text flags equal the host's", "[gpu][kernels][csv]") {
  std::mt19937_64 g(31);
  for (std::size_t rows : {0u, 1u, 2u, 255u, 256u, 257u, 5000u, 200000u}) {
    CAPTURE(rows);
    kernel_case k;
    k.fields = 4;
    k.pick = {0, 1, 3, 3};
    for (std::size_t r = 0; r < rows; ++r) {
      if (g() % 40 == 0) k.text += g() % 2 ? "\n" : "\r\n";
      k.text += random_number(g) + "," + (g() % 5 ? random_number(g) : "x y") + ",label," +
                random_number(g) + (g() % 3 ? "\n" : "\r\n");
    }
    if (rows && g() % 2) k.text.pop_back();  // a last line without its line break
    check_case(k);
    k.strict = true;  // text in column 1 now goes to the host
    check_case(k);
  }
}

TEST_CASE("CSV kernels: more records than the grid has threads", "[gpu][kernels][csv]") {
  // The parse kernel's grid is at most 4096 blocks of 256 threads: 1 100 000 records make some
  // threads parse a second one (its grid-stride loop).
  kernel_case k;
  k.fields = 1;
  k.pick = {0};
  for (int r = 0; r < 1100000; ++r) k.text += std::to_string(r % 1000 - 500) + "\n";
  check_case(k);
}

TEST_CASE("CSV kernels: bad records, too many records and empty chunks set the status",
          "[gpu][kernels][csv]") {
  kernel_case k;
  k.fields = 2;
  k.pick = {1};
  k.text = "1,2\n3,4\n5\n";  // a record of one field
  check_case(k);
  k.text = "1,2\n\"3,4\n";  // a quote not closed
  check_case(k);
  k.text = "1,2\n3,4\n5,6\n";
  k.max_records = 2;  // more records than rows
  check_case(k);
  k.max_records = 0;
  k.text = "";
  check_case(k);
  k.text = "\n\r\n\n";  // blank lines only
  check_case(k);
}

TEST_CASE("CSV kernels: the stats kernel reduces the rows the device counted",
          "[gpu][kernels][csv][stats]") {
  std::mt19937_64 g(3);
  std::string text;
  for (int r = 0; r < 30000; ++r) text += random_number(g) + ";" + random_number(g) + "\n";
  kernel_case k;
  k.text = text;
  k.delim = ';';
  k.fields = 2;
  k.pick = {0, 1};
  device_case d(k);
  hc::device_buffer d_result(hc::stats_result_bytes(9, 2));
  hc::pinned_buffer h_result(d_result.size());
  hc::stats_init(9, 2, d_result.get(), d.s.handle());
  hc::stats_accumulate_counted(9, d.d_values.get(), d.a.max_records, d.a.d_words + hc::csv_rows, 2,
                               d_result.get(), d.s.handle());
  hc::copy_d2h_async(h_result.get(), d_result.get(), d_result.size(), d.s);
  d.s.synchronize();
  hetpipe::host::column_acc got[2], want[2];
  hc::stats_fold(9, h_result.get(), 2, got);
  std::vector<std::size_t> starts;
  const parsed host = on_host(k, starts);
  REQUIRE(host.words[hc::csv_status] == 0);
  hetpipe::host::accumulate(hetpipe::dtype::f64,
                            reinterpret_cast<const std::byte*>(host.values.data()),
                            host.values.size() / 2, 2, want);
  for (int c = 0; c < 2; ++c) {
    CAPTURE(c);
    CHECK(got[c].count + got[c].nan_count == 30000);
    const auto gs = hetpipe::host::finalize(hetpipe::dtype::f64, got[c]);
    const auto ws = hetpipe::host::finalize(hetpipe::dtype::f64, want[c]);
    CHECK(gs.count == ws.count);
    CHECK(gs.nan_count == ws.nan_count);
    CHECK(std::bit_cast<std::uint64_t>(gs.sum) == std::bit_cast<std::uint64_t>(ws.sum));
    CHECK(std::bit_cast<std::uint64_t>(gs.variance) == std::bit_cast<std::uint64_t>(ws.variance));
    CHECK(std::bit_cast<std::uint64_t>(std::get<double>(gs.min)) ==
          std::bit_cast<std::uint64_t>(std::get<double>(ws.min)));
    CHECK(std::bit_cast<std::uint64_t>(std::get<double>(gs.max)) ==
          std::bit_cast<std::uint64_t>(std::get<double>(ws.max)));
  }
}

#endif

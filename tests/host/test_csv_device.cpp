// The GPU's per-record CSV code (cuda/csv_device.cuh), compiled for the host, against
// host::csv::split and host::csv::accumulate: a record it takes gives the host's values and text
// flags bit for bit, and every record the host rejects goes back to the host.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/csv_device.cuh"
#include "cuda/csv_kernels.hpp"
#include "host/csv.hpp"

namespace {

namespace cd = hetpipe::cuda::csv_detail;
namespace csv = hetpipe::host::csv;

// A host layout's tables as the kernel gets them, here in host memory.
struct device_layout {
  std::vector<hetpipe::cuda::decimal::pow10_entry> table =
      hetpipe::cuda::decimal::make_pow10_table();
  std::vector<std::int32_t> columns;
  cd::record_layout l;

  explicit device_layout(const csv::layout& h)
      : columns(hetpipe::cuda::csv_columns(h.fields, h.pick)) {
    hetpipe::cuda::csv_parse_args a;
    a.delim = h.delim;
    a.fields = static_cast<std::uint32_t>(h.fields);
    a.cols = static_cast<std::uint32_t>(h.pick.size());
    a.strict = h.strict;
    a.d_pow10 = table.data();
    a.d_columns = columns.data();
    l = hetpipe::cuda::record_layout_of(a);
  }
};

struct outcome {
  bool taken = false;  // the device took the record (else: to the host)
  std::vector<double> values;
  std::vector<std::uint64_t> flags;
};

outcome on_device(const device_layout& d, const std::string& line) {
  outcome o;
  o.values.assign(d.l.cols, -12345.0);
  o.flags.assign(d.l.cols, 0);
  o.taken = cd::parse_record(line.data(), line.size(), d.l, o.values.data(), o.flags.data()) ==
            cd::record_ok;
  return o;
}

// The host's verdict on one record: nullopt when it rejects it, else its values (from the
// accumulators: one record gives each column one value) and flags.
struct host_outcome {
  bool ok = false;
  std::vector<std::uint8_t> text;
  std::vector<hetpipe::host::column_acc> acc;
};

host_outcome on_host(const csv::layout& l, const std::string& line) {
  host_outcome h;
  h.acc.resize(l.pick.size());
  h.text.assign(l.pick.size(), 0);
  const std::string record = line + "\n";
  h.ok = !csv::accumulate(record.data(), record.size(), l, h.acc.data(), h.text.data());
  return h;
}

// The device's value of column c against the host's accumulator of that one record.
bool same_value(double v, const hetpipe::host::column_acc& a) {
  if (std::isnan(v)) return a.nan_count == 1 && a.count == 0;
  if (a.count != 1 || a.nan_count != 0) return false;
  // The order key of a double (stats_kernels.hpp): min_key == max_key == key(v).
  const std::uint64_t b = std::bit_cast<std::uint64_t>(v);
  const std::uint64_t key = (b >> 63) ? ~b : b | (std::uint64_t{1} << 63);
  return a.min_key == key && a.max_key == key;
}

void compare(const csv::layout& hl, const device_layout& dl, const std::string& line,
             std::size_t& taken, std::size_t& handed_back) {
  const outcome d = on_device(dl, line);
  const host_outcome h = on_host(hl, line);
  CAPTURE(line, hl.strict, hl.fields);
  if (!h.ok) {
    CHECK_FALSE(d.taken);  // every record the host rejects
    return;
  }
  if (!d.taken) {
    ++handed_back;
    return;
  }
  ++taken;
  for (std::size_t c = 0; c < hl.pick.size(); ++c) {
    CAPTURE(c, d.values[c]);
    REQUIRE(same_value(d.values[c], h.acc[c]));
    REQUIRE((d.flags[c] != 0) == (h.text[c] != 0));
  }
}

}  // namespace

TEST_CASE("device CSV records: hand-written cases", "[csv][csv_device]") {
  csv::layout hl{',', 3, {0, 2}, false};
  const device_layout dl(hl);
  std::size_t taken = 0, back = 0;
  for (const std::string line :
       {"1,2,3", " 1 , x ,  -2.5e3 ", "\"1\",\"a,b\",\"3\"", "\"1\" ,b, \"2\"\r", ",,",
        "\"\",,\"\"", "\"a\"\"b\",x,1", "abc,1,2", "1,2", "1,2,3,4", "1,\"2,3", "1,\"2\"x,3",
        "1,2\"3,4", "inf,x,-nan", "1e5,,0x10", "  \"  7  \"  ,x,8", "1,\t\"q\"\t,2"}) {
    compare(hl, dl, line, taken, back);
  }
  CHECK(taken >= 8);
  const auto d = on_device(dl, "1,x,2");
  REQUIRE(d.taken);
  CHECK(d.values == std::vector<double>{1, 2});
  CHECK(d.flags == std::vector<std::uint64_t>{0, 0});
  const auto t = on_device(dl, "abc,x,2");
  REQUIRE(t.taken);
  CHECK(std::isnan(t.values[0]));
  CHECK(t.flags[0] == 1);
  // Strict: a text field goes to the host (which names it).
  csv::layout strict = hl;
  strict.strict = true;
  CHECK_FALSE(on_device(device_layout(strict), "abc,x,2").taken);
  // A field kept twice gets its value in both columns.
  csv::layout twice{';', 2, {1, 0, 1}, true};
  const auto w = on_device(device_layout(twice), "4;5");
  REQUIRE(w.taken);
  CHECK(w.values == std::vector<double>{5, 4, 5});
}

TEST_CASE("device CSV records equal the host's on random lines", "[csv][csv_device]") {
  std::mt19937_64 g(2024);
  // Pieces lines are made of: numbers, text, quotes, spaces, delimiters of several kinds.
  const std::vector<std::string> pieces = {"1",
                                           "-2.5",
                                           "3e7",
                                           " ",
                                           "\t",
                                           "\"",
                                           "\"\"",
                                           ",",
                                           ";",
                                           "\r",
                                           "x",
                                           "nan",
                                           "inf",
                                           ".5",
                                           "1e999",
                                           "7.",
                                           "-0",
                                           "+",
                                           "12345678901234567890123",
                                           "e",
                                           "0.1",
                                           "9007199254740993",
                                           "2.2250738585072011e-308",
                                           "abc",
                                           "\"4\"",
                                           "1,2"};
  std::size_t taken = 0, back = 0;
  for (char delim : {',', ';', '\t', ' '}) {
    for (std::size_t fields : {1u, 2u, 3u, 5u}) {
      std::vector<std::uint32_t> pick;
      for (std::uint32_t f = 0; f < fields; ++f)
        if (g() % 3) pick.push_back(f);
      if (pick.empty()) pick.push_back(0);
      if (g() % 4 == 0) pick.push_back(pick.front());
      for (bool strict : {false, true}) {
        const csv::layout hl{delim, fields, pick, strict};
        const device_layout dl(hl);
        for (int k = 0; k < 4000; ++k) {
          std::string line;
          // Mostly well-formed records of numbers, some of anything.
          if (g() % 4) {
            for (std::size_t f = 0; f < fields; ++f) {
              if (f) line += delim;
              line += pieces[g() % 3 == 0 ? g() % pieces.size() : g() % 3];
            }
          } else {
            for (std::size_t n = g() % 8; n-- > 0;) line += pieces[g() % pieces.size()];
          }
          if (line.empty() || line.back() == '\r') continue;  // the caller strips these
          compare(hl, dl, line, taken, back);
        }
      }
    }
  }
  INFO("taken " << taken << ", handed back " << back);
  CHECK(taken > 20000);
}

TEST_CASE("device CSV record starts and ends are the host's lines", "[csv][csv_device]") {
  const std::string text = "\n\r\na\r\n\n b\n\r\n\rc\r";
  std::vector<std::string> records;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (cd::starts_record(text.data(), text.size(), i))
      records.push_back(text.substr(i, cd::record_end(text.data(), text.size(), i) - i));
  CHECK(records == std::vector<std::string>{"a", " b", "\rc"});
  CHECK(csv::count_records(text.data(), text.size()) == records.size());
}

// The CSV record parser (host/csv.hpp): the first byte picks the delimiter, the number of fields
// (1..4) and which are kept; the rest is the records. Checks: accumulate returns or names a bad
// record inside the piece, strict or not (text columns marked); cut after a record (quoted line
// breaks included), the two pieces give the whole's exact sums whenever both parse; csv::number
// reads what strtod reads; accumulate equals accumulate_by_split (records cut by split()), values,
// errors and open record alike. And the GPU's per-record code (cuda/csv_device.cuh, compiled for
// the host): a piece whose every record it takes gives the lax pass's sums and text flags, one with
// a bad record is never taken whole, and its decimal reader gives csv::number's bits or says it
// cannot.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/csv_device.cuh"
#include "cuda/csv_kernels.hpp"
#include "fuzz_common.hpp"
#include "host/csv.hpp"

namespace csv = hetpipe::host::csv;
using hetpipe::fuzz::require;

namespace {

bool same(const hetpipe::column_stats& a, const hetpipe::column_stats& b) {
  const auto bits = [](double x) {
    std::uint64_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
  };
  return a.count == b.count && a.nan_count == b.nan_count && bits(a.sum) == bits(b.sum) &&
         bits(a.variance) == bits(b.variance) &&
         bits(std::get<double>(a.min)) == bits(std::get<double>(b.min)) &&
         bits(std::get<double>(a.max)) == bits(std::get<double>(b.max));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  static constexpr char delims[] = {',', ';', '\t', '|'};
  csv::layout l;
  l.delim = delims[pick & 3];
  l.fields = 1 + ((pick >> 2) & 3);
  for (std::uint32_t f = 0; f < l.fields; ++f)
    if ((pick >> (4 + f)) & 1) l.pick.push_back(f);
  const char* text = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;

  std::vector<hetpipe::host::column_acc> whole(l.pick.size());
  const auto bad = csv::accumulate(text, n, l, whole.data());
  if (bad) require(bad->at < n, "a bad record starts inside the piece");

  // Not strict: only a malformed record stops it; where the strict pass went through, it gives
  // the same sums and marks no column as text.
  csv::layout lax = l;
  lax.strict = false;
  std::vector<hetpipe::host::column_acc> loose(l.pick.size());
  std::vector<std::uint8_t> is_text(l.pick.size());
  const auto lax_bad = csv::accumulate(text, n, lax, loose.data(), is_text.data());
  if (lax_bad)
    require(bad && lax_bad->at >= bad->at, "a lax pass stops no sooner than a strict one");
  if (!bad) {
    require(!lax_bad, "a strict pass that goes through, the lax one does too");
    for (std::size_t c = 0; c < l.pick.size(); ++c)
      require(!is_text[c] && same(hetpipe::host::finalize(hetpipe::dtype::f64, loose[c]),
                                  hetpipe::host::finalize(hetpipe::dtype::f64, whole[c])),
              "a lax pass over numbers equals the strict one");
  }
  // accumulate's search for delimiters and line breaks against split(), record by record.
  for (const bool strict : {true, false}) {
    csv::layout s = l;
    s.strict = strict;
    std::vector<hetpipe::host::column_acc> a(l.pick.size()), b(l.pick.size());
    std::vector<std::uint8_t> ta(l.pick.size()), tb(l.pick.size());
    std::size_t oa = 0, ob = 1;
    const auto ra = csv::accumulate(text, n, s, a.data(), ta.data(), &oa);
    const auto rb = csv::accumulate_by_split(text, n, s, b.data(), tb.data(), &ob);
    require(ra.has_value() == rb.has_value() && oa == ob && ta == tb,
            "accumulate stops where accumulate_by_split does");
    if (ra)
      require(ra->at == rb->at && ra->field == rb->field && ra->not_a_number == rb->not_a_number &&
                  ra->reason == rb->reason,
              "accumulate names the bad record accumulate_by_split names");
    for (std::size_t c = 0; c < l.pick.size(); ++c)
      require(a[c].count == b[c].count && a[c].nan_count == b[c].nan_count &&
                  a[c].posinf == b[c].posinf && a[c].neginf == b[c].neginf &&
                  a[c].min_key == b[c].min_key && a[c].max_key == b[c].max_key &&
                  a[c].s == b[c].s && a[c].q == b[c].q,
              "accumulate adds what accumulate_by_split adds");
  }
  const std::uint64_t records = csv::count_records(text, n);
  if (!bad && !l.pick.empty()) {
    const auto c = hetpipe::host::finalize(hetpipe::dtype::f64, whole[0]);
    require(c.count + c.nan_count == records, "every record gives one value a column");
  }

  // Cut after the first record (at the first line break with an even number of quotes before
  // it): the pieces' sums add up to the whole's.
  std::size_t cut = 0, quotes = 0;
  for (std::size_t i = 0; i < n && !cut; ++i) {
    quotes += text[i] == '"';
    if (text[i] == '\n' && quotes % 2 == 0) cut = i + 1;
  }
  if (cut && !bad) {
    std::vector<hetpipe::host::column_acc> a(l.pick.size()), b(l.pick.size());
    require(!csv::accumulate(text, cut, l, a.data()) &&
                !csv::accumulate(text + cut, n - cut, l, b.data()),
            "the pieces of a good text parse");
    for (std::size_t c = 0; c < l.pick.size(); ++c) {
      a[c].merge(b[c]);
      require(same(hetpipe::host::finalize(hetpipe::dtype::f64, a[c]),
                   hetpipe::host::finalize(hetpipe::dtype::f64, whole[c])),
              "two pieces give the whole's stats");
    }
  }

  // The device's records: all taken, or the piece goes to the host.
  {
    static const auto table = hetpipe::cuda::decimal::make_pow10_table();
    namespace cd = hetpipe::cuda::csv_detail;
    const std::vector<std::int32_t> columns = hetpipe::cuda::csv_columns(lax.fields, l.pick);
    hetpipe::cuda::csv_parse_args a;
    a.delim = lax.delim;
    a.fields = static_cast<std::uint32_t>(lax.fields);
    a.cols = static_cast<std::uint32_t>(l.pick.size());
    a.strict = false;
    a.d_pow10 = table.data();
    a.d_columns = columns.data();
    const cd::record_layout dl = hetpipe::cuda::record_layout_of(a);
    std::vector<double> values;
    std::vector<std::uint64_t> flags(l.pick.size());
    std::vector<double> row(l.pick.size());
    bool taken = true;
    for (std::size_t i = 0; i < n && taken; ++i) {
      if (!cd::starts_record(text, n, i)) continue;
      const std::size_t end = cd::record_end(text, n, i);
      taken = cd::parse_record(text + i, end - i, dl, row.data(), flags.data()) == cd::record_ok;
      values.insert(values.end(), row.begin(), row.end());
    }
    if (lax_bad) require(!taken, "a piece with a bad record is never taken whole");
    if (taken && !l.pick.empty()) {
      std::vector<hetpipe::host::column_acc> dev(l.pick.size());
      hetpipe::host::accumulate(hetpipe::dtype::f64,
                                reinterpret_cast<const std::byte*>(values.data()),
                                values.size() / l.pick.size(), l.pick.size(), dev.data());
      for (std::size_t c = 0; c < l.pick.size(); ++c)
        require((flags[c] != 0) == (is_text[c] != 0) &&
                    same(hetpipe::host::finalize(hetpipe::dtype::f64, dev[c]),
                         hetpipe::host::finalize(hetpipe::dtype::f64, loose[c])),
                "the device's records give the host's sums and text flags");
    }
  }

  // csv::number against strtod on the first line.
  const void* nl = std::memchr(text, '\n', n);
  const std::string line(text, nl ? static_cast<const char*>(nl) - text : n);
  double v = 0;
  {
    static const auto table = hetpipe::cuda::decimal::make_pow10_table();
    namespace dec = hetpipe::cuda::decimal;
    double d = 0;
    const dec::status st = dec::parse(line.data(), line.size(), table.data(), d);
    const bool host_number = csv::number(line, v);
    require((st != dec::status::not_number) == host_number,
            "the device's decimal reader and csv::number agree on what is a number");
    if (st == dec::status::number)
      require(std::isnan(v) ? std::isnan(d) : std::memcmp(&v, &d, sizeof v) == 0,
              "the device's decimal reader gives csv::number's bits");
  }
  if (line.find('\0') == std::string::npos && csv::number(line, v) &&
      line.find_first_not_of(" \t\r") != std::string::npos) {
    std::size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r") + 1;
    const std::string t = line.substr(a, b - a);
    char* end = nullptr;
    const double want = std::strtod(t.c_str(), &end);
    require(end == t.c_str() + t.size(), "a number is all strtod reads");
    require(std::isnan(want) ? std::isnan(v) : std::memcmp(&v, &want, sizeof v) == 0,
            "csv::number rounds as strtod");
  }
  return 0;
}

// Column statistics: the result type of `hetpipe stats` and of hetpipe::stats().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <hetpipe/dtype.hpp>
#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe {

// Exact statistics of one column. Sums are accumulated exactly (integers, or floats as integer
// mantissas binned by exponent); every double below is the correctly rounded value of the exact
// result, so it does not depend on chunk size, thread count or device.
struct column_stats {
  std::uint64_t count = 0;      // values, NaN excluded (infinities included)
  std::uint64_t nan_count = 0;  // NaNs (float inputs only)
  // Smallest and largest value: double for float inputs (-0 orders below +0), the exact integer
  // for integer inputs. NaN (double) when count == 0.
  std::variant<double, std::int64_t, std::uint64_t> min = 0.0, max = 0.0;
  double sum = 0;              // correctly rounded exact sum (inf on overflow)
  double mean = 0;             // correctly rounded sum / count
  double variance = 0;         // population variance, from exact sums: (nΣx² − (Σx)²) / n²
  double sample_variance = 0;  // (nΣx² − (Σx)²) / (n(n − 1))
  double std = 0;              // correctly rounded sqrt of the exact population variance
};

struct stats_result {
  std::string file;                  // as given ("-" for standard input)
  dtype type = dtype::u8;            // f64 for CSV
  std::vector<std::uint64_t> shape;  // rows (and columns for 2-D .npy and CSV)
  std::vector<column_stats> columns;
  // CSV: each column's name from the header line, or its field number counted from 1 where the
  // file has none. Empty for .npy and raw files.
  std::vector<std::string> names;
  // CSV without csv_spec::columns: the columns left out, by name (or number), as a field of theirs
  // is not a number (nor empty).
  std::vector<std::string> skipped_columns;
  // CSV: the chunks GPU lanes took, and of those the ones they handed back to be parsed on the
  // host (a record the device does not take: a bad one, one holding a quoted line break, or a
  // number it cannot round alone).
  std::uint64_t gpu_chunks = 0, gpu_chunks_on_host = 0;
};

// How CSV inputs are read. A file is CSV when csv_spec::all says so or its name ends in .csv or
// .tsv (any case). A field is a number, parsed to the correctly rounded double (as strtod), or
// empty: a missing value (counted with the NaNs); each column's statistics are exact over those
// doubles, as for an f64 array. A column with any other field is left out (named in
// stats_result::skipped_columns), unless csv_spec::columns names it: then that field is an error.
struct csv_spec {
  bool all = false;    // every input is CSV (standard input included)
  char delimiter = 0;  // 0: a tab for .tsv files, else ','
  enum class header_mode : std::uint8_t {
    automatic,  // the first line is a header when one of its fields is not a number
    present,
    absent,
  } header = header_mode::automatic;
  // Fields to compute, by header name or number from 1, each of them numbers only. Empty: every
  // column that holds numbers only (the others are named in stats_result::skipped_columns).
  std::vector<std::string> columns;
};

// The most columns a 2-D .npy may have: each column keeps exact sums of its own, in every partial
// result a lane holds (about 80 bytes a column each, and more as the sums grow).
inline constexpr std::uint64_t max_stats_columns = std::uint64_t{1} << 22;

// Statistics of each file: a .npy file (recognised by its magic; 1-D gives one column, 2-D C-order
// one per column, at most max_stats_columns) or raw little-endian data of `raw_type` ("-" reads
// standard input). Throws hetpipe::error naming the file for any bad input.
//
//   auto r = hetpipe::stats({"a.npy"}, std::nullopt, {});
//   r[0].columns[0].mean;   // correctly rounded mean of the first column
std::vector<stats_result> stats(const std::vector<std::string>& files,
                                std::optional<dtype> raw_type, const options& opt,
                                job_report* report = nullptr);

// As above, with CSV inputs read as `csv` says (RFC 4180: a quoted field may hold the delimiter,
// "" and line breaks). CPU and GPU lanes parse CSV to the same bits; a GPU lane
// hands a chunk back to the host when a record in it is bad or holds a number it cannot round
// alone (see stats_result::gpu_chunks_on_host).
// When inputs of both kinds are given, they run as two jobs and `report` adds up their bytes and
// seconds.
//
//   hetpipe::csv_spec csv;
//   csv.columns = {"price"};
//   auto r = hetpipe::stats({"sales.csv"}, std::nullopt, csv, {});
//   r[0].names[0];           // "price"
//   r[0].columns[0].sum;     // correctly rounded exact sum of the parsed prices
std::vector<stats_result> stats(const std::vector<std::string>& files,
                                std::optional<dtype> raw_type, const csv_spec& csv,
                                const options& opt, job_report* report = nullptr);

// Whether stats() reads `file` as CSV by its name (.csv, .tsv, any case).
bool is_csv_name(const std::string& file);

}  // namespace hetpipe

// One CSV record to the values of its kept fields, as __host__ __device__ code: the GPU lanes'
// parse kernel (csv_kernels.cu) runs it a thread per record, and g++ (where HETPIPE_HD is plain
// `inline`) runs it in the host tests against host::csv::split and host::csv::accumulate.
//
// A record here is one line. It gives the host's values and text flags for every record it
// accepts, and hands the rest to the host: a record that is not well formed (a quoted field that
// holds a line break included: its line has an odd number of quotes), has another number of
// fields, holds a kept field that is not a number in a strict layout, or a number decimal::parse
// cannot decide. The caller
// then parses the whole chunk with host::csv::accumulate, which finds the same error (or the
// value) the CPU lanes would.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/decimal.cuh"

namespace hetpipe::cuda::csv_detail {

// The kept fields of a layout, as the device reads them.
struct record_layout {
  char delim = ',';
  std::uint32_t fields = 0;  // fields every record has
  std::uint32_t cols = 0;    // kept columns
  bool strict = true;        // a kept field that is not a number goes to the host
  // Per field: the first column kept from it, or -1. Per column: the next column kept from the
  // same field (--columns may name a field twice), or -1.
  const std::int32_t* first_col = nullptr;
  const std::int32_t* next_col = nullptr;
  const decimal::pow10_entry* table = nullptr;
};

enum record_status : std::uint32_t { record_ok = 0, record_host = 1 };

// The quiet NaN a text field counts as.
HETPIPE_HD double text_nan() {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(0x7ff8000000000000LL);
#else
  return __builtin_bit_cast(double, std::uint64_t{0x7ff8000000000000});
#endif
}

// The value of one kept field and its text flag, written to every column kept from field f.
HETPIPE_HD std::uint32_t keep_field(const char* text, std::size_t n, bool pair, std::uint32_t f,
                                    const record_layout& l, double* values, std::uint64_t* flags) {
  const std::int32_t first = l.first_col[f];
  if (first < 0) return record_ok;
  double v = 0;
  // A quoted field holding a quote is text, as host::csv::accumulate has it.
  const decimal::status s =
      pair ? decimal::status::not_number : decimal::parse(text, n, l.table, v);
  if (s == decimal::status::hard) return record_host;
  const bool is_text = s == decimal::status::not_number;
  if (is_text) {
    if (l.strict) return record_host;
    v = text_nan();
  }
  for (std::int32_t c = first; c >= 0; c = l.next_col[c]) {
    values[c] = v;
    if (is_text && flags[c] == 0) flags[c] = 1;  // read first: a text column's records all set it
  }
  return record_ok;
}

// Record line[0..n) (no '\n'; the caller drops one '\r' before it): the kept fields' values to
// values[0..cols), flags[c] = 1 where a kept field is text (not strict). Splits as
// host::csv::split does, byte for byte.
HETPIPE_HD std::uint32_t parse_record(const char* line, std::size_t n, const record_layout& l,
                                      double* values, std::uint64_t* flags) {
  const char delim = l.delim;
  std::uint32_t f = 0;  // fields so far
  std::size_t i = 0;
  while (true) {
    if (f == l.fields) return record_host;  // one field more than the layout's
    // Spaces and tabs before an opening quote belong to no field's text (unless one is the
    // delimiter).
    std::size_t j = i;
    while (j < n && (line[j] == ' ' || line[j] == '\t') && line[j] != delim) ++j;
    if (j < n && line[j] == '"') {
      const std::size_t start = ++j;
      bool pair = false;
      while (true) {
        while (j < n && line[j] != '"') ++j;
        if (j == n) return record_host;  // not closed on its line (a quoted line break?)
        if (j + 1 < n && line[j + 1] == '"') {
          pair = true;
          j += 2;
          continue;
        }
        break;
      }
      if (keep_field(line + start, j - start, pair, f, l, values, flags) != record_ok)
        return record_host;
      ++f;
      ++j;
      while (j < n && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r') && line[j] != delim)
        ++j;
      if (j == n) break;
      if (line[j] != delim) return record_host;  // text after a closing quote
      i = j + 1;
      continue;
    }
    std::size_t end = i;
    while (end < n && line[end] != delim) {
      if (line[end] == '"') return record_host;  // a quote inside an unquoted field
      ++end;
    }
    if (keep_field(line + i, end - i, false, f, l, values, flags) != record_ok) return record_host;
    ++f;
    if (end == n) break;
    i = end + 1;
  }
  return f == l.fields ? record_ok : record_host;
}

// Whether byte i of text[0..size) starts a record: the first byte of a line that is not empty
// (a line of only "\r" is empty), as host::csv::accumulate skips them.
HETPIPE_HD bool starts_record(const char* text, std::size_t size, std::size_t i) {
  if (i != 0 && text[i - 1] != '\n') return false;
  if (text[i] == '\n') return false;
  return !(text[i] == '\r' && (i + 1 == size || text[i + 1] == '\n'));
}

// The end of the record starting at `at`: its '\n' or the end of the text, less one '\r'.
HETPIPE_HD std::size_t record_end(const char* text, std::size_t size, std::size_t at) {
  std::size_t end = at;
  while (end < size && text[end] != '\n') ++end;
  return end > at && text[end - 1] == '\r' ? end - 1 : end;
}

}  // namespace hetpipe::cuda::csv_detail

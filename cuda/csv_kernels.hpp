// CSV records to a dense array of values on the GPU (CUDA-free declarations), for the stats
// kernel (stats_kernels.hpp) to reduce exactly: the GPU half of `hetpipe stats --csv`.
//
// A chunk of whole lines goes through two steps on one stream, with nothing waited for:
//   1. record starts: cub::DeviceSelect::If over the chunk's byte offsets keeps the first byte of
//      every line that is not empty;
//   2. a thread per record splits it and parses its kept fields (csv_device.cuh, decimal.cuh)
//      into row r of d_values (rows x cols, row-major), and sets the text flag of a kept column
//      that met a field that is not a number.
// A record the device cannot take exactly (malformed or holding a quoted line break, a field count
// other than the layout's, a text field in a strict layout, a number too close to a rounding tie,
// out of the normal range or too long to decide, more records than d_values holds) sets the status
// word: the caller then parses the whole chunk on the host and ignores the device's values and text
// flags for it (threads stop parsing once the status is set).
//
//   // d_pow10: decimal::make_pow10_table(), d_columns: csv_columns(fields, pick), both copied
//   hc::csv_parse({d_text, size, ',', fields, cols, strict, d_pow10, d_columns, d_scratch,
//                  scratch_bytes, d_values, hc::csv_max_records(size, fields), d_words},
//                 s.handle());
//   hc::stats_init(9, cols, d_result, s.handle());
//   hc::stats_accumulate_counted(9, d_values, max_records, &d_words[csv_rows], cols, d_result,
//                                s.handle());
//   // after the stream: d_words[csv_status] == 0, else parse the chunk on the host
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/csv_device.cuh"
#include "cuda/decimal.cuh"

namespace hetpipe::cuda {

// The words csv_parse writes (all of them, zeroed first), then one text flag per column.
enum csv_word : std::size_t {
  csv_rows = 0,      // records parsed into d_values
  csv_status = 1,    // 0: every record was taken; else the host must parse the chunk
  csv_selected = 2,  // record starts found (step 1's count)
  csv_flags = 3,     // words csv_flags + c: column c met a text field (not strict)
};

inline std::size_t csv_words(std::size_t cols) {
  return csv_flags + cols;
}

// Records a chunk of `size` bytes can hold when every record has `fields` fields (each takes at
// least max(fields, 2) bytes with its line break): the rows d_values needs. A chunk with more
// (short malformed lines) goes to the host.
inline std::size_t csv_max_records(std::size_t size, std::size_t fields) {
  return (size + 1) / (fields < 2 ? 2 : fields) + 1;
}

// A layout's kept columns as the device reads them: per field the first column kept from it (or
// -1), then per column the next column kept from the same field (or -1). `pick` lists the kept
// fields in column order (a field may appear twice).
inline std::vector<std::int32_t> csv_columns(std::size_t fields,
                                             const std::vector<std::uint32_t>& pick) {
  std::vector<std::int32_t> out(fields + pick.size(), -1);
  for (std::size_t c = pick.size(); c-- > 0;) {
    out[fields + c] = out[pick[c]];
    out[pick[c]] = static_cast<std::int32_t>(c);
  }
  return out;
}

// Device scratch csv_parse needs for chunks of up to max_size bytes (the record starts and
// CUB's temporary storage). Throws hetpipe::gpu_error if CUB cannot say.
std::size_t csv_scratch_bytes(std::size_t max_size);

struct csv_parse_args {
  const char* d_text = nullptr;  // the chunk: whole lines, the last one with or without '\n'
  std::size_t size = 0;
  char delim = ',';
  std::uint32_t fields = 0;  // of every record (>= 1)
  std::uint32_t cols = 0;    // kept columns (>= 1)
  bool strict = true;
  const decimal::pow10_entry* d_pow10 = nullptr;  // decimal::make_pow10_table()
  const std::int32_t* d_columns = nullptr;        // csv_columns(fields, pick)
  void* d_scratch = nullptr;                      // csv_scratch_bytes(size) bytes or more
  std::size_t scratch_bytes = 0;
  double* d_values = nullptr;  // max_records x cols
  std::size_t max_records = 0;
  std::uint64_t* d_words = nullptr;  // csv_words(cols)
};

// Queues both steps on `stream` (a cudaStream_t) on the current device; does not wait. Throws
// hetpipe::gpu_error for bad arguments or a failed launch.
void csv_parse(const csv_parse_args& args, void* stream);

// The per-record code's view of a layout (shared with the fake runtime's stand-in).
inline csv_detail::record_layout record_layout_of(const csv_parse_args& a) {
  csv_detail::record_layout l;
  l.delim = a.delim;
  l.fields = a.fields;
  l.cols = a.cols;
  l.strict = a.strict;
  l.table = a.d_pow10;
  l.first_col = a.d_columns;
  l.next_col = a.d_columns + a.fields;
  return l;
}

// csv_parse's argument checks (shared with the fake runtime's stand-in).
inline void check_csv_parse_args(const csv_parse_args& a) {
  if (a.d_pow10 == nullptr || a.d_columns == nullptr || a.d_values == nullptr ||
      a.d_words == nullptr || (a.size != 0 && (a.d_text == nullptr || a.d_scratch == nullptr)))
    throw gpu_error("csv_parse: null pointer");
  if (a.fields == 0 || a.cols == 0) throw gpu_error("csv_parse: no fields or no kept columns");
  if (a.delim == '"' || a.delim == '\n' || a.delim == '\r')
    throw gpu_error("csv_parse: the delimiter cannot be a quote or a line break");
  if (reinterpret_cast<std::uintptr_t>(a.d_pow10) % 8 != 0 ||
      reinterpret_cast<std::uintptr_t>(a.d_columns) % 4 != 0 ||
      reinterpret_cast<std::uintptr_t>(a.d_values) % 8 != 0 ||
      reinterpret_cast<std::uintptr_t>(a.d_words) % 8 != 0 ||
      reinterpret_cast<std::uintptr_t>(a.d_scratch) % 4 != 0)  // record starts: 32-bit
    throw gpu_error("csv_parse: misaligned buffer");
  if (a.size > 0xFFFFFFFFu) throw gpu_error("csv_parse: a chunk of 4 GiB or more");
  if (a.max_records == 0) throw gpu_error("csv_parse: no room for records");
}

}  // namespace hetpipe::cuda

// The CSV parse kernels (cuda/csv_kernels.hpp) on the fake CUDA runtime, for test_fake_gpu:
// linked instead of csv_kernels.cu's object. The launch runs the kernel's own per-record code
// (cuda/csv_device.cuh, compiled for the host) over the fake device memory, record after record,
// so the CSV lanes' device code (tables, scratch, the status word, the host fallback) runs for
// real; the kernels themselves are the [gpu] tests' business.
#include <algorithm>
#include <cstring>

#include <hetpipe/error.hpp>

#include "cuda/csv_device.cuh"
#include "cuda/csv_kernels.hpp"
#include "support/fake_cuda.hpp"

namespace hetpipe::cuda {

namespace fc = fake_cuda;

std::size_t csv_scratch_bytes(std::size_t max_size) {
  return ((max_size + 1) / 2 + 1) * sizeof(std::uint32_t);
}

void csv_parse(const csv_parse_args& a, void* stream) {
  check_csv_parse_args(a);
  if (a.size != 0 && csv_scratch_bytes(a.size) > a.scratch_bytes)
    throw gpu_error("csv_parse: scratch too small");
  fc::launch(stream, [a] {
    const std::size_t words = csv_words(a.cols);
    fc::check_device(a.d_words, words * sizeof(std::uint64_t));
    std::fill_n(a.d_words, words, 0);
    if (a.size == 0) return;
    fc::check_device(a.d_text, a.size);
    fc::check_device(a.d_pow10, decimal::table_size * sizeof(decimal::pow10_entry));
    fc::check_device(a.d_columns, (a.fields + a.cols) * sizeof(std::int32_t));
    const csv_detail::record_layout l = record_layout_of(a);
    auto* starts = static_cast<std::uint32_t*>(a.d_scratch);
    std::uint64_t selected = 0;
    for (std::size_t i = 0; i < a.size; ++i)
      if (csv_detail::starts_record(a.d_text, a.size, i)) {
        fc::check_device(starts + selected, sizeof *starts);
        starts[selected++] = static_cast<std::uint32_t>(i);
      }
    a.d_words[csv_selected] = selected;
    const std::uint64_t rows = std::min<std::uint64_t>(selected, a.max_records);
    a.d_words[csv_rows] = rows;
    if (selected > a.max_records) a.d_words[csv_status] = 1;
    if (rows) fc::check_device(a.d_values, rows * a.cols * sizeof(double));
    for (std::uint64_t r = 0; r < rows; ++r) {
      const std::size_t at = starts[r];
      const std::size_t end = csv_detail::record_end(a.d_text, a.size, at);
      if (csv_detail::parse_record(a.d_text + at, end - at, l, a.d_values + r * a.cols,
                                   a.d_words + csv_flags) != csv_detail::record_ok)
        a.d_words[csv_status] = 1;
    }
  });
}

}  // namespace hetpipe::cuda

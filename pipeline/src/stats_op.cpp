// The stats operator: per-column exact accumulators (host/stats_host.hpp) computed by CPU lanes,
// or by GPU lanes whose kernel (cuda/stats_kernels.hpp) bins the same exact integer sums; both
// fold into the same big integers, so every device mode gives the same bits.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <hetpipe/error.hpp>
#include <hetpipe/stats.hpp>

#include "host/parallel.hpp"
#include "host/stats_host.hpp"
#include "io/npy.hpp"
#include "pipeline/src/engine.hpp"
#include "pipeline/src/paths.hpp"
#include "pipeline/src/stats_partial.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#include "cuda/stats_kernels.hpp"
#endif

namespace hetpipe {

namespace {

using detail::stats_partial;

struct file_plan {
  dtype type;
  std::uint64_t cols;  // elements per row (1 for 1-D and raw data)
};

#if HETPIPE_WITH_CUDA
class stats_device final : public device_reducer {
 public:
  stats_device(const std::vector<file_plan>& plans, unsigned buffers) : plans_(plans) {
    std::size_t bytes = 0;
    for (const auto& p : plans)
      bytes = std::max(bytes, cuda::stats_result_bytes(static_cast<int>(p.type), p.cols));
    for (unsigned b = 0; b < buffers; ++b) {
      d_result_.emplace_back(bytes);
      h_result_.emplace_back(bytes);
    }
  }
  void launch(const chunk_info& info, const std::byte* d_data, stream_ref stream,
              unsigned buffer) override {
    const file_plan& p = plans_[info.input];
    const std::size_t rows = info.size / (p.cols * dtype_size(p.type));
    cuda::stats_launch(static_cast<int>(p.type), d_data, rows, p.cols, d_result_[buffer].get(),
                       stream.handle);
    mark_copy_back(stream);
    cuda::copy_d2h_async(h_result_[buffer].get(), d_result_[buffer].get(),
                         cuda::stats_result_bytes(static_cast<int>(p.type), p.cols), stream.handle);
  }
  std::unique_ptr<partial> collect(const chunk_info& info, unsigned buffer) override {
    const file_plan& p = plans_[info.input];
    auto out = std::make_unique<stats_partial>();
    out->columns.resize(p.cols);
    cuda::stats_fold(static_cast<int>(p.type), h_result_[buffer].get(), p.cols,
                     out->columns.data());
    return out;
  }

 private:
  const std::vector<file_plan>& plans_;
  std::vector<cuda::device_buffer> d_result_;
  std::vector<cuda::pinned_buffer> h_result_;
};
#endif

class stats_op final : public reduce_op {
 public:
  explicit stats_op(std::vector<file_plan> plans) : plans_(std::move(plans)) {}
  framing frame(std::size_t i) const override {
    return framing::records(std::max<std::uint64_t>(1, plans_[i].cols) *
                            dtype_size(plans_[i].type));
  }
  std::unique_ptr<partial> identity(std::size_t i) const override {
    return detail::stats_identity(plans_[i].cols);
  }
  std::unique_ptr<partial> host(const chunk_info& info,
                                std::span<const std::byte> data) const override {
    const file_plan& p = plans_[info.input];
    auto out = std::make_unique<stats_partial>();
    out->columns.resize(p.cols);
    const std::size_t rows = data.size() / (p.cols * dtype_size(p.type));
    host::accumulate(p.type, data.data(), rows, p.cols, out->columns.data());
    return out;
  }
  void merge(partial& total, partial& next) const override { detail::merge_stats(total, next); }
  std::unique_ptr<device_reducer> make_device_reducer(int, std::size_t,
                                                      unsigned buffers) const override {
#if HETPIPE_WITH_CUDA
    return std::make_unique<stats_device>(plans_, buffers);
#else
    (void)buffers;
    return nullptr;
#endif
  }

 private:
  std::vector<file_plan> plans_;
};

[[noreturn]] void throw_errno(const std::string& file, int err) {
  throw io_error(file, errno_reason(err), -err);
}

}  // namespace

namespace {

// stats() of .npy and raw inputs.
std::vector<stats_result> binary_stats(const std::vector<std::string>& files,
                                       std::optional<dtype> raw_type, const options& opt,
                                       job_report* report) {
  std::vector<file_plan> plans;
  std::vector<input> inputs;
  std::vector<stats_result> results(files.size());
  std::vector<bool> raw(files.size(), true);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& f = files[i];
    stats_result& r = results[i];
    r.file = f;
    if (f == "-") {
      if (!raw_type) throw usage_error("-: standard input is read as raw data: give its --dtype");
      plans.push_back({*raw_type, 1});
      inputs.push_back({f, 0, std::nullopt});
      r.type = *raw_type;
      continue;
    }
    // stat before open: opening a FIFO would wait for its writer, and closing it unread would
    // end that writer; pipes and devices are read as raw streams by the reader alone.
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) throw_errno(f, errno);
    if (S_ISDIR(st.st_mode)) throw io_error(f, "is a directory", -EISDIR);
    std::vector<std::byte> head(io::npy_max_preamble);
    ssize_t got = 0;
    int read_err = 0;
    bool regular = S_ISREG(st.st_mode);
    if (regular) {
      const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) throw_errno(f, errno);
      if (::fstat(fd, &st) != 0) {  // the file opened decides
        const int err = errno;
        ::close(fd);
        throw_errno(f, err);
      }
      regular = S_ISREG(st.st_mode);
      if (regular) got = ::pread(fd, head.data(), head.size(), 0);
      read_err = errno;
      ::close(fd);
    }
    if (got < 0) throw_errno(f, read_err);
    // More bytes than its size: a file of a pseudo file system (size 0, read as raw data), or one
    // written to since its fstat (a .npy still being saved).
    if (regular && static_cast<std::uint64_t>(got) > static_cast<std::uint64_t>(st.st_size)) {
      if (st.st_size > 0)
        throw io_error(f, "grew while it was read (it is still being written?)", -EAGAIN);
      got = 0;
    }
    if (regular && io::looks_like_npy(std::span<const std::byte>(head.data(), got))) {
      // One read serves the magic check and the header (parse_npy needs at most npy_max_preamble).
      const io::npy_header h =
          io::parse_npy(f, std::span<const std::byte>(head.data(), static_cast<std::size_t>(got)),
                        static_cast<std::uint64_t>(st.st_size));
      // --dtype describes raw files; a .npy header names its own dtype.
      const std::uint64_t cols = h.shape.size() == 2 ? h.shape[1] : 1;
      if (cols > max_stats_columns)
        throw input_error(f, "has " + std::to_string(cols) + " columns; stats takes at most " +
                                 std::to_string(max_stats_columns) +
                                 " (each keeps exact sums of its own)");
      plans.push_back({h.type, cols});
      inputs.push_back({f, h.data_offset, cols == 0 ? 0 : h.data_bytes});
      r.type = h.type;
      r.shape = h.shape;
      raw[i] = false;
      continue;
    }
    if (!raw_type && !regular)
      throw usage_error(f, "a pipe or device is read as raw data: give its --dtype");
    if (!raw_type)
      throw input_error(f, "not a .npy file; give --dtype to read it as raw little-endian data");
    const std::size_t size = dtype_size(*raw_type);
    if (regular && static_cast<std::uint64_t>(st.st_size) % size != 0)
      throw input_error(f, "size " + std::to_string(st.st_size) + " is not a multiple of the " +
                               std::string(dtype_name(*raw_type)) + " element size (" +
                               std::to_string(size) + " bytes)");
    plans.push_back({*raw_type, 1});
    inputs.push_back({f, 0, std::nullopt});
    r.type = *raw_type;
  }

  // Wide rows (a 2-D .npy of a million f64 columns is 8 MB a row): the chunk grows to hold
  // wide_rows of them, up to wide_chunk (or one row, when that is larger), as the user asked for
  // no size (one given is held to). Each chunk costs every column a fold and an accumulator of
  // its own (big integers): chunks of a row or a few had cost 10 rows of a million columns 10 of
  // each. The pool then has fewer slots (unless they were given): its memory stays that of the
  // default pool, or wide_pool where that is more.
  options o = opt;
  if (o.chunk_size == 0) {
    constexpr std::uint64_t wide_rows = 16, wide_chunk = std::uint64_t{64} << 20,
                            wide_pool = std::uint64_t{512} << 20;
    std::uint64_t widest = 0;
    for (const auto& p : plans)
      widest = std::max<std::uint64_t>(widest, p.cols * dtype_size(p.type));
    const options d = resolve(o);
    const std::uint64_t want =
        widest == 0 ? 0 : std::max(widest, std::min(wide_chunk / widest, wide_rows) * widest);
    if (want > d.chunk_size && want <= max_chunk_size) {
      o.chunk_size = want;
      if (o.slots == 0)
        o.slots = static_cast<unsigned>(std::clamp<std::uint64_t>(
            std::max<std::uint64_t>(d.slots * d.chunk_size, wide_pool) / want, 4, d.slots));
    }
  }
  stats_op op(plans);
  auto totals = run(op, inputs, o, report);
  const int threads = static_cast<int>(resolve(opt).cpu_threads);
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto& p = static_cast<stats_partial&>(*totals[i]);
    stats_result& r = results[i];
    detail::finalize_stats(plans[i].type, p, r, threads);
    if (raw[i]) {
      const auto& c = r.columns.front();
      r.shape = {c.count + c.nan_count};
    }
  }
  return results;
}

}  // namespace

bool is_csv_name(const std::string& file) {
  const std::string ext = detail::lower_extension(file);
  return ext == ".csv" || ext == ".tsv";
}

std::vector<stats_result> stats(const std::vector<std::string>& files,
                                std::optional<dtype> raw_type, const options& opt,
                                job_report* report) {
  return stats(files, raw_type, csv_spec{}, opt, report);
}

std::vector<stats_result> stats(const std::vector<std::string>& files,
                                std::optional<dtype> raw_type, const csv_spec& csv,
                                const options& opt, job_report* report) {
  std::vector<std::string> binary, text;
  std::vector<bool> is_text(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    is_text[i] = csv.all || is_csv_name(files[i]);
    (is_text[i] ? text : binary).push_back(files[i]);
  }
  if (text.empty()) return binary_stats(files, raw_type, opt, report);
  if (binary.empty()) return detail::csv_stats(files, csv, opt, report);
  job_report first, second;
  auto a = binary_stats(binary, raw_type, opt, &first);
  auto b = detail::csv_stats(text, csv, opt, &second);
  if (report) {
    *report = first;
    report->bytes += second.bytes;
    report->chunks += second.chunks;
    report->seconds += second.seconds;
    report->setup_seconds += second.setup_seconds;
  }
  std::vector<stats_result> out;
  out.reserve(files.size());
  for (std::size_t i = 0, ia = 0, ib = 0; i < files.size(); ++i)
    out.push_back(std::move(is_text[i] ? b[ib++] : a[ia++]));
  return out;
}

}  // namespace hetpipe

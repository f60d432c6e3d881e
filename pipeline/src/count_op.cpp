// The text count operator: each chunk's lines, words and boundary flags (host/text_count.hpp on a
// CPU lane, cuda/text_kernels.hpp on a GPU lane, the same numbers), appended in chunk order.
#include <hetpipe/count.hpp>

#include "host/text_count.hpp"
#include "pipeline/src/engine.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#include "cuda/text_kernels.hpp"
#endif

namespace hetpipe {

namespace {

struct count_partial final : partial {
  host::text_tally tally;
};

#if HETPIPE_WITH_CUDA
class count_device final : public batch_device_reducer {
 public:
  explicit count_device(unsigned buffers) {
    for (unsigned b = 0; b < buffers; ++b) {
      slots_.push_back({cuda::device_buffer(batch_limit * sizeof(cuda::text_piece_counts)),
                        cuda::pinned_buffer(batch_limit * sizeof(cuda::text_piece_counts)),
                        {}});
    }
  }
  std::size_t max_batch() const override { return batch_limit; }
  void launch_batch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                    const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    slot& s = slots_[buffer];
    s.pieces.resize(infos.size());
    for (std::size_t i = 0; i < infos.size(); ++i) s.pieces[i] = {offsets[i], infos[i].size};
    auto* d_counts = static_cast<cuda::text_piece_counts*>(s.d_counts.get());
    cuda::text_count_batch(d_data, s.pieces.data(), s.pieces.size(), d_counts, stream.handle);
    mark_copy_back(stream);
    cuda::copy_d2h_async(s.h_counts.get(), d_counts, infos.size() * sizeof(cuda::text_piece_counts),
                         stream.handle);
  }
  void collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                     std::vector<std::unique_ptr<partial>>& out) override {
    const auto* counts = static_cast<const cuda::text_piece_counts*>(slots_[buffer].h_counts.get());
    for (std::size_t i = 0; i < infos.size(); ++i) {
      auto p = std::make_unique<count_partial>();
      p->tally = {counts[i].lines,
                  counts[i].words,
                  counts[i].chars,
                  infos[i].size,
                  counts[i].starts_in_word != 0,
                  counts[i].ends_in_word != 0};
      out.push_back(std::move(p));
    }
  }

 private:
  static constexpr std::size_t batch_limit = 1024;
  struct slot {
    cuda::device_buffer d_counts;
    cuda::pinned_buffer h_counts;
    std::vector<cuda::text_piece> pieces;
  };
  std::vector<slot> slots_;
};
#endif

class count_op final : public reduce_op {
 public:
  explicit count_op(bool chars) : chars_(chars) {}
  framing frame(std::size_t) const override { return framing::records(1); }
  std::unique_ptr<partial> identity(std::size_t) const override {
    return std::make_unique<count_partial>();
  }
  std::unique_ptr<partial> host(const chunk_info&, std::span<const std::byte> data) const override {
    auto p = std::make_unique<count_partial>();
    p->tally = host::count_text(data.data(), data.size(), chars_);
    return p;
  }
  void merge(partial& total, partial& next) const override {
    host::append(static_cast<count_partial&>(total).tally,
                 static_cast<const count_partial&>(next).tally);
  }
  std::unique_ptr<device_reducer> make_device_reducer(int, std::size_t,
                                                      unsigned buffers) const override {
#if HETPIPE_WITH_CUDA
    return std::make_unique<count_device>(buffers);
#else
    (void)buffers;
    return nullptr;
#endif
  }

 private:
  bool chars_;
};

}  // namespace

std::vector<count_result> count_text(const std::vector<std::string>& files, const options& opt,
                                     job_report* report) {
  return count_text(files, count_spec{}, opt, report);
}

std::vector<count_result> count_text(const std::vector<std::string>& files, const count_spec& spec,
                                     const options& opt, job_report* report) {
  std::vector<input> inputs;
  inputs.reserve(files.size());
  for (const auto& f : files) inputs.push_back({f, 0, std::nullopt});
  count_op op(spec.chars);
  auto totals = run(op, inputs, opt, report);
  std::vector<count_result> results(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    const host::text_tally& t = static_cast<const count_partial&>(*totals[i]).tally;
    // (a GPU lane counts characters anyway: they cost its kernel nothing that shows)
    results[i] = {files[i], {t.lines, t.words, spec.chars ? t.chars : 0, t.bytes}};
  }
  return results;
}

}  // namespace hetpipe

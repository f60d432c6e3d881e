// run() for transforms: each chunk's output goes to its input's writer, which writes pieces in
// chunk order to a temporary file and renames it when the input is complete.
//
// Chunks are retired in sequence order only (the contiguous prefix of handed-over chunks), which
// turns the reader's window into a bound on how far ahead of the oldest unfinished chunk any
// output can be: a writer never queues more than `window` pieces, so lanes never block on it.
#include <set>

#include <hetpipe/error.hpp>

#include "io/writer.hpp"
#include "pipeline/src/engine.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {

namespace {

class prefix_retirer {
 public:
  // Marks `seq` done; returns how many chunks joined the done prefix.
  std::uint64_t done(std::uint64_t seq) {
    std::lock_guard lock(mutex_);
    done_.insert(seq);
    std::uint64_t n = 0;
    for (auto it = done_.begin(); it != done_.end() && *it == next_; it = done_.erase(it))
      ++next_, ++n;
    return n;
  }

 private:
  std::mutex mutex_;
  std::set<std::uint64_t> done_;
  std::uint64_t next_ = 0;
};

// Each output is written as pieces 0 (the operator's prologue), 1 + chunk index, ...
class outputs_state {
 public:
  outputs_state(const transform_op& op, const std::vector<std::string>& paths, unsigned window)
      : op_(op), paths_(paths), window_(window), outs_(paths.size()) {}

  void deliver(const chunk_info& info, std::vector<std::byte> bytes) {
    io::writer* w = open(info.input);
    w->write(info.index + 1, std::move(bytes));
    bool complete = false;
    {
      std::lock_guard lock(mutex_);
      auto& o = outs_[info.input];
      ++o.pieces;
      if (info.last) o.total = info.index + 1;
      complete = o.total && o.pieces == *o.total;
    }
    if (complete) w->commit();
  }

  // Inputs that produced no chunk (empty) still get their output: prologue and empty_output.
  void finish_empty() {
    for (std::size_t i = 0; i < outs_.size(); ++i) {
      bool fresh = false;
      {
        std::lock_guard lock(mutex_);
        fresh = !outs_[i].w;
      }
      if (!fresh) continue;
      io::writer* w = open(i);
      std::vector<std::byte> tail;
      op_.empty_output(i, tail);
      w->write(1, std::move(tail));
      w->commit();
    }
  }

 private:
  // The input's writer, created (with its prologue as piece 0) on first use.
  io::writer* open(std::size_t input) {
    std::lock_guard lock(mutex_);
    auto& o = outs_[input];
    if (!o.w) {
      o.w = std::make_unique<io::writer>(paths_[input], window_);
      std::vector<std::byte> head;
      op_.prologue(input, head);
      o.w->write(0, std::move(head));
    }
    return o.w.get();
  }

  struct out {
    std::unique_ptr<io::writer> w;
    std::uint64_t pieces = 0;
    std::optional<std::uint64_t> total;
  };
  const transform_op& op_;
  const std::vector<std::string>& paths_;
  unsigned window_;
  std::mutex mutex_;
  std::vector<out> outs_;
};

#if HETPIPE_WITH_CUDA
class transform_worker final : public detail::gpu_worker {
 public:
  transform_worker(std::unique_ptr<device_transformer> impl, std::size_t max_out, unsigned buffers,
                   std::function<void(const chunk_info&, std::vector<std::byte>)> deliver)
      : impl_(std::move(impl)), max_out_(max_out), deliver_(std::move(deliver)) {
    for (unsigned b = 0; b < buffers; ++b) h_out_.emplace_back(std::max<std::size_t>(1, max_out));
  }
  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    impl_->launch(infos[0], d_data + offsets[0], static_cast<std::byte*>(h_out_[buffer].get()),
                  stream, buffer);
  }
  void collect(std::span<const chunk_info> infos, unsigned buffer) override {
    const chunk_info& info = infos[0];
    const std::size_t n = impl_->collect(info, buffer);
    if (n > max_out_) throw error("", "device transform produced more than max_output bytes");
    const auto* h = static_cast<const std::byte*>(h_out_[buffer].get());
    deliver_(info, std::vector<std::byte>(h, h + n));
  }

 private:
  std::unique_ptr<device_transformer> impl_;
  std::size_t max_out_;
  std::vector<cuda::pinned_buffer> h_out_;
  std::function<void(const chunk_info&, std::vector<std::byte>)> deliver_;
};
#endif

}  // namespace

void run(const transform_op& op, const std::vector<input>& inputs,
         const std::vector<std::string>& outputs, const options& opt, job_report* report) {
  if (outputs.size() != inputs.size()) throw usage_error("a transform needs one output per input");
  const options o = resolve(opt);
  const unsigned window = std::max(16u, 4 * o.slots);  // the engine's reader window
  outputs_state outs(op, outputs, window + 2);         // + the piece awaited + the prologue
  prefix_retirer retirer;
  detail::engine* eng = nullptr;
  auto deliver = [&](const chunk_info& info, std::vector<std::byte> bytes) {
    outs.deliver(info, std::move(bytes));
    eng->retire(retirer.done(info.seq));
  };
  detail::job_spec spec;
  spec.sources = detail::to_sources(inputs);
  spec.frame = [&op](std::size_t i) { return op.frame(i); };
  spec.host = [&op, &deliver](const chunk_info& info, std::span<const std::byte> data) {
    std::vector<std::byte> out;
    op.host(info, data, out);
    deliver(info, std::move(out));
  };
  spec.make_gpu = [&op, &deliver](int device, std::size_t max_chunk,
                                  unsigned buffers) -> std::unique_ptr<detail::gpu_worker> {
#if HETPIPE_WITH_CUDA
    auto impl = op.make_device_transformer(device, max_chunk, buffers);
    if (!impl) return nullptr;
    return std::make_unique<transform_worker>(std::move(impl), op.max_output(max_chunk), buffers,
                                              deliver);
#else
    (void)device, (void)max_chunk, (void)buffers, (void)deliver;
    return nullptr;
#endif
  };
  detail::engine e(o, std::move(spec));
  eng = &e;
  e.run();
  outs.finish_empty();
  if (report) *report = e.report();
}

}  // namespace hetpipe

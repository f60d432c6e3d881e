// run() for reductions: partials are merged per input in chunk order, so the result is the same
// whatever lane computed which chunk (and deterministic even for a non-associative merge).
#include <map>
#include <stdexcept>
#include <string>

#include "io/reader.hpp"
#include "pipeline/src/engine.hpp"

namespace hetpipe {

namespace {

class merger {
 public:
  merger(const reduce_op& op, std::size_t inputs, const final_fn& on_final)
      : op_(op), on_final_(on_final), pending_(inputs), next_(inputs, 0), end_(inputs, 0) {
    totals_.reserve(inputs);
    for (std::size_t i = 0; i < inputs; ++i) totals_.push_back(op.identity(i));
  }
  // Returns how many chunks were merged (and can be retired).
  std::uint64_t deliver(const chunk_info& info, std::unique_ptr<partial> p) {
    std::lock_guard lock(mutex_);
    const std::size_t i = info.input;
    if (info.last) end_[i] = info.index + 1;
    if (info.index != next_[i]) {
      pending_[i].emplace(info.index, std::move(p));
      return 0;
    }
    op_.merge(*totals_[i], *p);
    std::uint64_t merged = 1;
    ++next_[i];
    for (auto it = pending_[i].begin(); it != pending_[i].end() && it->first == next_[i];
         it = pending_[i].erase(it)) {
      op_.merge(*totals_[i], *it->second);
      ++next_[i], ++merged;
    }
    if (on_final_ && next_[i] == end_[i]) on_final_(i, *totals_[i]);
    return merged;
  }
  // An input that gives no chunk: its total is the identity, final at once.
  void empty(std::size_t i) {
    std::lock_guard lock(mutex_);
    if (on_final_) on_final_(i, *totals_[i]);
  }
  std::vector<std::unique_ptr<partial>> take() { return std::move(totals_); }

 private:
  const reduce_op& op_;
  const final_fn& on_final_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<partial>> totals_;
  std::vector<std::map<std::uint64_t, std::unique_ptr<partial>>> pending_;
  std::vector<std::uint64_t> next_;
  std::vector<std::uint64_t> end_;  // 1 + the last chunk's index, once it came (0 before)
};

class reduce_worker final : public detail::gpu_worker {
 public:
  reduce_worker(std::unique_ptr<device_reducer> impl,
                std::function<void(const chunk_info&, std::unique_ptr<partial>)> deliver)
      : impl_(std::move(impl)), deliver_(std::move(deliver)) {}
  std::size_t max_batch() const override { return std::max<std::size_t>(1, impl_->max_batch()); }
  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    impl_->launch_batch(infos, offsets, d_data, stream, buffer);
  }
  void collect(std::span<const chunk_info> infos, unsigned buffer) override {
    out_.clear();
    impl_->collect_batch(infos, buffer, out_);
    if (out_.size() != infos.size())
      throw std::logic_error("a device reducer returned " + std::to_string(out_.size()) +
                             " results for a batch of " + std::to_string(infos.size()) + " chunks");
    for (std::size_t i = 0; i < infos.size(); ++i) deliver_(infos[i], std::move(out_[i]));
  }

 private:
  std::unique_ptr<device_reducer> impl_;
  std::function<void(const chunk_info&, std::unique_ptr<partial>)> deliver_;
  std::vector<std::unique_ptr<partial>> out_;
};

}  // namespace

std::vector<std::unique_ptr<partial>> run(const reduce_op& op, const std::vector<input>& inputs,
                                          const options& opt, job_report* report) {
  return run(op, inputs, opt, report, final_fn());
}

std::vector<std::unique_ptr<partial>> run(const reduce_op& op, const std::vector<input>& inputs,
                                          const options& opt, job_report* report,
                                          const final_fn& on_final) {
  return detail::run_reduce(op, inputs, opt, report, on_final, nullptr);
}

std::vector<std::unique_ptr<partial>> detail::run_reduce(const reduce_op& op,
                                                         const std::vector<input>& inputs,
                                                         const options& opt, job_report* report,
                                                         const final_fn& on_final, tracer* trace) {
  const options o = resolve(opt);
  merger m(op, inputs.size(), on_final);
  detail::engine* eng = nullptr;
  auto deliver = [&m, &eng](const chunk_info& info, std::unique_ptr<partial> p) {
    if (!p)  // (merging it crashed the process)
      throw std::logic_error("the reduce operator returned a null partial for chunk " +
                             std::to_string(info.index) + " of input " +
                             std::to_string(info.input));
    eng->retire(m.deliver(info, std::move(p)));
  };
  detail::job_spec spec;
  spec.sources = detail::to_sources(inputs);
  spec.frame = [&op](std::size_t i) { return op.frame(i); };
  if (on_final) spec.empty_input = [&m](std::size_t i) { m.empty(i); };
  spec.host = [&op, &deliver](const chunk_info& info, std::span<const std::byte> data,
                              const std::function<void()>& verify) {
    auto p = op.host(info, data);
    verify();
    deliver(info, std::move(p));
  };
  spec.make_gpu = [&op, &deliver](int device, std::size_t max_chunk,
                                  unsigned buffers) -> std::unique_ptr<detail::gpu_worker> {
    auto impl = op.make_device_reducer(device, max_chunk, buffers);
    if (!impl) return nullptr;
    return std::make_unique<reduce_worker>(std::move(impl), deliver);
  };
  // A reduction's reader window is the engine's own business (a transform sizes its outputs'
  // state by it): its slots may grow.
  spec.may_grow_slots = opt.slots == 0;
  spec.may_shrink_slots = opt.slots == 0;
  // (a UV_THREADPOOL_SIZE the process was given stands as --io-threads would)
  spec.may_grow_io_threads = opt.io_threads == 0 && io::given_io_threads() == 0;
  spec.trace = trace;
  detail::engine e(o, std::move(spec));
  eng = &e;
  e.run();
  if (report) *report = e.report();
  return m.take();
}

}  // namespace hetpipe

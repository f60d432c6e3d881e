// run() for transforms: each chunk's output goes to its input's writer, which writes pieces in
// chunk order to a temporary file and renames it when the input is complete.
//
// Chunks are retired in sequence order only (the contiguous prefix of handed-over chunks), which
// turns the reader's window into a bound on how far ahead of the oldest unfinished chunk any
// output can be: a writer never queues more than `window` pieces, so lanes never block on it.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <hetpipe/error.hpp>

#include "io/writer.hpp"
#include "pipeline/src/buffer_pool.hpp"
#include "pipeline/src/committer.hpp"
#include "pipeline/src/engine.hpp"
#include "pipeline/src/paths.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {

namespace {

using detail::buffer_pool;
using detail::committer;

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
  outputs_state(const transform_op& op, const std::vector<input>& inputs,
                const std::vector<std::string>& paths, unsigned window,
                io::writer::observer observer, buffer_pool& pool)
      : op_(op),
        inputs_(inputs),
        paths_(paths),
        window_(window),
        observer_(std::move(observer)),
        pool_(pool),
        outs_(paths.size()) {}

  // Where finished outputs go to be committed (before the first chunk; else they are committed on
  // the delivering thread).
  void commit_through(committer* c) { committer_ = c; }

  void deliver(const chunk_info& info, std::vector<std::byte> bytes) {
    try {
      if (io::writer* w = open(info.input)) {  // none for an input skipped already
        // The input may be skipped meanwhile (another lane's chunk of it refused): its writer is
        // then aborted, and a write waiting there for that chunk's turn throws cancelled, a later
        // one logic_error. Neither is the job's error then.
        try {
          w->write(info.index + 1, std::move(bytes));
        } catch (const cancelled&) {
          if (!skipped(info.input)) throw;
        } catch (const std::logic_error&) {
          if (!skipped(info.input)) throw;
        }
      }
    } catch (const io_error& e) {
      if (!fail_alone(info.input, e)) throw;
    }
    count(info);
  }

  // The operator refused this input: no output for it (its temporary file goes), the job goes on.
  void skip(const chunk_info& info, const input_skipped& e, const std::string& file) {
    mark_skipped(info.input, e.file().empty() ? file : e.file(), e.reason());
    count(info);
  }

  // Every input's output renamed into place (none skipped, none left to finish_empty).
  bool all_committed() const { return committed_.load() == outs_.size(); }

  std::vector<skipped_input> take_skipped() {
    std::lock_guard lock(mutex_);
    std::sort(skipped_.begin(), skipped_.end(),
              [](const auto& a, const auto& b) { return a.input < b.input; });
    return std::move(skipped_);
  }

  // Inputs that produced no chunk (empty) still get their output: prologue and empty_output.
  void finish_empty() {
    for (std::size_t i = 0; i < outs_.size(); ++i) {
      bool fresh = false;
      {
        std::lock_guard lock(mutex_);
        fresh = !outs_[i].w && !outs_[i].skipped;
      }
      if (!fresh) continue;
      std::vector<std::byte> tail;
      try {
        op_.empty_output(i, tail);
      } catch (const input_skipped& e) {
        mark_skipped(i, e.file().empty() ? inputs_[i].path : e.file(), e.reason());
        continue;
      }
      try {
        io::writer* w = open(i);
        w->write(1, std::move(tail));
        w->commit();
      } catch (const io_error& e) {
        if (!fail_alone(i, e)) throw;
      }
    }
  }

 private:
  // The input gets no output: the first time, listed with its reason and its writer (if there is
  // one yet; none later) aborted, which removes the temporary file.
  void mark_skipped(std::size_t input, const std::string& file, const std::string& reason) {
    io::writer* w = nullptr;
    {
      std::lock_guard lock(mutex_);
      auto& o = outs_[input];
      if (o.skipped) return;
      o.skipped = true;
      skipped_.push_back({input, file, reason});
      w = o.w.get();
    }
    if (w) w->abort();
  }

  // An output that cannot be written: with outputs_fail_alone, its input is skipped and true
  // returned; else false (the job's error).
  bool fail_alone(std::size_t input, const io_error& e) {
    if (!op_.outputs_fail_alone()) return false;
    mark_skipped(input, inputs_[input].path, "cannot write " + e.file() + ": " + e.reason());
    return true;
  }

  bool skipped(std::size_t input) {
    std::lock_guard lock(mutex_);
    return outs_[input].skipped;
  }

  // Counts a chunk of an input; the last one commits its output (unless the input was skipped).
  void count(const chunk_info& info) {
    io::writer* w = nullptr;
    {
      std::lock_guard lock(mutex_);
      auto& o = outs_[info.input];
      ++o.pieces;
      if (info.last) o.total = info.index + 1;
      if (o.total && o.pieces == *o.total && !o.skipped) w = o.w.get();
    }
    if (!w) return;
    const auto commit = [this, w, input = info.input] {
      try {
        w->commit();
        ++committed_;
      } catch (const io_error& e) {
        if (!fail_alone(input, e)) throw;
      }
    };
    if (committer_)
      committer_->submit(commit, w->bytes_queued());
    else
      commit();
  }

  // The input's writer, created (with its prologue as piece 0) on first use; none once the input
  // is skipped.
  io::writer* open(std::size_t input) {
    std::lock_guard lock(mutex_);
    auto& o = outs_[input];
    if (o.skipped) return nullptr;
    if (!o.w) {
      o.w = std::make_unique<io::writer>(paths_[input], window_);
      o.w->observe(observer_);
      o.w->recycle([this](std::vector<std::byte>&& v) { pool_.give(std::move(v)); });
      if (std::shared_ptr<output_filter> f = op_.make_output_filter(input))
        o.w->filter([f](std::vector<std::byte>& piece) { f->put(piece); },
                    [f] {
                      std::vector<std::byte> tail;
                      f->finish(tail);
                      return tail;
                    });
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
    bool skipped = false;
  };
  const transform_op& op_;
  const std::vector<input>& inputs_;
  const std::vector<std::string>& paths_;  // the outputs
  unsigned window_;
  io::writer::observer observer_;
  buffer_pool& pool_;
  committer* committer_ = nullptr;
  std::mutex mutex_;
  std::vector<out> outs_;
  std::vector<skipped_input> skipped_;
  std::atomic<std::size_t> committed_{0};
};

#if HETPIPE_WITH_CUDA
class transform_worker final : public detail::gpu_worker {
 public:
  transform_worker(std::unique_ptr<device_transformer> impl,
                   std::function<void(const chunk_info&, std::vector<std::byte>)> deliver,
                   std::function<void(const chunk_info&, const input_skipped&)> skip,
                   buffer_pool& pool)
      : impl_(std::move(impl)), deliver_(std::move(deliver)), skip_(std::move(skip)), pool_(pool) {}
  std::size_t max_batch() const override { return impl_->max_batch(); }
  bool prefer_host(const chunk_info& info, std::span<const std::byte> data) override {
    return impl_->prefer_host(info, data);
  }
  std::size_t staged_bytes(const chunk_info& info, std::span<const std::byte> data) override {
    return impl_->staged_bytes(info, data);
  }
  std::size_t batch_budget(const chunk_info& info, std::span<const std::byte> data) override {
    return impl_->batch_budget(info, data);
  }
  void prepare(std::span<const chunk_info> infos, std::span<const std::span<const std::byte>> data,
               unsigned buffer) override {
    impl_->prepare(infos, data, buffer);
  }
  std::optional<std::span<const std::byte>> stage(const chunk_info& info,
                                                  std::span<const std::byte> data,
                                                  unsigned buffer) override {
    try {
      return impl_->stage(info, data, buffer);
    } catch (const input_skipped& e) {
      skip_(info, e);
      return std::nullopt;
    }
  }
  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    impl_->launch(infos, offsets, d_data, stream, buffer);
  }
  void collect(std::span<const chunk_info> infos, unsigned buffer) override {
    impl_->finish(infos, buffer);
    for (std::size_t i = 0; i < infos.size(); ++i) {
      std::vector<std::byte> out = pool_.take(infos[i].size);
      try {
        impl_->collect(infos[i], i, buffer, out);
      } catch (const input_skipped& e) {
        skip_(infos[i], e);
        continue;
      }
      deliver_(infos[i], std::move(out));
    }
  }

 private:
  std::unique_ptr<device_transformer> impl_;
  std::function<void(const chunk_info&, std::vector<std::byte>)> deliver_;
  std::function<void(const chunk_info&, const input_skipped&)> skip_;
  buffer_pool& pool_;
};
#endif

}  // namespace

void run(const transform_op& op, const std::vector<input>& inputs,
         const std::vector<std::string>& outputs, const options& opt, job_report* report) {
  detail::run_transform(op, inputs, outputs, resolve(opt), opt.slots != 0, report);
}

void detail::run_transform(const transform_op& op, const std::vector<input>& inputs,
                           const std::vector<std::string>& outputs, const options& o,
                           bool slots_given, job_report* report, tracer* trace,
                           const std::string& trace_prefix) {
  if (outputs.size() != inputs.size()) throw usage_error("a transform needs one output per input");
  // One output file per input: a second commit onto the same path replaced the first. Standard
  // output and devices (/dev/null), written in place, may take several. Two paths name one file
  // when their names are equal and their folders are one (folder_key): only outputs whose names
  // meet are compared by their folders, so 100 000 outputs of distinct names cost no stat.
  {
    std::unordered_map<std::string, std::vector<std::size_t>> by_name;
    for (std::size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i] != "-")
        by_name[std::filesystem::path(outputs[i]).filename().string()].push_back(i);
    for (const auto& [name, group] : by_name) {
      if (group.size() < 2) continue;
      std::unordered_map<std::string, std::size_t> first;
      for (const std::size_t i : group) {
        const auto [at, added] = first.emplace(folder_key(outputs[i]), i);
        struct stat st {};
        if (!added && !(::stat(outputs[i].c_str(), &st) == 0 && !S_ISREG(st.st_mode)))
          throw usage_error(outputs[i], "is the output of inputs " + std::to_string(at->second) +
                                            " and " + std::to_string(i) +
                                            ": each needs a file of its own");
      }
    }
  }
  const unsigned window = std::max(16u, 4 * o.slots);  // the engine's reader window
  detail::engine* eng = nullptr;
  // Writes are traced, and failed commits fail the job, while the engine exists (writers
  // aborted later, when `outs` goes, may still finish a write).
  std::mutex trace_mutex;
  detail::engine* tracing = nullptr;
  // Output memory kept for reuse: what the pool holds for input (slots × chunk size) again.
  buffer_pool pool(std::size_t{o.slots} * o.chunk_size);
  // + the piece awaited + the prologue
  outputs_state outs(
      op, inputs, outputs, window + 2,
      [&](std::uint64_t begin, std::uint64_t end, std::uint64_t bytes) {
        std::lock_guard lock(trace_mutex);
        if (tracing) tracing->trace_write(begin, end, bytes);
      },
      pool);
  // Declared after `outs` (whose writers it commits) and before the engine: when the job fails,
  // the engine goes first (its lanes were joined) and this then commits the outputs that were
  // complete, as the lanes would have.
  // Outputs waiting for a commit hold at most what the input pool holds (slots x chunk size).
  // As many commit threads as I/O threads (cores, 4..16 by default), at least 4: they write the
  // outputs, and one thread writes new tmpfs pages at about 2 GB/s (committer.hpp).
  committer commits(std::clamp(o.io_threads, 4u, 64u), 64, std::uint64_t{o.slots} * o.chunk_size,
                    [&](std::exception_ptr error) {
                      std::lock_guard lock(trace_mutex);
                      if (tracing) tracing->fail(error);
                    });
  outs.commit_through(&commits);
  prefix_retirer retirer;
  auto deliver = [&](const chunk_info& info, std::vector<std::byte> bytes) {
    outs.deliver(info, std::move(bytes));
    eng->retire(retirer.done(info.seq));
  };
  auto skip = [&](const chunk_info& info, const input_skipped& e) {
    outs.skip(info, e, inputs[info.input].path);
    eng->retire(retirer.done(info.seq));
  };
  detail::job_spec spec;
  spec.sources = detail::to_sources(inputs);
  spec.outputs = &outputs;
  spec.frame = [&op](std::size_t i) { return op.frame(i); };
  // Fewer slots than `window` and the limits above assume only tighten them.
  spec.may_shrink_slots = !slots_given;
  spec.trace = trace;
  spec.trace_prefix = trace_prefix;
  spec.host = [&op, &deliver, &skip, &pool](const chunk_info& info, std::span<const std::byte> data,
                                            const std::function<void()>& verify) {
    std::vector<std::byte> out = pool.take(info.size);
    try {
      op.host(info, data, out);
    } catch (const input_skipped& e) {
      verify();  // a skip made from bytes that were not the file's is not the file's fault
      skip(info, e);
      return;
    }
    verify();  // before the output goes to its writer, whose last chunk commits the file
    deliver(info, std::move(out));
  };
  spec.make_gpu = [&op, &deliver, &skip, &pool](
                      int device, std::size_t max_chunk,
                      unsigned buffers) -> std::unique_ptr<detail::gpu_worker> {
#if HETPIPE_WITH_CUDA
    auto impl = op.make_device_transformer(device, max_chunk, buffers);
    if (!impl) return nullptr;
    return std::make_unique<transform_worker>(std::move(impl), deliver, skip, pool);
#else
    (void)device, (void)max_chunk, (void)buffers, (void)op, (void)deliver, (void)skip, (void)pool;
    return nullptr;
#endif
  };
  // The last outputs' commits (their writes, fsync, rename) belong to the job: its time, its
  // trace's write spans and -v's write line (once they came after the trace was written).
  spec.after_lanes = [&commits] { commits.finish(); };
  spec.complete = [&outs] { return outs.all_committed(); };
  detail::engine e(o, std::move(spec));
  eng = &e;
  tracing = &e;
  struct stop_tracing {
    std::mutex& m;
    detail::engine*& t;
    ~stop_tracing() {
      std::lock_guard lock(m);
      t = nullptr;
    }
  } stop{trace_mutex, tracing};
  e.run();
  commits.finish();
  outs.finish_empty();
  auto skipped = outs.take_skipped();
  if (report) {
    *report = e.report();
    report->skipped = std::move(skipped);
  } else if (!skipped.empty()) {
    throw input_error(skipped.front().file, skipped.front().reason);
  }
}

}  // namespace hetpipe

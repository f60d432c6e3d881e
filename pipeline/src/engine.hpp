// The engine under run(): one libuv reader filling a fixed pool of (pinned) slots, one ready
// queue, CPU lanes (OpenMP threads) and GPU lanes (a thread, streams and device buffers each)
// pulling from it. The op-specific glue (reduce.cpp, transform.cpp) says what a lane does with a
// chunk and calls retire() once a chunk's result is consumed (merged or handed to the writer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <hetpipe/pipeline.hpp>

#include "io/mapped.hpp"
#include "io/reader.hpp"
#include "io/slot_pool.hpp"
#include "pipeline/src/trace.hpp"

namespace hetpipe::detail {

// What a GPU lane does with a device-resident chunk; the result is handed on in collect().
// A batch is one chunk, or several small ones copied back to back (see device_reducer).
class gpu_worker {
 public:
  virtual ~gpu_worker() = default;
  virtual std::size_t max_batch() const { return 1; }
  // Whether the chunk should rather run on the host (job_spec::host, on the lane's thread), e.g.
  // an image too large for the device (see device_transformer::prefer_host).
  virtual bool prefer_host(const chunk_info& info, std::span<const std::byte> data) {
    (void)info, (void)data;
    return false;
  }
  // What stage() will give for a chunk, in bytes, or an estimate (see
  // device_transformer::staged_bytes).
  virtual std::size_t staged_bytes(const chunk_info& info, std::span<const std::byte> data) {
    (void)info;
    return data.size();
  }
  // What a batch starting with this chunk may stage and read, 0 for the default (see
  // device_transformer::batch_budget).
  virtual std::size_t batch_budget(const chunk_info& info, std::span<const std::byte> data) {
    (void)info, (void)data;
    return 0;
  }
  // Host work over the chunks about to be staged, in order (see device_transformer::prepare).
  virtual void prepare(std::span<const chunk_info> infos,
                       std::span<const std::span<const std::byte>> data, unsigned buffer) {
    (void)infos, (void)data, (void)buffer;
  }
  // The bytes to copy for a chunk (see device_transformer::stage), or nullopt when the chunk was
  // handed on already (its input skipped): it leaves the batch.
  virtual std::optional<std::span<const std::byte>> stage(const chunk_info& info,
                                                          std::span<const std::byte> data,
                                                          unsigned buffer) {
    (void)info, (void)buffer;
    return data;
  }
  virtual void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                      const std::byte* d_data, stream_ref stream, unsigned buffer) = 0;
  virtual void collect(std::span<const chunk_info> infos, unsigned buffer) = 0;
};

struct job_spec {
  std::vector<io::source> sources;
  // A transform's outputs (the caller's, not copied): what a trace of the job must not replace.
  const std::vector<std::string>* outputs = nullptr;
  // True once every output is in place (renamed): a cancel that came by then is not the job's
  // failure. Called after the lanes ended and after_lanes ran. Null: a cancel always fails it.
  std::function<bool()> complete;
  std::function<framing(std::size_t)> frame;
  // A CPU lane's work on one chunk, result handed on before returning. Called concurrently.
  // `verify` throws when the bytes just worked on may not have been the input's (a mapped page
  // that vanished under the work: io::mapped_reads::check): call it after the work and before
  // the result leaves (a transform's output goes to its writer, which may commit it).
  std::function<void(const chunk_info&, std::span<const std::byte>,
                     const std::function<void()>& verify)>
      host;
  // A GPU lane's worker, or nullptr when the operator has no device implementation.
  std::function<std::unique_ptr<gpu_worker>(int device, std::size_t max_chunk, unsigned buffers)>
      make_gpu;
  // Work that ends the job once every lane is done, inside its time, trace and -v summary (a
  // transform's last commits: its output writes). Called once, also after a failure; what it
  // throws fails the job.
  std::function<void()> after_lanes;
  // An input known to give no chunk (a regular file stat'ed at size 0), once each, on the thread
  // that called run(), when the job's set-up is done and before the first read; what it throws
  // fails the job.
  std::function<void(std::size_t)> empty_input;
  // Whether the job's options left these to the engine: a job of many small files then gets more
  // slots (of the files' size) and thread-pool threads, a job of large chunks (whole images)
  // fewer slots (see engine::run).
  bool may_grow_slots = false, may_grow_io_threads = false, may_shrink_slots = false;
  // Several jobs in one trace file: a tracer the caller opened and writes once they are done
  // (options::trace_path is then ignored), and the prefix of this job's row names in it.
  tracer* trace = nullptr;
  std::string trace_prefix;
};

// The slots of a job whose options left them to the engine (`slots`: resolve()'s default, 2 per
// io thread plus every lane's), for slots of `slot_bytes`. Large chunks (whole images of many MiB)
// bound the reads' share (reads in flight, chunks waiting for a lane) to 128 MiB instead, keep
// every lane's slot, and the whole pool within 1 GiB (at least 2 slots). `slots` stays for slots
// up to 128 MiB / (2 x io threads) (4 MiB with 16 io threads) and for the small files' slots
// (256 KiB and less), which engine::run may have grown. A pool was allocated and touched, or
// pinned, before the job started (about 0.5 s per GiB; now GPU lanes pin slots as they go): 32
// images of 64 MiB made a 1 GiB pool on the H200 box (16 slots). In auto mode there 16 CPU lanes
// run until the GPU lanes join, and 1 GiB held 15 slots of 64 MiB and a page: one lane had none
// (mapping_pool_budget() gives 21). 2-core box, 12 x 8192^2 PGM (a 64 MiB read takes 13 ms,
// filtering the image 0.2 s): set-up 0.03-1.4 s with 10 slots, 0.012-0.017 s (one run 0.56) with 4.
// `pool_budget` is that 1 GiB, or for a pool that stays untouched (CPU lanes alone, mapping the
// chunks of regular files, every chunk's records aligned so that it can be mapped; never pinned)
// untouched_pool_budget(): there a slot costs address space, and what bounds the pool is what the
// lanes' chunks in flight may hold (a transform's outputs). HD photos with one 576 MiB image among
// them had 2 slots, so 2 busy lanes.
unsigned large_chunk_slots(unsigned slots, std::uint64_t slot_bytes, unsigned io_threads,
                           unsigned cpu_lanes, unsigned gpu_lanes,
                           std::uint64_t pool_budget) noexcept;
// A quarter of the machine's memory, at least 1 GiB.
std::uint64_t untouched_pool_budget() noexcept;
// The budget where CPU lanes map their chunks until GPU lanes join (auto mode): an eighth of the
// memory, at least 1 GiB. The GPU lanes' chunks are read into slots, which they page-lock.
std::uint64_t mapping_pool_budget() noexcept;
// The machine's memory in bytes (sysconf), 0 when it cannot say.
std::uint64_t physical_memory() noexcept;

// GPU lanes page-lock the slot pool as they first copy from a slot, a block of slots at a time:
// blocks of this many bytes (one slot at least), fixed by the slots' numbers. Many small slots
// (files of 64 KiB) then take one cudaHostRegister call, not one each; large ones (whole
// images) one each.
constexpr std::size_t pin_run_bytes = std::size_t{8} << 20;

// Mapped windows (io::mapped_reads) the last job left unretired when it ended, before they were
// unmapped: every chunk of a window is retired once, whichever lane took it, so a job that
// succeeded leaves none. For tests.
extern std::atomic<std::size_t> windows_left_at_end;

// The error of --device gpu where no CUDA device is usable (or none was compiled in).
[[noreturn]] void throw_no_gpu();

// Auto mode's choice to bring the GPU lanes up (the CUDA driver's start, device memory, and then
// page-locking the slot pool: 0.25-0.3 s on the H200 box, and their teardown): only for a job its
// CPU lanes would still be running min_remaining seconds later. Fed one check at a time (every 20
// ms); pure, so that the rule is tested apart from the clock.
class gpu_start_rule {
 public:
  gpu_start_rule(double min_remaining, std::uint64_t total_bytes, bool sizes_known) noexcept
      : min_remaining_(min_remaining), total_(total_bytes), sizes_known_(sizes_known) {}
  // A threshold of 0: start the GPU lanes at once, without waiting for a check.
  bool at_once() const noexcept { return !(min_remaining_ > 0); }
  // A check `t` seconds into the job with `done` bytes done: true to start the GPU lanes now.
  bool check(double t, std::uint64_t done) noexcept;
  // The CPU lanes' remaining time projected at the last check; -1 before a rate was measured.
  double projected() const noexcept { return projected_; }

 private:
  double min_remaining_;
  std::uint64_t total_;
  bool sizes_known_;
  bool based_ = false;
  double base_t_ = 0;
  std::uint64_t base_done_ = 0;
  double projected_ = -1;
};

// Progress within one chunk a CPU lane works on: bytes of the chunk's input done, told by an
// operator whose chunks take long (an image of 8192^2 is about 0.1 s of a core). The job counts
// them before the chunk is done: auto mode's projection (gpu_start_rule) and the progress line.
// A job of 32 such images had no chunk done by its first checks, was taken as long, and started
// GPU lanes whose set-up it then waited for after its CPU lanes had finished.
//
// The same calls stop a chunk once its job is stopping (cancelled, or failed elsewhere): a lane
// otherwise finished its image first, and a signal during the last images of a job let them all
// run to their end (2-core box: a SIGINT 0.3 s into an image of 0.86 s ended the job at 0.86 s,
// one into an 8192^2 gray PNG's encoding at zlib level 6 at 10.4 s).
class chunk_progress {
 public:
  // stop: true once the job is stopping (null: never).
  chunk_progress(std::atomic<std::uint64_t>& job, std::uint64_t size,
                 const std::atomic<bool>* stop = nullptr) noexcept
      : job_(&job), size_(size), stop_(stop) {}
  // Counting nothing, only stopping: a GPU lane's, around its worker's host work on a batch.
  explicit chunk_progress(const std::atomic<bool>* stop) noexcept : size_(0), stop_(stop) {}
  ~chunk_progress() { take_back(); }
  chunk_progress(const chunk_progress&) = delete;
  chunk_progress& operator=(const chunk_progress&) = delete;
  // The chunk of the host() call running on this thread (null outside one: a GPU lane's thread,
  // or a caller of the operator's own). Taken on that thread; add() may then be called from any
  // thread until host() returns.
  static chunk_progress* current() noexcept;
  // `bytes` more of the chunk done; what would pass the chunk's size counts nothing.
  void add(std::uint64_t bytes) noexcept;
  // Whether the job is stopping: the chunk's work is wasted.
  bool stopping() const noexcept { return stop_ && stop_->load(std::memory_order_relaxed); }
  // For work counted in `parts` equal parts of current()'s chunk (an image's output rows): a
  // function telling n more parts done, callable as add() is, which throws `cancelled` once the
  // job is stopping (from an OpenMP team, through host::parallel_for); empty where current() is
  // null.
  static std::function<void(std::size_t n)> in_parts(std::uint64_t parts);
  // The same for work that tells nothing: it only throws `cancelled` once current()'s job is
  // stopping (a GPU lane's image team, decoding and encoding); empty where current() is null.
  static std::function<void(std::size_t)> stops();
  std::uint64_t told() const noexcept { return told_.load(std::memory_order_relaxed); }
  // What was told leaves the job's count (the chunk is done, or given up; the destructor's
  // part): call it before the chunk's whole size is counted done.
  void take_back() noexcept;

  // Makes p this thread's current() while it lives.
  class scope {
   public:
    explicit scope(chunk_progress* p) noexcept;
    ~scope();
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

   private:
    chunk_progress* prev_;
  };

 private:
  std::atomic<std::uint64_t>* const job_ = nullptr;  // null: counts nothing
  const std::uint64_t size_;
  const std::atomic<bool>* const stop_;
  std::atomic<std::uint64_t> told_{0};
};

// Lanes of two kinds pull from it. First-call lanes (pop()) take any chunk. Helper lanes
// (pop_surplus()) take one only while more than `reserve` chunks wait, or once the reader is done:
// in a hybrid job the CPU lanes then take the chunks the GPU lanes cannot keep up with, instead
// of racing them for every chunk (and slowing the reads they share the cores with).
class ready_queue {
 public:
  // Any time (GPU lanes joining a running job): later pop_surplus() calls leave this many.
  void set_reserve(std::size_t reserve);
  bool finished();         // closed and empty: no chunk will come any more
  bool surplus();          // more chunks wait than the reserve
  bool push(io::chunk c);  // false once closed or aborted: the caller keeps the chunk's slot
  std::optional<io::chunk> pop();  // nullopt once closed and empty, or aborted
  // As pop(), leaving `reserve` chunks to pop(), and only a chunk that `accept` (called under the
  // queue's lock) takes; a refused chunk stays first for pop().
  std::optional<io::chunk> pop_surplus(const std::function<bool(const io::chunk&)>& accept = {});
  // The first waiting chunk if it holds at most max_size bytes; never waits.
  std::optional<io::chunk> try_pop(std::size_t max_size);
  void close();                    // no more chunks will come
  std::vector<io::chunk> abort();  // drop what is queued (the caller releases the slots)

 private:
  std::atomic<std::size_t> reserve_{0};  // set under mutex_; read without it in pop_surplus
  std::mutex mutex_;
  std::condition_variable cv_, surplus_cv_;
  std::deque<io::chunk> queue_;
  bool closed_ = false;
  // pop()'s waiters, and whether one of them was signalled and has not woken yet. A push signals
  // only when no wake is on its way; a woken pop() that leaves chunks behind signals the next
  // waiter. So the reader's loop thread wakes one idle lane per burst of chunks, not one per
  // chunk, and the lanes wake each other (a wake is a system call, several microseconds).
  unsigned waiting_ = 0;
  bool signalled_ = false;
};

class engine {
 public:
  engine(const options& resolved, job_spec spec);
  ~engine();
  // Runs the job to the end; throws the first error after every thread was joined and every
  // slot returned.
  void run();
  void retire(std::uint64_t chunks);
  // A write of `bytes` to an output in [begin, end) (steady_clock ns), for the trace and -v:
  // each on the first "write k" row free by its start. Any thread.
  void trace_write(std::uint64_t begin_ns, std::uint64_t end_ns, std::uint64_t bytes);
  void fail(std::exception_ptr error) noexcept;
  // fail(cancelled) unless the job is complete (complete_): a signal after the last output was
  // renamed into place does not report it interrupted.
  void fail_cancelled() noexcept;
  // The rest of a failure, once: the reader stopped, the queue's chunks dropped.
  void stop() noexcept;
  void drop(io::chunk& c) noexcept;  // a chunk not worked on: its descriptor (if unread), its slot
  bool failed() const noexcept { return failed_.load(); }
  job_report report() const;

 private:
  // GPU lanes page-lock the slot pool as they first copy from a slot, with the rest of its block
  // (pin_run_bytes). Called by the GPU lane that holds the slot.
  void pin_slot(unsigned slot);
  // `count` CPU lanes; those from `beside_gpu` on stop once GPU lanes run.
  void cpu_lanes(unsigned count, unsigned beside_gpu);
  void gpu_lane(unsigned index, int device, gpu_worker& worker);
  void monitor();
  void chunk_done(std::uint64_t bytes);
  // Auto mode: checks gpu_start_rule every 20 ms until it says to bring the GPU lanes up (true),
  // or the CPU lanes are done or the job failed (false). `start`: the job's start.
  bool long_job(std::chrono::steady_clock::time_point start);

  options opt_;
  job_spec spec_;
  tracer own_trace_;  // options::trace_path's, unless job_spec::trace is given
  tracer& trace_;
  std::unique_ptr<io::slot_pool> pool_;
  // pin_slot's state (null without GPU lanes): per block of pin_block_slots_ slots, 0 (not yet),
  // 1 (page-locked) or 2 (refused: copies from its slots are synchronous); and the lanes' time.
  std::unique_ptr<std::atomic<std::uint8_t>[]> pin_blocks_;
  unsigned pin_block_slots_ = 1;
  std::mutex pin_mutex_;
  std::atomic<std::uint64_t> pin_ns_{0};
  // Block b's slots: [first, end).
  std::pair<unsigned, unsigned> pin_block(unsigned b) const;
  std::unique_ptr<io::reader> reader_;
  ready_queue queue_;
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
  bool error_is_cancel_ = false;  // error_ is fail_cancelled()'s (under error_mutex_)
  // Every chunk done and every output made (after_lanes returned) without an error: a cancel that
  // comes now changes nothing, and the job succeeds (under error_mutex_).
  bool complete_ = false;
  std::atomic<bool> finished_{false};
  std::mutex monitor_mutex_;
  std::condition_variable monitor_cv_;
  std::atomic<std::uint64_t> bytes_done_{0}, chunks_done_{0};
  // Bytes of chunks still on CPU lanes that their operators told done (chunk_progress).
  std::atomic<std::uint64_t> partial_bytes_{0};
  // Hybrid scheduling (cpu_lanes): one CPU lane's cost per byte, and the GPU lanes' progress.
  std::atomic<double> cpu_ns_per_byte_{0};
  std::atomic<std::uint64_t> cpu_claimed_bytes_{0}, cpu_claimed_chunks_{0};
  std::atomic<std::uint64_t> gpu_bytes_done_{0}, gpu_start_ns_{0};
  std::atomic<unsigned> gpu_lanes_running_{0};
  // Whether the reader delivers large chunks unread for their lane to read or map (io::
  // reader_config::lane_reads): while no GPU lane runs, and options::reads allows it.
  std::atomic<bool> lane_reads_{false};
  // The CPU lanes' mappings of unread chunks (options::reads == map); null otherwise.
  std::unique_ptr<io::mapped_reads> maps_;
  std::mutex lanes_end_mutex_;
  std::condition_variable lanes_end_cv_;
  bool cpu_lanes_done_ = false;  // guarded by lanes_end_mutex_
  // long_job's last check: when (s into the job), and the CPU lanes' projected remaining time
  // (s; -1 before a rate was measured). For -v.
  double gpu_decided_at_ = 0, gpu_projected_ = -1;
  bool sizes_known_ = true;        // every input a regular file: total_bytes_ is the job's size
  std::uint64_t total_bytes_ = 0;  // 0 when unknown (pipes)
  std::size_t slot_bytes_ = 0;
  std::size_t gpu_buffer_bytes_ = 0;  // a GPU lane's device buffer: a chunk, or a batch of files
  job_report report_;
  span_rows write_rows_{trace_, spec_.trace_prefix + "write"};
  std::mutex lanes_mutex_;
  std::vector<lane_report> lane_reports_;
};

std::vector<io::source> to_sources(const std::vector<input>& inputs);

// run(transform_op) with options that resolve() made, which the caller may have changed since: a
// job of whole files (images) may take chunks beyond max_chunk_size. slots_given: the caller chose
// the slots (the engine does not shrink them for large chunks). trace, trace_prefix: as in
// job_spec (several jobs in one trace).
void run_transform(const transform_op& op, const std::vector<input>& inputs,
                   const std::vector<std::string>& outputs, const options& resolved,
                   bool slots_given, job_report* report, tracer* trace = nullptr,
                   const std::string& trace_prefix = "");

// run(reduce_op, ..., on_final) with a trace shared by several jobs (as in job_spec: the caller
// opened it and writes it once they are done).
std::vector<std::unique_ptr<partial>> run_reduce(const reduce_op& op,
                                                 const std::vector<input>& inputs,
                                                 const options& opt, job_report* report,
                                                 const final_fn& on_final, tracer* trace);

}  // namespace hetpipe::detail

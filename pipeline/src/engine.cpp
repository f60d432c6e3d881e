#include "pipeline/src/engine.hpp"

#include <linux/magic.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <new>
#include <system_error>
#include <thread>
#include <utility>

#include <hetpipe/error.hpp>

#include "pipeline/src/stat_all.hpp"

#if HETPIPE_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {

namespace {
std::atomic<double> cuda_start_seconds{0};  // gpu_count()'s first call
}  // namespace

int gpu_count() noexcept {
#if HETPIPE_WITH_CUDA
  // Initialising the runtime costs tens of milliseconds; ask once per process.
  static const int count = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const int n = cuda::device_count();
    cuda_start_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return n;
  }();
  return count;
#else
  return 0;
#endif
}

int gpu_count_estimate() noexcept {
#if HETPIPE_WITH_CUDA
  static const int count = cuda::probe_device_count();
  return count;
#else
  return 0;
#endif
}

void mark_copy_back(stream_ref s) {
#if HETPIPE_WITH_CUDA
  if (!s.copy_back || !s.copy_back_set) return;
  cuda::record_event(s.copy_back, s.handle);
  *s.copy_back_set = true;
#else
  (void)s;
#endif
}

namespace detail {

void throw_no_gpu() {
#if HETPIPE_WITH_CUDA
  throw gpu_error("--device gpu: no usable CUDA device (" + cuda::runtime_status() + ")");
#else
  throw gpu_error("--device gpu: this hetpipe was built without CUDA");
#endif
}

namespace {

// Files of the kernel's pseudo file systems state a size that is not their content: 0 for /proc's
// and the cgroup files' (whose content is made when read), 4096 for a /sys attribute. A FUSE file
// system may do the same (lxcfs's /proc files in containers state 0): there a file of size 0 is
// read to its end too (as a stream, which needs slots of a whole chunk: the small files' slots and
// the size-based settings go, as for /proc). One statfs per file system (device) of the job.
class pseudo_fs_cache {
 public:
  bool size_is_not_content(const std::string& path, dev_t dev, std::uint64_t size) {
    auto at =
        std::find_if(seen_.begin(), seen_.end(), [dev](const auto& s) { return s.first == dev; });
    if (at == seen_.end()) {
      kind k = kind::plain;
      struct statfs fs {};
      if (::statfs(path.c_str(), &fs) == 0) {
        switch (static_cast<unsigned long>(fs.f_type)) {
          case PROC_SUPER_MAGIC:
          case SYSFS_MAGIC:
          case DEBUGFS_MAGIC:
          case TRACEFS_MAGIC:
          case SECURITYFS_MAGIC:
          case CGROUP_SUPER_MAGIC:
          case CGROUP2_SUPER_MAGIC:
          case BPF_FS_MAGIC:
          case configfs_magic:
            k = kind::pseudo;
            break;
          case FUSE_SUPER_MAGIC:
            k = kind::fuse;
            break;
          default:
            break;
        }
      }
      at = seen_.insert(seen_.end(), {dev, k});
    }
    return at->second == kind::pseudo || (at->second == kind::fuse && size == 0);
  }

 private:
  static constexpr unsigned long configfs_magic = 0x62656570;  // not in <linux/magic.h>
  enum class kind { plain, pseudo, fuse };
  std::vector<std::pair<dev_t, kind>> seen_;
};

// Set on a CPU lane's thread when the hybrid policy (cpu_lanes' accept) claimed the chunk that
// the lane's pop_surplus() call is returning.
thread_local bool claimed_here = false;

// Files delivered unopened (one chunk each) of at least this size are mapped rather than read.
constexpr std::size_t map_unopened_min = std::size_t{4} << 20;
// A CPU lane's chunk end that took this long gave pages back (a "release" span); most take a
// microsecond or two, and a span is a lock shared by every lane.
constexpr std::uint64_t release_span_min_ns = 50'000;
}  // namespace

bool ready_queue::push(io::chunk c) {
  bool surplus = false, wake = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    queue_.push_back(c);
    surplus = queue_.size() > reserve_;
    wake = waiting_ > 0 && !signalled_;
    signalled_ = signalled_ || wake;
  }
  if (wake) cv_.notify_one();
  if (surplus) surplus_cv_.notify_one();
  return true;
}

std::optional<io::chunk> ready_queue::pop() {
  bool wake = false;
  io::chunk c{};
  {
    std::unique_lock lock(mutex_);
    while (!closed_ && queue_.empty()) {
      ++waiting_;
      cv_.wait(lock);
      --waiting_;
      signalled_ = false;  // this wake (or a spurious one): a later push may signal again
    }
    if (queue_.empty()) return std::nullopt;
    c = queue_.front();
    queue_.pop_front();
    wake = !queue_.empty() && waiting_ > 0 && !signalled_;
    signalled_ = signalled_ || wake;
  }
  if (wake) cv_.notify_one();
  return c;
}

void ready_queue::set_reserve(std::size_t reserve) {
  std::lock_guard lock(mutex_);
  reserve_ = reserve;
}

bool ready_queue::surplus() {
  std::lock_guard lock(mutex_);
  return queue_.size() > reserve_;
}

bool ready_queue::finished() {
  std::lock_guard lock(mutex_);
  return closed_ && queue_.empty();
}

std::optional<io::chunk> ready_queue::pop_surplus(
    const std::function<bool(const io::chunk&)>& accept) {
  if (reserve_ == 0) return pop();
  std::unique_lock lock(mutex_);
  while (true) {
    surplus_cv_.wait(lock, [&] { return closed_ || queue_.size() > reserve_; });
    if (queue_.empty()) return std::nullopt;
    if (!accept || accept(queue_.front())) {
      io::chunk c = queue_.front();
      queue_.pop_front();
      return c;
    }
    // Refused: a GPU lane will take it. Look again soon (the rates and the queue change).
    surplus_cv_.wait_for(lock, std::chrono::milliseconds(2));
  }
}

std::optional<io::chunk> ready_queue::try_pop(std::size_t max_size) {
  std::lock_guard lock(mutex_);
  if (queue_.empty() || queue_.front().info.size > max_size) return std::nullopt;
  io::chunk c = queue_.front();
  queue_.pop_front();
  return c;
}

void ready_queue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
  surplus_cv_.notify_all();
}

std::vector<io::chunk> ready_queue::abort() {
  std::vector<io::chunk> dropped;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    dropped.assign(queue_.begin(), queue_.end());
    queue_.clear();
  }
  cv_.notify_all();
  surplus_cv_.notify_all();
  return dropped;
}

std::vector<io::source> to_sources(const std::vector<input>& inputs) {
  std::vector<io::source> out;
  out.reserve(inputs.size());
  for (const auto& in : inputs) {
    out.push_back({in.path, in.offset, in.length});
    out.back().fd = in.fd;
  }
  return out;
}

engine::engine(const options& resolved, job_spec spec)
    : opt_(resolved),
      spec_(std::move(spec)),
      own_trace_(!spec_.trace && !resolved.trace_path.empty()),
      trace_(spec_.trace ? *spec_.trace : own_trace_) {}

engine::~engine() = default;

std::atomic<std::size_t> windows_left_at_end{0};

void engine::drop(io::chunk& c) noexcept {
  io::drop_chunk(c);
  if (c.windowed && maps_) maps_->retire(c.info);
  pool_->release(c.slot);
}

void engine::fail(std::exception_ptr error) noexcept {
  {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = error;
  }
  stop();
}

void engine::stop() noexcept {
  if (failed_.exchange(true)) return;
  lanes_end_cv_.notify_all();  // auto mode's wait for a long job
  try {
    if (reader_) reader_->cancel();
  } catch (...) {
  }
  for (io::chunk& c : queue_.abort()) drop(c);
}

void engine::fail_cancelled() noexcept {
  {
    std::lock_guard lock(error_mutex_);
    if (complete_) return;
    if (!error_) {
      error_ = std::make_exception_ptr(cancelled());
      error_is_cancel_ = true;
    }
  }
  stop();  // not fail(): run() may find the job complete before that would set error_ again
}

unsigned large_chunk_slots(unsigned slots, std::uint64_t slot_bytes, unsigned io_threads,
                           unsigned cpu_lanes, unsigned gpu_lanes,
                           std::uint64_t pool_budget) noexcept {
  if (slot_bytes <= io::batched_read_max) return slots;
  constexpr std::uint64_t read_budget = std::uint64_t{128} << 20;
  const std::uint64_t reads =
      std::clamp<std::uint64_t>(read_budget / slot_bytes, 1, 2 * std::uint64_t{io_threads});
  const std::uint64_t lanes = std::uint64_t{cpu_lanes} + 2 * std::uint64_t{gpu_lanes};
  const std::uint64_t want = std::min(std::max<std::uint64_t>(4, lanes + reads),
                                      std::max<std::uint64_t>(2, pool_budget / slot_bytes));
  return static_cast<unsigned>(std::min<std::uint64_t>(slots, want));
}

std::uint64_t physical_memory() noexcept {
  // Read once: sysconf(_SC_PHYS_PAGES) is a sysinfo(2) call, and every image's plan asks.
  static const std::uint64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
  }();
  return bytes;
}

std::uint64_t untouched_pool_budget() noexcept {
  return std::max<std::uint64_t>(std::uint64_t{1} << 30, physical_memory() / 4);
}

std::uint64_t mapping_pool_budget() noexcept {
  return std::max<std::uint64_t>(std::uint64_t{1} << 30, physical_memory() / 8);
}

namespace {
thread_local chunk_progress* current_progress = nullptr;
}  // namespace

chunk_progress* chunk_progress::current() noexcept {
  return current_progress;
}

void chunk_progress::add(std::uint64_t bytes) noexcept {
  std::uint64_t was = told_.load(std::memory_order_relaxed), now = 0;
  do {
    now = std::min(size_, was + std::min(bytes, size_));
    if (now == was) return;
  } while (!told_.compare_exchange_weak(was, now, std::memory_order_relaxed));
  job_->fetch_add(now - was, std::memory_order_relaxed);  // size_ > 0: a job to count in
}

void chunk_progress::take_back() noexcept {
  const std::uint64_t told = told_.exchange(0, std::memory_order_relaxed);
  if (told > 0) job_->fetch_sub(told, std::memory_order_relaxed);
}

std::function<void(std::size_t)> chunk_progress::stops() {
  chunk_progress* const p = current_progress;
  if (!p) return {};
  return [p](std::size_t) {
    if (p->stopping()) throw cancelled();
  };
}

std::function<void(std::size_t)> chunk_progress::in_parts(std::uint64_t parts) {
  chunk_progress* const p = current_progress;
  if (!p || parts == 0) return {};
  auto done = std::make_shared<std::atomic<std::uint64_t>>(0);
  return [p, done, parts](std::size_t n) {
    const std::uint64_t was = done->fetch_add(n, std::memory_order_relaxed);
    // Bytes through part k: floor(size k / parts) (an image's size and rows: far from 2^64).
    p->add(p->size_ * (was + n) / parts - p->size_ * was / parts);
    if (p->stopping()) throw cancelled();
  };
}

chunk_progress::scope::scope(chunk_progress* p) noexcept : prev_(current_progress) {
  current_progress = p;
}

chunk_progress::scope::~scope() {
  current_progress = prev_;
}

bool gpu_start_rule::check(double t, std::uint64_t done) noexcept {
  if (at_once()) return true;
  // A stream of unknown length (a pipe) still running at its first check: assumed long.
  if (!sizes_known_) return true;
  // The rate is measured from the first check with a chunk done on: a job's start (the thread
  // pool's first opens and reads) runs slower than its steady state.
  if (!based_) {
    based_ = done > 0;
    base_t_ = t;
    base_done_ = done;
  }
  // No chunk finished since then (or at all): heavy chunks (one image each, say) or slow reads.
  // A job that has run a quarter of the threshold so is taken as long.
  if (done <= base_done_) return t >= min_remaining_ / 4;
  const std::uint64_t left = total_ > done ? total_ - done : 0;
  projected_ = static_cast<double>(left) * (t - base_t_) / static_cast<double>(done - base_done_);
  return projected_ >= min_remaining_;
}

bool engine::long_job(std::chrono::steady_clock::time_point start) {
  gpu_start_rule rule(opt_.auto_gpu_min_remaining, total_bytes_, sizes_known_);
  if (rule.at_once()) return true;
  std::unique_lock lock(lanes_end_mutex_);
  for (;;) {
    if (lanes_end_cv_.wait_for(lock, std::chrono::milliseconds(20),
                               [this] { return cpu_lanes_done_ || failed_.load(); }))
      return false;
    gpu_decided_at_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool go = rule.check(gpu_decided_at_, bytes_done_.load() + partial_bytes_.load());
    gpu_projected_ = rule.projected();
    if (go) return true;
  }
}

void engine::retire(std::uint64_t chunks) {
  if (chunks && reader_) reader_->retire(chunks);
}

void engine::trace_write(std::uint64_t begin_ns, std::uint64_t end_ns, std::uint64_t bytes) {
  write_rows_.span("write", begin_ns, end_ns, 0, bytes);
}

void engine::chunk_done(std::uint64_t bytes) {
  bytes_done_.fetch_add(bytes, std::memory_order_relaxed);
  chunks_done_.fetch_add(1, std::memory_order_relaxed);
}

std::pair<unsigned, unsigned> engine::pin_block(unsigned b) const {
  return {b * pin_block_slots_, std::min((b + 1) * pin_block_slots_, pool_->count())};
}

job_report engine::report() const {
  return report_;
}

void engine::cpu_lanes(unsigned count, unsigned beside_gpu) {
  // Beside GPU lanes, a CPU lane takes a chunk only when it should finish it before the GPU lanes
  // would have finished everything else left at their measured rate: a slow lane must not hold
  // up the end of the job (one 64 MiB image can take a CPU core a second, the GPU milliseconds).
  // Work the CPU lanes hold counts as theirs, not the GPU's. Until one CPU chunk has been timed,
  // one CPU lane at a time takes a chunk (the probe); until the GPU lanes have finished a batch,
  // CPU lanes take what they get. Called under the queue's lock; a true answer takes the chunk.
  const auto accept = [this](const io::chunk& c) {
    const auto take = [&] {
      cpu_claimed_bytes_.fetch_add(c.info.size, std::memory_order_relaxed);
      cpu_claimed_chunks_.fetch_add(1, std::memory_order_relaxed);
      claimed_here = true;
      return true;
    };
    // Nothing to balance: sizes unknown (a pipe among the inputs), the job failing or cancelled,
    // or no GPU lane left to take the chunk.
    if (!sizes_known_ || failed_.load() || gpu_lanes_running_.load() == 0) return take();
    const double cpu = cpu_ns_per_byte_.load(std::memory_order_relaxed);
    if (cpu <= 0) return cpu_claimed_chunks_.load(std::memory_order_relaxed) == 0 && take();
    const std::uint64_t gpu_bytes = gpu_bytes_done_.load(std::memory_order_relaxed);
    const std::uint64_t gpu_start = gpu_start_ns_.load(std::memory_order_relaxed);
    const std::uint64_t now = now_ns();
    if (gpu_bytes == 0 || gpu_start == 0 || now <= gpu_start) return take();
    const double gpu_bytes_per_ns =
        static_cast<double>(gpu_bytes) / static_cast<double>(now - gpu_start);
    const std::uint64_t done = bytes_done_.load(std::memory_order_relaxed);
    const std::uint64_t claimed = cpu_claimed_bytes_.load(std::memory_order_relaxed);
    const double left =
        total_bytes_ > done + claimed ? static_cast<double>(total_bytes_ - done - claimed) : 0.0;
    return static_cast<double>(c.info.size) * cpu <= left / gpu_bytes_per_ns && take();
  };
  std::vector<int> tracks(count);
  for (unsigned i = 0; i < count; ++i)
    tracks[i] = trace_.track(spec_.trace_prefix + "cpu lane " + std::to_string(i));
  std::vector<lane_report> reports(count);
  for (unsigned i = 0; i < count; ++i) reports[i].name = "cpu " + std::to_string(i);
  // Lane `me` until the queue ends; alone (on this thread, before the team) until a chunk it
  // finished leaves another waiting: then it returns true, and the team takes over.
  const auto lane = [&](unsigned me, bool alone) {
    lane_report& rep = reports[me];
    std::uint64_t busy = 0;
    bool behind = false;
    // The lanes past beside_gpu stop once GPU lanes run (auto mode's late ones): the reads that
    // feed those want the cores.
    while (auto c = me >= beside_gpu && gpu_lanes_running_.load() > 0
                        ? std::nullopt
                        : queue_.pop_surplus(accept)) {
      // Whether accept() counted this chunk as the CPU lanes' (before GPU lanes join a running
      // job there is no reserve, and chunks come without it).
      const bool claimed = std::exchange(claimed_here, false);
      const std::uint64_t t0 = now_ns();
      std::uint64_t th = t0;  // the host work's start, after the lane's own read if any
      io::mapped_reads::view mapped;
      chunk_progress progress(partial_bytes_, c->info.size, &failed_);
      const std::string& path = spec_.sources[c->info.input].path;
      try {
        if (!failed_.load(std::memory_order_relaxed)) {
          const std::byte* data = c->data;
          if (io::needs_read(*c)) {  // delivered unread: mapped, or read into this core's cache
            // A large file delivered unopened is mapped too (an image of 8192^2 and its slot's
            // first-touch faults): a mapping of its own pays for its munmap only past a few MiB
            // (bench/hash_shapes, 2 threads: mapchunk against local 8.5 / 10.8 GB/s at 1 MiB,
            // 10.7 / 10.6 at 4 MiB, 11.5 / 8.7 at 16 MiB, 11.3 / 6.1 at 64 MiB). From 4 MiB: 200
            // HD RGB PPMs (6.2 MB) through the image chain, 2 lanes, medians of 7 interleaved
            // rounds, 8 MiB -> 4 MiB: /dev/shm 0.497 -> 0.456 s, ext4 0.572 -> 0.490 s; 250
            // images of 4.3 MB 0.451 -> 0.436 s; 2.8 and 1.5 MB images gained nothing at 1-2 MiB.
            if (maps_ && c->unopened && c->info.size >= map_unopened_min) {
              io::open_chunk(*c, path);
              c->windowed = true;  // its window is retired with it
            }
            if (maps_ && c->read_fd >= 0) mapped = maps_->map(*c, path);
            if (mapped.data) {
              data = mapped.data;
              io::drop_chunk(*c);  // its descriptor
              rep.mapped++;
            } else {
              io::read_chunk(*c, path);
            }
            th = now_ns();
            trace_.span(tracks[me], mapped.data ? "map" : "read", t0, th, c->info.seq,
                        c->info.size);
          }
          const chunk_progress::scope told_here(&progress);
          spec_.host(c->info, std::span<const std::byte>(data, c->info.size),
                     [&mapped, &path] { io::mapped_reads::check(mapped, path); });
        }
      } catch (...) {
        // Pages of a mapped chunk that vanished (the file shrank) read as zeros, on which the
        // operator may have failed first: the file's fault is the error then.
        std::exception_ptr error = std::current_exception();
        try {
          io::mapped_reads::check(mapped, path);
        } catch (...) {
          error = std::current_exception();
        }
        fail(error);
      }
      const std::uint64_t t1 = now_ns();
      if (c->info.size > 0) {
        // A running estimate of one CPU lane's cost per byte (races between lanes are harmless).
        const double x = static_cast<double>(t1 - t0) / static_cast<double>(c->info.size);
        const double old = cpu_ns_per_byte_.load(std::memory_order_relaxed);
        cpu_ns_per_byte_.store(old > 0 ? 0.75 * old + 0.25 * x : x, std::memory_order_relaxed);
      }
      drop(*c);  // its slot, and its descriptor if a failure left it unread
      // A mapped chunk that ended a block of its window gave the block's pages back (MADV_DONTNEED,
      // or the window's munmap): page-table work on this lane, 0.15-0.2 us a page of a tmpfs file
      // (3.5-4.3 ms per 64 MiB block on the 2-core box). Shown as its own stage.
      const std::uint64_t t2 = now_ns();
      trace_.span(tracks[me], "host", th, t1, c->info.seq, c->info.size);
      if (t2 - t1 >= release_span_min_ns)
        trace_.span(tracks[me], "release", t1, t2, c->info.seq, 0);
      busy += t1 - t0;  // the lane's read included: its rate is what auto mode projects from
      rep.chunks++;
      rep.bytes += c->info.size;
      progress.take_back();
      chunk_done(c->info.size);
      if (claimed) {
        cpu_claimed_bytes_.fetch_sub(c->info.size, std::memory_order_relaxed);
        cpu_claimed_chunks_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (alone && queue_.surplus()) {
        behind = true;
        break;
      }
    }
    rep.busy_seconds += static_cast<double>(busy) * 1e-9;
    return behind;
  };
  // A stream of unknown length (standard input, a pipe, a FIFO) starts on one lane, and the
  // others join once the reads outpace it: most such streams deliver slower than one lane works,
  // and an idle lane still cost its thread's start and libgomp's spinning at the team's end and
  // at the thread's exit (100 FIFOs of a few bytes, each a job: 0.12-0.77 s with two lanes,
  // 0.069-0.073 s now; 2-core box). Known sizes have no more lanes than chunks (run()).
  if (count > 1 && !sizes_known_ && !lane(0, true)) count = 0;
  if (count > 0) {
#pragma omp parallel num_threads(count)
    lane(static_cast<unsigned>(omp_get_thread_num()), false);
  }
  std::lock_guard lock(lanes_mutex_);
  for (auto& r : reports) lane_reports_.push_back(std::move(r));
}

#if HETPIPE_WITH_CUDA
// GPU lanes page-lock a slot of the pool when they first copy from it, after a read filled it,
// rather than have the pool allocated page-locked (--device gpu: cudaHostAlloc, 71-100 ms for
// 176 MiB on the H200 box, bench/cuda_fixed) or locked whole before late lanes join (auto mode:
// that also faulted in every page the CPU lanes, mapping their chunks, had left untouched;
// touching anonymous memory took 104-124 ms per 176 MiB there, and cudaHostRegister of it,
// touched, 12-14 ms). The auto job over 32 8192^2 images (a pool of 1 GiB) joined after a set-up
// of 0.43 s, about 0.2 s of it the driver's and the context's start. Slots are locked in blocks
// (pin_run_bytes), one lane at a time.
void engine::pin_slot(unsigned slot) {
  std::atomic<std::uint8_t>& state = pin_blocks_[slot / pin_block_slots_];
  if (state.load(std::memory_order_acquire) != 0) return;
  std::lock_guard lock(pin_mutex_);
  if (state.load(std::memory_order_acquire) != 0) return;  // another lane locked it meanwhile
  // The block's other slots may be in use meanwhile (a read filling one): locking changes nothing
  // of their bytes.
  const auto [first, end] = pin_block(slot / pin_block_slots_);
  const bool ok =
      cuda::host_register(pool_->data(first), std::size_t{end - first} * pool_->stride());
  state.store(ok ? 1 : 2, std::memory_order_release);
}

// One GPU lane: a copy stream and a compute stream, `buffers` device buffers used in a ring.
// The H2D copy of chunk n+1 is issued while the kernel of chunk n runs; a chunk's pinned slot goes
// back to the pool as soon as its copy has completed; its results are collected when the buffer
// comes round again (or at the end).
//
// Timing comes from CUDA events, not from host waits: every copy and kernel is bracketed by timing
// events, placed on the host clock through one origin event whose completion the lane observed.
// The "kernel" stage holds what the operator queued on the compute stream for the chunk (kernels
// and its copy back of results).
void engine::gpu_lane(unsigned index, int device, gpu_worker& worker) {
  // What a batch of chunks may stage beyond a chunk's size (decoded images), at most.
  constexpr std::size_t batch_staged_bytes = std::size_t{64} << 20;
  const unsigned nbuf = opt_.gpu_buffers;
  const std::size_t max_batch = std::max<std::size_t>(1, worker.max_batch());
  constexpr std::size_t align = 256;
  const std::string lane =
      spec_.trace_prefix + "gpu " + std::to_string(device) + " lane " + std::to_string(index);
  const int h2d_track = trace_.track(lane + " h2d");
  const int kernel_track = trace_.track(lane + " kernel");
  const int d2h_track = trace_.track(lane + " d2h");
  const int host_track = trace_.track(lane + " host");
  std::uint64_t host_work_ns = 0;  // chunks this lane ran on the host (prefer_host)
  // The worker's host work around a batch (prepare, collect) shows in the trace when it takes
  // this long: decoding or encoding images, not a reduction's merge of a few results. It stops
  // as a CPU lane's chunk does once the job is stopping (chunk_progress::stops).
  constexpr std::uint64_t host_span_min_ns = 20000;
  chunk_progress stop_only(&failed_);
  lane_report rep;
  rep.name = "gpu " + std::to_string(device) + "." + std::to_string(index);
  struct batch {
    std::vector<chunk_info> infos;
    std::vector<std::size_t> offsets;
    std::uint64_t bytes = 0;
  };
  std::vector<batch> batches(nbuf);
  std::vector<io::chunk> held;  // pool slots whose H2D copies have not been seen complete
  std::vector<std::span<const std::byte>> staged;  // what is copied for each held chunk
  std::vector<chunk_info> prep_infos;              // the held chunks, for prepare()
  std::vector<std::span<const std::byte>> prep_data;
  double busy_ms = 0;
  try {
    cuda::set_device(device);
    cuda::stream copy_stream(device), compute_stream(device);
    std::vector<cuda::device_buffer> d_in;
    std::vector<cuda::event> copy_begin, copied, kernel_begin, copy_back, done;
    std::unique_ptr<bool[]> copy_back_set(new bool[nbuf]());  // the operator marked its D2H
    for (unsigned b = 0; b < nbuf; ++b) {
      d_in.emplace_back(gpu_buffer_bytes_);
      copy_begin.emplace_back(true);
      copied.emplace_back(true);
      kernel_begin.emplace_back(true);
      copy_back.emplace_back(true);
      done.emplace_back(true);
    }
    cuda::event origin(true);
    origin.record(compute_stream);
    origin.synchronize();
    const std::uint64_t origin_ns = now_ns();
    auto host_ns = [&](const cuda::event& e) {
      const double ms = cuda::elapsed_ms(origin, e);
      return origin_ns + static_cast<std::uint64_t>(std::max(0.0, ms) * 1e6);
    };
    auto retire_buffer = [&](unsigned b) {
      batch& bt = batches[b];
      if (bt.infos.empty()) return;
      done[b].synchronize();
      const chunk_info first = bt.infos.front();
      if (copy_back_set[b]) {
        trace_.span(kernel_track, "kernel", host_ns(kernel_begin[b]), host_ns(copy_back[b]),
                    first.seq, bt.bytes);
        trace_.span(d2h_track, "d2h", host_ns(copy_back[b]), host_ns(done[b]), first.seq, bt.bytes);
      } else {
        trace_.span(kernel_track, "kernel", host_ns(kernel_begin[b]), host_ns(done[b]), first.seq,
                    bt.bytes);
      }
      trace_.span(h2d_track, "h2d", host_ns(copy_begin[b]), host_ns(copied[b]), first.seq,
                  bt.bytes);
      busy_ms += cuda::elapsed_ms(kernel_begin[b], done[b]);
      gpu_bytes_done_.fetch_add(bt.bytes, std::memory_order_relaxed);
      if (!failed_.load()) {
        const std::uint64_t t0 = now_ns();
        {
          const chunk_progress::scope stops_here(&stop_only);
          worker.collect(bt.infos, b);
        }
        const std::uint64_t t1 = now_ns();
        if (t1 - t0 >= host_span_min_ns)
          trace_.span(host_track, "collect", t0, t1, first.seq, bt.bytes);
      }
      rep.chunks += bt.infos.size();
      rep.bytes += bt.bytes;
      for (const auto& info : bt.infos) chunk_done(info.size);
      bt.infos.clear();
      bt.offsets.clear();
      bt.bytes = 0;
    };
    unsigned next = 0;
    // The next chunk; when none is waiting, the batches in flight are collected before the lane
    // blocks. A transform retires chunks in sequence order only, and the reader stops a window
    // ahead of the oldest unretired chunk: a lane that slept on a batch it had not collected
    // could hold up every other lane, and the reader, forever.
    const auto next_chunk = [&]() -> std::optional<io::chunk> {
      if (auto c = queue_.try_pop(std::numeric_limits<std::size_t>::max())) return c;
      for (unsigned k = 0; k < nbuf; ++k) retire_buffer((next + k) % nbuf);
      return queue_.pop();
    };
    // A chunk the lane holds, read here if it was delivered unread (before the GPU lanes joined,
    // the CPU lanes read their own).
    const auto hold = [&](const io::chunk& c) {
      held.push_back(c);
      io::read_chunk(held.back(), spec_.sources[c.info.input].path);
    };
    while (auto c = next_chunk()) {
      hold(*c);
      if (failed_.load()) break;
      // Small chunks that are already waiting join this one, back to back in one device buffer,
      // while their bytes fit one chunk and what the worker will stage for them (decoded images)
      // fits max(one chunk, batch_staged_bytes): the device buffer grows to that, plus one chunk.
      // A worker may ask for more (a team of PNG decoders, one image per thread): both bounds are
      // then its budget.
      const auto round_up = [](std::size_t n) { return (n + align - 1) / align * align; };
      const auto staged_of = [&](const io::chunk& h) {
        return round_up(
            worker.staged_bytes(h.info, std::span<const std::byte>(h.data, h.info.size)));
      };
      const std::size_t budget =
          worker.batch_budget(c->info, std::span<const std::byte>(c->data, c->info.size));
      const std::size_t staged_budget = std::max({gpu_buffer_bytes_, batch_staged_bytes, budget});
      const std::size_t read_budget = std::max(gpu_buffer_bytes_, budget);
      std::size_t used = round_up(c->info.size), staged_est = staged_of(*c);
      while (held.size() < max_batch && used < read_budget && staged_est < staged_budget) {
        auto more = queue_.try_pop(read_budget - used);
        if (!more) break;
        hold(*more);
        used += round_up(more->info.size);
        staged_est += staged_of(*more);
      }
      const unsigned b = next;
      next = (next + 1) % nbuf;
      retire_buffer(b);  // the buffer's previous batch must be finished before it is overwritten
      // The worker's host stage (the chunk itself, unless it decodes or reshapes it); a chunk it
      // hands on at once (a skipped input) leaves the batch and its slot goes back now.
      staged.clear();
      std::size_t need = 0;
      // A chunk handed on without the device (run on the host, or skipped): its slot goes back.
      const auto handed_on = [&](std::size_t k) {
        const io::chunk& h = held[k];
        rep.chunks++;
        rep.bytes += h.info.size;
        chunk_done(h.info.size);
        drop(held[k]);  // its slot, and its window's count if the CPU lanes map its input
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      };
      // Chunks the worker would rather run on the host go first, on this thread.
      for (std::size_t k = 0; k < held.size();) {
        const io::chunk& h = held[k];
        const std::span<const std::byte> data(h.data, h.info.size);
        if (failed_.load()) break;  // the slots go back below; nothing more is worth doing
        if (!worker.prefer_host(h.info, data)) {
          ++k;
          continue;
        }
        // First hand on the batches this lane holds (a transform retires in order; the other
        // lanes must not wait on them meanwhile).
        for (unsigned j = 0; j < nbuf; ++j) retire_buffer((next + j) % nbuf);
        const std::uint64_t t0 = now_ns();
        {
          // Told as a CPU lane's chunk is (the progress line), and stopped as one.
          chunk_progress progress(partial_bytes_, h.info.size, &failed_);
          const chunk_progress::scope told_here(&progress);
          spec_.host(h.info, data, [] {});  // read into its slot: nothing to verify
        }
        const std::uint64_t t1 = now_ns();
        trace_.span(host_track, "host", t0, t1, h.info.seq, h.info.size);
        host_work_ns += t1 - t0;
        handed_on(k);
      }
      if (failed_.load()) break;
      // The worker's host work over the rest of the batch, then each chunk's stage.
      if (!held.empty()) {
        prep_infos.clear();
        prep_data.clear();
        for (const io::chunk& h : held) {
          prep_infos.push_back(h.info);
          prep_data.emplace_back(h.data, h.info.size);
        }
        const std::uint64_t t0 = now_ns();
        {
          const chunk_progress::scope stops_here(&stop_only);
          worker.prepare(prep_infos, prep_data, b);
        }
        const std::uint64_t t1 = now_ns();
        if (t1 - t0 >= host_span_min_ns)
          trace_.span(host_track, "prepare", t0, t1, held[0].info.seq, 0);
      }
      for (std::size_t k = 0; k < held.size();) {
        const io::chunk& h = held[k];
        auto s = worker.stage(h.info, std::span<const std::byte>(h.data, h.info.size), b);
        if (!s) {
          handed_on(k);
          continue;
        }
        staged.push_back(*s);
        need += (s->size() + align - 1) / align * align;
        ++k;
      }
      if (failed_.load()) break;
      if (held.empty()) continue;
      if (need > d_in[b].size()) {  // staged bytes beyond a chunk (decoded images); b is idle
        const std::size_t grown = std::max(need, d_in[b].size() + d_in[b].size() / 2);
        d_in[b] = cuda::device_buffer();  // freed first: the two need not fit at once
        d_in[b] = cuda::device_buffer(grown);
      }
      // The slots the copies read from, page-locked first (the first time each comes by).
      {
        const std::uint64_t t0 = now_ns();
        for (std::size_t k = 0; k < held.size(); ++k) {
          const std::byte* slot = pool_->data(held[k].slot);
          if (staged[k].data() >= slot && staged[k].data() < slot + pool_->stride())
            pin_slot(held[k].slot);
        }
        const std::uint64_t t1 = now_ns();
        pin_ns_.fetch_add(t1 - t0, std::memory_order_relaxed);
        if (t1 - t0 >= host_span_min_ns)
          trace_.span(host_track, "pin", t0, t1, held[0].info.seq, 0);
      }
      batch& bt = batches[b];
      std::uint64_t unset = 0;
      gpu_start_ns_.compare_exchange_strong(unset, now_ns(), std::memory_order_relaxed);
      copy_begin[b].record(copy_stream);
      std::size_t off = 0;
      for (std::size_t k = 0; k < held.size(); ++k) {
        const io::chunk& h = held[k];
        cuda::copy_h2d_async(static_cast<std::byte*>(d_in[b].get()) + off, staged[k].data(),
                             staged[k].size(), copy_stream);
        bt.infos.push_back(h.info);
        bt.offsets.push_back(off);
        bt.bytes += h.info.size;
        off += (staged[k].size() + align - 1) / align * align;
      }
      copied[b].record(copy_stream);
      copied[b].make_wait(compute_stream);
      kernel_begin[b].record(compute_stream);
      copy_back_set[b] = false;
      worker.launch(
          bt.infos, bt.offsets, static_cast<const std::byte*>(d_in[b].get()),
          stream_ref{compute_stream.handle(), device, copy_back[b].handle(), &copy_back_set[b]}, b);
      done[b].record(compute_stream);
      // The kernel of the previous batch runs meanwhile; the slots return once the copies are
      // done.
      copied[b].synchronize();
      for (io::chunk& h : held) drop(h);  // read before the copy: its slot (and window count)
      held.clear();
      // Batches the device has finished are handed on now, oldest first, not when their buffer
      // comes round again: a lane then holds one or two batches, not nbuf, of work the CPU lanes
      // could have taken (in auto mode on the H200, 96 PNGs: the CPU lanes took 35 and were busy
      // 38% of the job while the GPU lanes sat on decoded batches), and the output and the GPU's
      // measured rate (gpu_bytes_done_) are not three batches late.
      for (unsigned k = 1; k < nbuf; ++k) {
        const unsigned j = (b + k) % nbuf;  // b + 1 is the oldest
        if (batches[j].infos.empty()) continue;
        if (!done[j].ready()) break;
        retire_buffer(j);
      }
    }
    for (io::chunk& h : held) drop(h);
    held.clear();
    for (unsigned k = 0; k < nbuf; ++k) retire_buffer((next + k) % nbuf);
    compute_stream.synchronize();
    copy_stream.synchronize();
  } catch (...) {
    for (io::chunk& h : held) drop(h);
    fail(std::current_exception());
    // Drain whatever is still queued so the reader can finish; the job has failed.
    while (auto c = queue_.pop()) drop(*c);
  }
  rep.busy_seconds = busy_ms * 1e-3 + static_cast<double>(host_work_ns) * 1e-9;
  std::lock_guard lock(lanes_mutex_);
  lane_reports_.push_back(std::move(rep));
}
#else
void engine::gpu_lane(unsigned, int, gpu_worker&) {}
#endif

void engine::monitor() {
  const bool tty_progress = opt_.progress;
  const auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  bool printed = false;
  const auto print = [&](std::chrono::steady_clock::time_point now) {
    const double secs = std::chrono::duration<double>(now - start).count();
    const std::uint64_t done = bytes_done_.load() + partial_bytes_.load();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    char eta[32] = "";
    if (total_bytes_ > done && rate > 0) {
      const double left = static_cast<double>(total_bytes_ - done) / rate;
      std::snprintf(eta, sizeof eta, "  ETA %.0fs", left);
    }
    std::string total = total_bytes_ ? " / " + format_size(total_bytes_) : std::string();
    std::fprintf(stderr, "\rhetpipe: %s%s  %.2f GB/s%s   ", format_size(done).c_str(),
                 total.c_str(), rate * 1e-9, eta);
    std::fflush(stderr);
    printed = true;
  };
  while (true) {
    // Checked before each wait: a signal that came before the job started (during a passphrase's
    // key derivation, say) stops a job shorter than one wait too.
    if (opt_.cancel && opt_.cancel->load() && !failed_.load()) fail_cancelled();
    {
      // Woken at once when the job ends (a plain sleep here once added up to 50 ms to every job).
      std::unique_lock lock(monitor_mutex_);
      if (monitor_cv_.wait_for(lock, std::chrono::milliseconds(50),
                               [&] { return finished_.load(); }))
        break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (tty_progress && now - last_print >= std::chrono::milliseconds(250)) {
      last_print = now;
      print(now);
    }
  }
  // The line left on the terminal says where the job ended (it showed the last update, up to
  // 250 ms before: "1019 MiB / 1.172 GiB" for a job that read it all).
  if (printed) {
    print(std::chrono::steady_clock::now());
    std::fprintf(stderr, "\n");
  }
}

void engine::run() {
  if (opt_.cancel && opt_.cancel->load()) throw cancelled();  // before any output is made
  // A trace of its own (a shared one is the caller's to open and write).
  const bool own_trace = !spec_.trace && !opt_.trace_path.empty();
  if (own_trace) {  // fails before any output too
    std::vector<std::string> inputs;
    inputs.reserve(spec_.sources.size());
    for (const auto& s : spec_.sources) inputs.push_back(s.path);
    trace_.open(opt_.trace_path, inputs,
                spec_.outputs ? *spec_.outputs : std::vector<std::string>{});
  }
  // A shared trace holds earlier jobs' totals too: -v shows this job's.
  const std::map<std::string, double> totals_before = trace_.stage_totals();
  const auto setup_start = std::chrono::steady_clock::now();
  // Framing decides the slot size: lines framing reads past the chunk to finish its last record.
  std::size_t extra = 0;
  for (std::size_t i = 0; i < spec_.sources.size(); ++i) {
    const framing f = spec_.frame(i);
    if (f.kind != framing_kind::records && f.kind != framing_kind::whole_file &&
        f.kind != framing_kind::lines)
      throw usage_error(spec_.sources[i].path, "the operator's framing is of no known kind (" +
                                                   std::to_string(static_cast<int>(f.kind)) + ")");
    // (max_record + 1 once wrapped to 0 for SIZE_MAX: every line was "longer" than it)
    if (f.kind == framing_kind::lines && f.max_record > max_chunk_size)
      throw usage_error(spec_.sources[i].path, "the operator's framing allows lines of " +
                                                   format_size(f.max_record) +
                                                   "; at most 1 GiB (framing::lines(max_record))");
    if (f.kind == framing_kind::lines) extra = std::max(extra, f.max_record + 1);
    if (f.kind == framing_kind::records && f.record_size > opt_.chunk_size)
      throw usage_error(spec_.sources[i].path, "one record (" + format_size(f.record_size) +
                                                   ") is larger than the chunk (--chunk-size " +
                                                   format_size(opt_.chunk_size) +
                                                   ", at most 1 GiB)");
  }
  slot_bytes_ = opt_.chunk_size + extra;
  // Sizes, for the progress total and for jobs of small files: when every input is a regular file
  // smaller than a chunk (and no framing reads past a chunk), slots only need to hold the largest
  // file. 20 000 files of 64 KiB then take 64 KiB slots, not 4 MiB ones (less memory to pin and
  // fault in), while GPU lanes keep chunk-sized device buffers to batch many files per launch.
  bool all_small = extra == 0;
  std::uint64_t largest = 0;
  std::uint64_t job_chunks = 0;  // the job's chunks, where every input's size is known
  bool counted = true;
  std::vector<std::string> paths;
  paths.reserve(spec_.sources.size());
  for (const auto& s : spec_.sources)
    paths.push_back(s.path == "-" || s.fd >= 0 ? std::string() : s.path);
  const std::vector<path_stat> stats = stat_all(paths);  // "" fails: standard input
  std::vector<std::size_t> empty_inputs;  // regular files of no bytes (in their region)
  pseudo_fs_cache pseudo;
  for (std::size_t i = 0; i < spec_.sources.size(); ++i) {
    io::source& s = spec_.sources[i];
    const struct stat& st = stats[i].st;
    if (stats[i].error != 0 || !S_ISREG(st.st_mode)) {
      all_small = false;
      sizes_known_ = false;
      continue;
    }
    s.regular = true;  // the reader need not stat it again
    s.size = static_cast<std::uint64_t>(st.st_size);
    s.dev = static_cast<std::uint64_t>(st.st_dev);
    s.ino = static_cast<std::uint64_t>(st.st_ino);
    if (pseudo.size_is_not_content(s.path, st.st_dev, s.size)) {  // /proc, /sys: to the end
      s.read_to_end = true;
      all_small = false;
      sizes_known_ = false;
      continue;
    }
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t region = s.length ? *s.length : (size > s.offset ? size - s.offset : 0);
    if (region == 0) empty_inputs.push_back(i);
    total_bytes_ += region;
    largest = std::max(largest, region);
    if (const auto n = io::chunk_count(spec_.frame(i), region, opt_.chunk_size))
      job_chunks += *n;
    else
      counted = false;
  }
  gpu_buffer_bytes_ = slot_bytes_;
  if (all_small && largest < opt_.chunk_size) {
    constexpr std::uint64_t page = 4096;
    slot_bytes_ = static_cast<std::size_t>(std::max(page, (largest + page - 1) / page * page));
    // Many small files: with more slots and thread-pool threads the reader puts 8 files in each
    // trip through the pool instead of 4 (2 cores) and wakes threads less often. 20 000 x 64 KiB,
    // CRC32C, 2 cores: 2.31 -> 3.16 GB/s, the reader thread's CPU 0.19 -> 0.07 s. Slots of a small
    // file's size cost little: as many as the default pool's bytes hold, up to 128.
    const bool small = slot_bytes_ <= io::batched_read_max;
    if (spec_.may_grow_slots && small)
      opt_.slots = static_cast<unsigned>(std::clamp<std::uint64_t>(
          std::uint64_t{opt_.slots} * opt_.chunk_size / slot_bytes_, opt_.slots, 128));
    if (spec_.may_grow_io_threads && small) opt_.io_threads = std::max(opt_.io_threads, 16u);
  }
  // CPU lanes: no more than the job has chunks. A lane left without a chunk still cost its
  // thread's start, and libgomp's spinning at the team's end and at the thread's exit (a
  // 5-byte checksum took 9.0 ms of wall time with two lanes, 4.6-4.9 with one; the process's
  // start alone is 3.7 ms; 2-core box). Inputs of unknown length keep every lane.
  const unsigned ncpu =
      opt_.device == device_mode::gpu ? 0
      : sizes_known_ && counted
          ? static_cast<unsigned>(std::clamp<std::uint64_t>(job_chunks, 1, opt_.cpu_threads))
          : opt_.cpu_threads;
  // CPU lanes alone (no GPU lane can join), mapping the chunks of regular files: the pool is never
  // page-locked, and a slot is touched only where its chunk could not be mapped, so that big
  // slots cost address space, not memory.
  const bool no_gpu_lanes =
      opt_.device == device_mode::cpu || !spec_.make_gpu || opt_.gpu_lanes == 0;
  // And every chunk can be mapped (io::mapped_reads::aligned). A region that starts off its
  // records' alignment (an age file's payload after its header) has every chunk read into a slot,
  // which a pool of many large slots would fill.
  bool aligned = extra == 0;
  for (std::size_t i = 0; i < spec_.sources.size() && aligned; ++i) {
    const framing f = spec_.frame(i);
    aligned =
        f.kind != framing_kind::lines && io::mapped_reads::aligned(f, spec_.sources[i].offset);
  }
  // With GPU lanes that may join (auto mode), the CPU lanes map theirs until then, and the pool
  // is touched and page-locked only where the GPU lanes' chunks are read: within an eighth of the
  // memory, so that each of 16 CPU lanes has its slot of a 64 MiB image (a 1 GiB pool held 15).
  const bool maps = opt_.reads == read_mode::map && ncpu > 0 && sizes_known_ && aligned;
  if (spec_.may_shrink_slots)
    opt_.slots = large_chunk_slots(opt_.slots, slot_bytes_, opt_.io_threads, ncpu, opt_.gpu_lanes,
                                   !maps          ? std::uint64_t{1} << 30
                                   : no_gpu_lanes ? untouched_pool_budget()
                                                  : mapping_pool_budget());
  // No more slots than the job has chunks: the pool is touched page by page when it is made,
  // and 4 images of 64 MiB took 0.32-1.1 s of set-up with the default 10 slots, 0.045 s with 4
  // (2-core box). Reads of unknown length (pipes) keep the options' slots.
  if (sizes_known_ && counted)
    opt_.slots =
        static_cast<unsigned>(std::clamp<std::uint64_t>(job_chunks, 1, std::max(1u, opt_.slots)));

  // Lanes: GPU lanes where asked for and possible, CPU lanes unless --device gpu.
  const auto gpu_setup_start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<gpu_worker>> workers;
  std::vector<int> worker_device;
  // Auto mode with CPU lanes: the CPU lanes start at once, and the GPU lanes are brought up for a
  // job long enough to repay them (long_job), joining it once their device memory is allocated
  // (they page-lock the pool's slots as they go: pin_slot). Up front, that work and page-locking
  // the pool took 0.12-0.22 s before any chunk moved (H100, H200), and the driver's start 0.1 s
  // more. --device gpu sets its lanes up first.
  const bool late =
      opt_.device == device_mode::automatic && ncpu > 0 && spec_.make_gpu && opt_.gpu_lanes > 0;
  const int gpus = opt_.device == device_mode::cpu || late ? 0 : gpu_count();
  if (opt_.device == device_mode::gpu && gpus == 0) throw_no_gpu();
  // Auto mode's late lanes stop being made once the CPU lanes have finished or the job failed:
  // each lane's set-up (a device's context, its buffers) is a wait the job would add to its end.
  const auto superseded = [&] {
    if (failed_.load()) return true;
    std::lock_guard lock(lanes_end_mutex_);
    return cpu_lanes_done_;
  };
  const auto make_workers = [&](int devices) {
    for (int d = 0; d < devices; ++d)
      for (unsigned l = 0; l < opt_.gpu_lanes; ++l) {
        if (late && superseded()) return;
#if HETPIPE_WITH_CUDA
        cuda::set_device(d);  // the worker allocates its device memory on its lane's device
#endif
        auto w = spec_.make_gpu(d, gpu_buffer_bytes_, opt_.gpu_buffers);
        if (!w) return;
        workers.push_back(std::move(w));
        worker_device.push_back(d);
      }
  };
  if (gpus > 0 && spec_.make_gpu) make_workers(gpus);
  if (opt_.device == device_mode::gpu && workers.empty())
    throw usage_error("--device gpu: this operation has no GPU implementation");
  if (ncpu == 0 && workers.empty()) throw usage_error("no lanes to run on");
  // Hybrid: two chunks per GPU lane stay queued for the GPU lanes (one being copied, one next);
  // CPU lanes take what piles up beyond that.
  if (ncpu > 0 && !workers.empty()) queue_.set_reserve(2 * workers.size());

  const auto pool_start = std::chrono::steady_clock::now();
  report_.setup_gpu_seconds = std::chrono::duration<double>(pool_start - gpu_setup_start).count();
  // CPU lanes that map their chunks leave their slots empty: the pool's pages are faulted in
  // only where a chunk is read after all. Touching 176 MiB took 0.10-0.12 s on the H200 box
  // (bench/cuda_fixed), before the first chunk of a job that may last 0.1 s. GPU lanes page-lock
  // each slot when they first copy from it (pin_slot), after a read filled it: the pool is never
  // allocated page-locked (cudaHostAlloc of 176 MiB: 71-100 ms there, of 1 GiB about 0.5 s), and
  // its pages are faulted in by the reads, on the thread pool's threads.
  const bool prefault = workers.empty() && !(opt_.reads == read_mode::map && ncpu > 0);
  try {
    pool_ = std::make_unique<io::slot_pool>(opt_.slots, slot_bytes_, prefault);
  } catch (const std::bad_alloc&) {  // the options asked for it: theirs to lower
    throw usage_error("cannot allocate " + std::to_string(opt_.slots) + " slots of " +
                      format_size(slot_bytes_) + " (" +
                      format_size(std::uint64_t{opt_.slots} * slot_bytes_) +
                      "): lower --slots or --chunk-size");
  }
  report_.setup_pool_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pool_start).count();
  if (!late) report_.cuda_start_seconds = cuda_start_seconds.load();
  io::set_io_threads(opt_.io_threads);
  io::reader_config cfg;
  cfg.chunk_size = opt_.chunk_size;
  cfg.max_inflight = std::max(1u, std::min(opt_.slots, 2 * opt_.io_threads));
  cfg.window = std::max<std::uint64_t>(16, std::uint64_t{4} * opt_.slots);
  // CPU lanes read their own large chunks of regular files while no GPU lane runs (a GPU lane
  // wants its chunks read ahead, in many reads at once): BLAKE3 of 1 GiB on the 2-core box,
  // bench/hash_shapes: 10.25 GB/s with readers and hashers apart, 12.01 with each thread reading
  // what it then hashes.
  lane_reads_ = opt_.reads != read_mode::pool && ncpu > 0 && (late || gpus == 0);
  cfg.lane_reads = &lane_reads_;
  // ... or work on them straight from the page cache, which spares the copy (bench/hash_shapes,
  // BLAKE3, 2 threads: 11.2-12.4 GB/s reading into a buffer, 13.5-14.1 from 64 MiB windows; H200,
  // 16 lanes, 2026-11-27: CRC32C 48.8 reading, 60.0 mapping in 1 GiB windows released by chunk).
  if (lane_reads_ && opt_.reads == read_mode::map)
    maps_ = std::make_unique<io::mapped_reads>(spec_.frame, opt_.chunk_size);
  // Inputs open at once: 64, or a quarter of the descriptors the process may have (`ulimit -n
  // 64` failed many small files with "too many open files"; the rest is libuv's, the outputs').
  if (struct rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    cfg.max_open_files =
        static_cast<unsigned>(std::clamp<rlim_t>(rl.rlim_cur / 4, 1, cfg.max_open_files));
  reader_ = std::make_unique<io::reader>(spec_.sources, spec_.frame, *pool_, cfg);
  report_.setup_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - setup_start).count();

  if (spec_.empty_input)
    for (const std::size_t i : empty_inputs) spec_.empty_input(i);
  const auto start = std::chrono::steady_clock::now();
  // Reads in flight overlap: the "read k" rows used are the read concurrency the job reached.
  span_rows read_rows(trace_, spec_.trace_prefix + "read");
  // A thread of ours that cannot be started (ulimit -u, -v) or a reader that cannot start its loop
  // (ulimit -n) fails the job, which then ends as any failed job does: the threads that did start
  // are joined (one left joinable ended the process in std::terminate). The threads libuv's pool
  // and OpenMP's team start are theirs: where those cannot start, the library ends the process
  // (libuv aborts, libgomp exits with its own message).
  const auto spawn = [this](std::vector<std::thread>& to, auto&& body) {
    try {
      to.emplace_back(std::forward<decltype(body)>(body));
    } catch (const std::system_error& e) {
      fail(std::make_exception_ptr(
          error("", "cannot start a thread: " + errno_reason(e.code().value()))));
    } catch (const std::bad_alloc&) {  // the vector's growth, or the thread's state
      fail(std::make_exception_ptr(error("", "cannot start a thread: out of memory")));
    }
  };
  std::vector<std::thread> monitor_thread;  // none when it could not start
  spawn(monitor_thread, [this] { monitor(); });
  try {
    reader_->start(
        [this, &read_rows](io::chunk c) {
          // (a chunk delivered unread gets its read span on the lane that reads it)
          if ((trace_.recording() || opt_.verbose > 0) && !io::needs_read(c))
            read_rows.span("read", c.read_begin_ns, c.read_end_ns, c.info.seq, c.info.size);
          // A chunk read while the job failed (the queue may be aborted between the check and the
          // push: it then refuses the chunk) goes straight back to the pool.
          if (failed_.load() || !queue_.push(c)) drop(c);
        },
        [this](std::exception_ptr e) {
          if (e) fail(e);
          queue_.close();
        });
  } catch (...) {
    fail(std::current_exception());  // not started: nothing will be read
    queue_.close();
  }
  const auto run_gpu_lanes = [this, &workers, &worker_device, &spawn] {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < workers.size(); ++i)
      spawn(threads, [this, i, &workers, &worker_device] {
        gpu_lane(static_cast<unsigned>(i), worker_device[i], *workers[i]);
        gpu_lanes_running_.fetch_sub(1);  // CPU lanes then take whatever is left
      });
    for (auto& t : threads) t.join();
  };
  std::vector<std::thread> lanes;
  // GPU lanes find the pool pageable, and pin its slots as they go (pin_slot), in blocks of
  // pin_run_bytes (one slot at least) fixed by the slots' numbers: each is locked once, whatever
  // order the lanes need them in.
  const unsigned pin_blocks = [&]() -> unsigned {
    if (!late && workers.empty()) return 0;
    pin_block_slots_ = static_cast<unsigned>(
        std::clamp<std::size_t>(pin_run_bytes / pool_->stride(), 1, pool_->count()));
    return (pool_->count() + pin_block_slots_ - 1) / pin_block_slots_;
  }();
  if (pin_blocks > 0) {
    pin_blocks_ = std::make_unique<std::atomic<std::uint8_t>[]>(pin_blocks);
    for (unsigned b = 0; b < pin_blocks; ++b) pin_blocks_[b].store(0);
  }
  bool joined = !late;  // the GPU lanes (if any) ran
  bool cuda_started = !late && gpus > 0;
  int late_devices = 0;
  if (late) {
    spawn(lanes, [&, this] {
      try {
        if (!long_job(start)) return;
        const auto t0 = std::chrono::steady_clock::now();
        const int devices = gpu_count();  // the driver's start, here rather than up front
        cuda_started = true;
        late_devices = devices;
        report_.cuda_start_seconds = cuda_start_seconds.load();
        make_workers(devices);
        if (workers.empty() || queue_.finished() || superseded()) return;
        const auto t1 = std::chrono::steady_clock::now();
        report_.setup_gpu_seconds = std::chrono::duration<double>(t1 - t0).count();
        report_.gpu_join_seconds = std::chrono::duration<double>(t1 - start).count();
        queue_.set_reserve(2 * workers.size());
        lane_reads_ = false;  // read ahead for the GPU lanes from now on
        gpu_lanes_running_ = static_cast<unsigned>(workers.size());
        joined = true;
        run_gpu_lanes();
      } catch (...) {
        fail(std::current_exception());
      }
    });
  } else {
    gpu_lanes_running_ = static_cast<unsigned>(workers.size());
    spawn(lanes, run_gpu_lanes);
  }
  if (ncpu > 0)
    spawn(lanes, [this, ncpu] {
      try {
        cpu_lanes(ncpu, opt_.cpu_threads_beside_gpu);  // resolve(): at most cpu_threads
      } catch (...) {
        fail(std::current_exception());
      }
      {
        std::lock_guard lock(lanes_end_mutex_);
        cpu_lanes_done_ = true;
      }
      lanes_end_cv_.notify_all();
    });
  for (auto& t : lanes) t.join();
  reader_->wait();
  if (spec_.after_lanes) {
    try {
      spec_.after_lanes();
    } catch (...) {
      fail(std::current_exception());
    }
  }
  {
    // A cancel that came once every output was in place (a signal during the last output's fsync)
    // stopped nothing: the job succeeded, and says so.
    std::lock_guard lock(error_mutex_);
    if (error_is_cancel_ && spec_.complete && spec_.complete()) error_ = nullptr;
    complete_ = !error_;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard lock(monitor_mutex_);
    finished_ = true;
  }
  monitor_cv_.notify_all();
  for (auto& t : monitor_thread) t.join();
  workers.clear();         // device resources go before the pool they may reference
  unsigned pin_calls = 0;  // blocks page-locked
  for (unsigned b = 0; b < pin_blocks; ++b) {
    const auto [first, end] = pin_block(b);
    const std::uint8_t state = pin_blocks_[b].load();
    if (state == 1) {
      ++pin_calls;
      report_.slots_pinned += end - first;
#if HETPIPE_WITH_CUDA
      cuda::host_unregister(pool_->data(first));
#endif
    } else if (state == 2) {
      report_.slots_pin_refused += end - first;
    }
  }

  report_.resolved = opt_;
  report_.bytes = bytes_done_.load();
  report_.chunks = chunks_done_.load();
  report_.seconds = secs;
  report_.reader_cpu_seconds = reader_->loop_cpu_seconds();
  report_.cpu_lanes = ncpu;
  report_.gpu_lanes = joined ? static_cast<unsigned>(worker_device.size()) : 0;
  report_.gpu_projected_seconds = gpu_projected_;
  report_.lanes = lane_reports_;
  if (own_trace && !error_) {
    try {
      trace_.write();
    } catch (...) {
      fail(std::current_exception());
    }
  }
  if (opt_.verbose > 0) {
    std::fprintf(stderr, "hetpipe: %s in %.3f s (%.2f GB/s), %llu chunk%s, setup %.3f s\n",
                 format_size(report_.bytes).c_str(), secs,
                 secs > 0 ? static_cast<double>(report_.bytes) / secs * 1e-9 : 0.0,
                 static_cast<unsigned long long>(report_.chunks), report_.chunks == 1 ? "" : "s",
                 report_.setup_seconds);
    std::fprintf(
        stderr, "hetpipe:   pool     %u slots of %s, %s\n", pool_->count(),
        format_size(slot_bytes_).c_str(),
        io::huge_pages_pay() ? "huge pages advised" : "4 KiB pages (huge pages not advised here)");
    // A GPU job's fixed costs, which a short job may not repay.
    if (late ? cuda_started : gpus > 0)
      std::fprintf(stderr,
                   "hetpipe:   setup    GPU lanes %.3f s, slot pool %.3f s; CUDA start %.3f s "
                   "(once per process, %s)\n",
                   report_.setup_gpu_seconds, report_.setup_pool_seconds,
                   report_.cuda_start_seconds, late ? "in the job" : "before setup");
    if (late && joined) {
      char why[64] = "no rate measured";
      if (gpu_projected_ >= 0)
        std::snprintf(why, sizeof why, "CPU lanes projected to need %.3f s more", gpu_projected_);
      std::fprintf(stderr, "hetpipe:   GPU lanes started %.3f s in (%s), joined %.3f s in\n",
                   gpu_decided_at_, why, report_.gpu_join_seconds);
    } else if (late && !cuda_started && gpu_projected_ >= 0)
      std::fprintf(stderr,
                   "hetpipe:   GPU lanes not started: %.3f s in, the CPU lanes were projected to "
                   "need %.3f s more (GPU lanes start past %.2f s)\n",
                   gpu_decided_at_, gpu_projected_, opt_.auto_gpu_min_remaining);
    else if (late && !cuda_started)
      std::fprintf(stderr, "hetpipe:   GPU lanes not started: the job ended first\n");
    else if (late && worker_device.empty())
      std::fprintf(
          stderr, "hetpipe:   GPU lanes not started: %s\n",
          late_devices == 0 ? "no usable CUDA device" : "no GPU implementation for this job");
    else if (late)
      std::fprintf(stderr, "hetpipe:   GPU lanes did not join: the job was done first\n");
    if (joined && !worker_device.empty()) {
      char refused[96] = "";
      if (const unsigned n = report_.slots_pin_refused)
        std::snprintf(refused, sizeof refused, "; %u refused: copies from them were synchronous",
                      n);
      std::fprintf(stderr,
                   "hetpipe:   GPU lanes page-locked %u of %u slots as they first copied from "
                   "them (%u calls), in %.3f s%s\n",
                   report_.slots_pinned, pool_->count(), pin_calls,
                   static_cast<double>(pin_ns_.load()) * 1e-9, refused);
    }
    // One thread opens every input, issues every read and delivers every chunk: near 100%, it is
    // what limits the job.
    std::fprintf(stderr, "hetpipe:   reader   cpu  %8.3f s (%.0f%% of one thread)\n",
                 report_.reader_cpu_seconds,
                 secs > 0 ? 100.0 * report_.reader_cpu_seconds / secs : 0.0);
    for (auto [stage, busy] : trace_.stage_totals()) {
      if (const auto before = totals_before.find(stage); before != totals_before.end()) {
        busy -= before->second;
        if (busy <= 0) continue;  // a stage of an earlier job only
      }
      if (stage == "read")  // time in flight as the event loop saw it, not thread time
        std::fprintf(stderr, "hetpipe:   %-8s in flight %8.3f s (%.1f reads at once on average)\n",
                     stage.c_str(), busy, secs > 0 ? busy / secs : 0.0);
      else
        std::fprintf(stderr, "hetpipe:   %-8s busy %8.3f s\n", stage.c_str(), busy);
    }
    for (const auto& l : report_.lanes) {
      char mapped[48] = "";
      if (l.mapped > 0)
        std::snprintf(mapped, sizeof mapped, " (%llu mapped)",
                      static_cast<unsigned long long>(l.mapped));
      std::fprintf(stderr, "hetpipe:   lane %-8s %6llu chunk%s %10s busy %.3f s%s\n",
                   l.name.c_str(), static_cast<unsigned long long>(l.chunks),
                   l.chunks == 1 ? " " : "s", format_size(l.bytes).c_str(), l.busy_seconds, mapped);
    }
  }
  windows_left_at_end = maps_ ? maps_->windows_live() : 0;
  maps_.reset();
  reader_.reset();
  pool_.reset();
  if (error_) std::rethrow_exception(error_);
}

}  // namespace detail
}  // namespace hetpipe

// io::reader: one libuv loop on its own thread reads every input into pool slots.
//
// Framing rules (chunk ranges are nominal [a, b) in the input's data region, b = a + C):
//   records     C = chunk_size rounded down to a record multiple (at least one record); the region
//               size must be a multiple of the record size.
//   whole_file  one chunk per non-empty input; an input larger than chunk_size is an error.
//   lines       a record starts at 0 or after '\n'; a chunk owns the records that start in [a, b)
//               and reads past b to finish its last one. A line's content (without its '\n') is at
//               most max_record bytes, else input_error. When no record starts in [a, b) (a line
//               longer than the chunk size, only possible when max_record >= chunk_size) the chunk
//               is still delivered, with size 0, so that seq stays gapless.
// Sequence numbers are given in reader order: a positional chunk gets its seq when its read is
// issued, a sequential source's chunk when it is delivered (its input is then the current one).
// Open and framing errors are raised when their input becomes current, so the first bad input in
// order is the one reported, whatever order the opens finished in.
// Trips through libuv's thread pool cost about as much as copying 64 KiB, so small files share
// them: regular files are stat'ed and opened up to 8 per job (open_group), and consecutive inputs
// of one small chunk each are read and closed several per job (read_batch); other chunks are one
// uv_fs_read each, several in flight.
#include "io/reader.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "hetpipe/error.hpp"
#include "io/small_read.hpp"
#include "io/uv_util.hpp"

namespace hetpipe::io {

namespace {

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// Sequential sources read this much ahead of a full chunk to learn whether it is the last one.
constexpr std::size_t probe_bytes = 64 << 10;
// Lines framing first reads this far past b (most lines end there); then doubles up to max_record.
constexpr std::size_t lines_first_ext = 4096;

std::string num(std::uint64_t v) {
  return std::to_string(v);
}

// data[0, len) starts at a record start. True when no line's content exceeds max_record; an
// unterminated remainder is accepted if it is no longer than max_record (the caller only passes
// one at the end of the input).
bool lines_within(const std::byte* data, std::size_t len, std::size_t max_record) {
  std::size_t p = 0;
  while (p < len) {
    std::size_t w = std::min(len - p, max_record + 1);
    const void* q = ::memrchr(data + p, '\n', w);
    if (!q) return len - p <= max_record;
    p = static_cast<std::size_t>(static_cast<const std::byte*>(q) - data) + 1;
  }
  return true;
}

std::exception_ptr line_too_long(const std::string& path, std::size_t max_record) {
  return std::make_exception_ptr(
      input_error(path, "a line longer than max_record bytes (" + num(max_record) + ")"));
}

std::exception_ptr uv_failure(const std::string& path, int code) {
  return std::make_exception_ptr(io_error(path, detail::uv_words(code), code));
}

// pread of [off, off + len) into dst, in calls of at most detail::max_bytes_per_call: the bytes
// read, fewer at the file's end; *err = errno when a call failed.
std::size_t pread_range(int fd, std::byte* dst, std::size_t len, std::uint64_t off, int* err) {
  const std::uint64_t most = detail::max_bytes_per_call.load(std::memory_order_relaxed);
  std::size_t done = 0;
  *err = 0;
  while (done < len) {
    const std::size_t n = std::size_t(std::min<std::uint64_t>(len - done, most));
    const ssize_t r = ::pread(fd, dst + done, n, off_t(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) *err = errno;
    if (r <= 0) break;
    done += std::size_t(r);
  }
  return done;
}

// Shared with the pool's listener: a release may still be running the listener after the reader
// has gone, so the listener holds this, not the reader.
struct waker {
  std::mutex mu;
  uv_async_t* async = nullptr;
  void wake() {
    std::lock_guard lk(mu);
    if (async) uv_async_send(async);
  }
};

}  // namespace

struct input_state;
struct read_op;

// Whether the file opened (dev, ino) is not the one the job's stat found (want_dev, want_ino; 0, 0:
// not known), renamed over since: its size and content would not go together.
constexpr const char* replaced_reason = "was replaced during the job";
static bool replaced(std::uint64_t want_dev, std::uint64_t want_ino, std::uint64_t dev,
                     std::uint64_t ino) {
  return (want_dev || want_ino) && (want_dev != dev || want_ino != ino);
}

// The most bytes one read of a file of a pseudo file system asks for (source::read_to_end).
constexpr std::size_t pseudo_read_max = std::size_t{1} << 20;

// stat + open of up to open_group_max consecutive inputs in one thread-pool job (see
// submit_stat_open): one trip through the pool for several small files.
constexpr std::size_t open_group_max = 8;
struct open_group {
  uv_work_t work;
  reader::impl* self = nullptr;
  std::vector<input_state*> members;
};
// Single-chunk reads of up to read_batch_max consecutive small inputs in one thread-pool job (see
// issue_batch).
constexpr std::size_t read_batch_max = 8;
struct read_batch {
  uv_work_t work;
  reader::impl* self = nullptr;
  std::vector<read_op*> ops;
};

// Thread-pool jobs of one kind (open_group, read_batch), kept for reuse: all of them, in flight or
// not, and the free ones.
template <class Job>
struct job_pool {
  std::vector<std::unique_ptr<Job>> all;
  std::vector<Job*> free;
  Job& take() {
    if (free.empty()) {
      all.push_back(std::make_unique<Job>());
      return *all.back();
    }
    Job* j = free.back();
    free.pop_back();
    return *j;
  }
  void give(Job& j) { free.push_back(&j); }
};

// One piece of a positional chunk read in pieces (reader_config::piece_bytes), its own request.
struct read_piece {
  uv_fs_t req;
  read_op* op = nullptr;
  std::uint64_t pos = 0, end = 0;  // region offsets: read up to, target (exclusive)
  bool busy = false;               // a request in flight
};

struct read_op {  // one positional chunk read (several uv_fs_read calls when reads come up short)
  uv_fs_t req;
  reader::impl* self = nullptr;
  input_state* in = nullptr;
  unsigned slot = 0;
  std::byte* base = nullptr;
  chunk_info info;
  std::uint64_t r0 = 0;   // region offset of slot byte 0
  std::uint64_t pos = 0;  // region offset read up to
  std::uint64_t end = 0;  // read target (exclusive)
  // lines framing
  std::uint64_t a = 0, b = 0, max_end = 0, s = 0, e_end = 0, search_from = 0;
  bool s_known = false, owns_nothing = false;
  std::size_t step = 0;
  std::uint64_t t_begin = 0;  // steady_clock ns of the first request
  // Read in pieces (req unused), pieces_busy of them in flight; sized before any is submitted,
  // so that their requests stay where libuv holds them.
  std::vector<read_piece> pieces;
  unsigned pieces_busy = 0;
  // In a read_batch: read by its job (no uv_fs_t in flight), which then closed the file
  // (w_closed: the input had no other chunk); w_error is its negative errno.
  bool batched = false;
  bool w_closed = false;
  int w_error = 0;
};

struct input_state {
  enum class state { opening, ready, failed, reopen };
  std::size_t index = 0;
  const source* src = nullptr;
  framing fr;
  reader::impl* self = nullptr;
  uv_fs_t req;  // open (FIFOs, devices) and sequential reads: one at a time
  bool req_busy = false;
  // Sequential reads of a pipe, FIFO, socket or terminal (pollable) wait in poll() beside the
  // reader's cancel event rather than in a read: no data may ever come, and a cancelled job must
  // not wait for it. Such a read runs as poll_req (req_busy covers it too).
  bool pollable = false;
  // A pipe, FIFO or socket: one read takes what is there (a pipe's buffer, 64 KiB by default),
  // and what else is there already goes into the same slot with further reads, so that a chunk
  // costs one hand-off between threads, not one per 64 KiB. Not a terminal: its end of file is
  // one read's 0, which a further read would take and lose.
  bool gather = false;
  // A read error one of those further reads met: the next read's result, not lost (a socket
  // reports its error once, then reads as ended).
  std::int64_t deferred = 0;
  uv_work_t poll_req;
  std::byte* poll_dst = nullptr;
  std::size_t poll_len = 0;
  std::int64_t poll_result = 0;
  // stat + open of a regular file in an open_group's trip through the thread pool
  bool work_busy = false;
  int w_error = 0;  // negative errno of stat/open/fstat
  unsigned w_mode = 0;
  std::uint64_t w_size = 0;
  std::uint64_t w_dev = 0, w_ino = 0;
  int w_fd = -1;
  bool reopening = false;
  state st = state::opening;
  std::exception_ptr err;
  uv_file fd = -1;
  bool owns_fd = true;
  bool unopened = false;  // one chunk, delivered for its consumer to open (chunk::unopened)
  bool sequential = false;
  bool issue_done = false;
  unsigned inflight = 0;  // positional reads in flight
  // positional
  std::uint64_t region = 0, chunk_bytes = 0, n_chunks = 0, next_chunk = 0;
  // sequential
  struct {
    std::uint64_t skip_left = 0;
    std::optional<std::uint64_t> remaining;
    std::vector<std::byte> scratch, carry;
    bool has_slot = false, eof = false, probing = false, probe_done = false;
    unsigned slot = 0;
    std::byte* base = nullptr;
    std::size_t have = 0, target = 0, ready_len = 0, probe_n = 0;
    std::uint64_t index = 0, offset = 0;
    std::uint64_t t_begin = 0;  // steady_clock ns when the chunk's slot was taken
  } q;
};

struct reader::impl {
  std::vector<source> inputs;
  std::function<framing(std::size_t)> frame;
  slot_pool& pool;
  reader_config cfg;

  std::function<void(chunk)> on_chunk;
  std::function<void(std::exception_ptr)> on_done;

  uv_loop_t loop;
  uv_async_t async;
  std::shared_ptr<waker> wk = std::make_shared<waker>();
  std::thread thread;
  bool started = false;

  std::atomic<bool> cancel_requested{false};
  std::atomic<std::uint64_t> retired{0};
  // Readable once the job is cancelled or has failed: wakes reads waiting in poll() (pollable).
  // Made with the reader, so that cancel() may write it from any thread at any time.
  int cancel_fd = ::eventfd(0, EFD_CLOEXEC);

  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  double loop_cpu = 0;  // CPU seconds of the loop thread, set when it ends (under done_mu)

  // Loop-thread state.
  std::exception_ptr error;
  bool finishing = false;
  bool cancels_sent = false;
  std::map<std::size_t, std::unique_ptr<input_state>> live;  // opened or opening, by input index
  std::size_t next_open = 0, cur = 0;
  std::uint64_t next_seq = 0;
  std::uint64_t charged = 0;  // chunks holding a slot or delivered (window accounting)
  unsigned active = 0;        // chunk reads in progress (max_inflight)
  std::size_t reqs = 0;       // uv requests pending
  std::vector<std::unique_ptr<read_op>> ops;
  std::vector<read_op*> free_ops;
  job_pool<open_group> groups;
  open_group* forming = nullptr;  // members gathered by open_ahead, not yet submitted
  job_pool<read_batch> batches;
  std::vector<std::pair<input_state*, unsigned>> batch_items;  // issue_batch's, kept for reuse
  std::size_t unopened_waiting = 0;  // live inputs to deliver unopened, not yet issued

  impl(std::vector<source> in, std::function<framing(std::size_t)> f, slot_pool& p, reader_config c)
      : inputs(std::move(in)), frame(std::move(f)), pool(p), cfg(c) {
    cfg.max_inflight = std::max(1u, cfg.max_inflight);
    cfg.max_open_files = std::max(1u, cfg.max_open_files);
    cfg.window = std::max<std::uint64_t>(1, cfg.window);
    if (cancel_fd < 0) {
      const int e = errno;
      throw io_error("", std::string("cannot make the reader's cancel event: ") + std::strerror(e),
                     uv_translate_sys_error(e));
    }
  }
  ~impl() {
    if (cancel_fd >= 0) ::close(cancel_fd);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void signal_cancel_fd() const {
    const std::uint64_t one = 1;
    (void)!::write(cancel_fd, &one, sizeof one);  // an eventfd's counter: cannot fill up here
  }

  void fail(std::exception_ptr e) {
    if (!error) error = std::move(e);
  }

  bool may_take_chunk() const {
    return active < cfg.max_inflight &&
           charged - retired.load(std::memory_order_acquire) < cfg.window;
  }

  // ---- opening -------------------------------------------------------------------------------

  void open_ahead() {
    while (!error && next_open < inputs.size() && live.size() < cfg.max_open_files) {
      auto st = std::make_unique<input_state>();
      input_state& in = *st;
      in.index = next_open;
      in.src = &inputs[next_open];
      in.self = this;
      live.emplace(next_open, std::move(st));
      ++next_open;
      try {
        in.fr = frame(in.index);
      } catch (...) {
        in.st = input_state::state::failed;
        in.err = std::current_exception();
        continue;
      }
      if (in.src->path == "-" || in.src->fd >= 0) {
        in.fd = in.src->fd >= 0 ? in.src->fd : 0;
        in.owns_fd = false;
        become_sequential(in);
        continue;
      }
      if (deliver_unopened(in)) continue;
      // stat first, open after: opening a FIFO ahead would block a thread-pool thread until its
      // writer comes (and an early open and close is visible to that writer). FIFOs and devices
      // are opened when they become current.
      add_stat_open(in);
    }
    submit_stat_open();
  }

  // A regular file (as the engine's stat just found) whose region is one chunk, while the lanes
  // read for themselves: ready at once, never opened here (chunk::unopened). Anything else, or an
  // input the stated size refuses (whose error the open path gives as before: a file that cannot
  // be opened says so first), goes the usual way.
  bool deliver_unopened(input_state& in) {
    if (!lane_reads_on() || !in.src->regular || in.src->read_to_end ||
        in.fr.kind == framing_kind::lines)
      return false;
    if (!setup_positional(in, in.src->size) || in.n_chunks != 1) {
      in.st = input_state::state::opening;
      in.err = nullptr;
      return false;
    }
    in.unopened = true;
    in.st = input_state::state::ready;
    ++unopened_waiting;
    return true;
  }

  bool lane_reads_on() const {
    return cfg.lane_reads && cfg.lane_reads->load(std::memory_order_relaxed);
  }

  // Lane reads switched off (GPU lanes joined: they want their chunks read ahead, many at once):
  // the inputs still waiting to be delivered unopened are opened and read here after all.
  void revoke_unopened() {
    if (unopened_waiting == 0 || lane_reads_on()) return;
    for (auto& [i, in] : live)
      if (in->unopened && in->next_chunk == 0) {
        in->unopened = false;
        add_stat_open(*in);
      }
    unopened_waiting = 0;
    submit_stat_open();
  }

  // Queues a job on libuv's thread pool: Work(job) there, then (this->*Done)(job, status) back on
  // the loop thread.
  template <class Job, void (*Work)(Job&), void (impl::*Done)(Job&, int)>
  int queue_job(Job& job) {
    job.work.data = &job;
    return uv_queue_work(
        &loop, &job.work, [](uv_work_t* w) { Work(*static_cast<Job*>(w->data)); },
        [](uv_work_t* w, int status) {
          auto& j = *static_cast<Job*>(w->data);
          (j.self->*Done)(j, status);
        });
  }

  // stat, then for a regular file open and fstat (the size of the file actually opened), in one
  // thread-pool job for up to open_group_max inputs: one trip per several small files instead of
  // two per file. FIFOs and devices are not opened here: opening a FIFO blocks until its writer
  // comes, and an early open and close is visible to that writer; they are opened when they
  // become current.
  void add_stat_open(input_state& in) {
    if (!forming) {
      forming = &groups.take();
      forming->self = this;
      forming->members.clear();
    }
    forming->members.push_back(&in);
    in.work_busy = true;
    in.st = input_state::state::opening;
    if (forming->members.size() == open_group_max) submit_stat_open();
  }

  static void stat_open_all(open_group& g) {
    for (input_state* in : g.members) stat_open_one(*in);
  }
  static void stat_open_one(input_state& in) {
    const char* path = in.src->path.c_str();
    struct stat sb {};
    if (in.src->regular) {
      // Known regular: open at once. Should it have become a FIFO since, O_NONBLOCK keeps the open
      // from waiting for a writer, and the FIFO stays open (blocking again) to be read in turn:
      // closing it would end a writer that had already opened its side.
      const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0 || ::fstat(fd, &sb) != 0) {
        in.w_error = -errno;
        if (fd >= 0) ::close(fd);
        return;
      }
      if (S_ISDIR(sb.st_mode)) {
        ::close(fd);
      } else {
        if (const int err = S_ISREG(sb.st_mode) ? 0 : make_blocking(fd)) {
          in.w_error = -err;
          ::close(fd);
          return;
        }
        in.w_fd = fd;
      }
      in.w_mode = sb.st_mode;
      in.w_size = static_cast<std::uint64_t>(sb.st_size);
      in.w_dev = static_cast<std::uint64_t>(sb.st_dev);
      in.w_ino = static_cast<std::uint64_t>(sb.st_ino);
      return;
    }
    if (::stat(path, &sb) != 0) {
      in.w_error = -errno;
      return;
    }
    if (S_ISREG(sb.st_mode)) {
      const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::fstat(fd, &sb) != 0) {
        in.w_error = -errno;
        if (fd >= 0) ::close(fd);
        return;
      }
      in.w_fd = fd;
    }
    in.w_mode = sb.st_mode;
    in.w_size = static_cast<std::uint64_t>(sb.st_size);
    in.w_dev = static_cast<std::uint64_t>(sb.st_dev);
    in.w_ino = static_cast<std::uint64_t>(sb.st_ino);
  }

  // Submits the group being formed, if any.
  void submit_stat_open() {
    open_group* g = forming;
    if (!g) return;
    forming = nullptr;
    const int rc = queue_job<open_group, &impl::stat_open_all, &impl::on_stat_open>(*g);
    if (rc < 0) {
      for (input_state* in : g->members) {
        in->work_busy = false;
        in->st = input_state::state::failed;
        in->err = uv_failure(in->src->path, rc);
      }
      g->members.clear();
      groups.give(*g);
      return;
    }
    ++reqs;
  }

  void submit_open(input_state& in, int flags) {
    in.req.data = &in;
    int rc = uv_fs_open(&loop, &in.req, in.src->path.c_str(), flags, 0, [](uv_fs_t* r) {
      auto* in = static_cast<input_state*>(r->data);
      in->self->on_open(*in);
    });
    if (rc < 0) {
      uv_fs_req_cleanup(&in.req);
      in.st = input_state::state::failed;
      in.err = uv_failure(in.src->path, rc);
      return;
    }
    in.req_busy = true;
    in.st = input_state::state::opening;
    ++reqs;
  }

  void on_open(input_state& in) {
    --reqs;
    in.req_busy = false;
    auto result = in.req.result;
    uv_fs_req_cleanup(&in.req);
    if (result < 0) {
      in.st = input_state::state::failed;
      in.err = uv_failure(in.src->path, int(result));
    } else {
      in.fd = uv_file(result);
      if (const int err = make_blocking(in.fd)) {
        in.st = input_state::state::failed;  // closed by finish() or retire
        in.err = uv_failure(in.src->path, uv_translate_sys_error(err));
      } else if (error) {
        in.st = input_state::state::failed;  // closed by finish()
      } else if (in.reopening) {
        become_sequential(in);
      } else {
        in.st = input_state::state::ready;
      }
    }
    pump();
  }

  void on_stat_open(open_group& g, int status) {
    --reqs;
    for (input_state* in : g.members) stat_opened(*in, status);
    g.members.clear();
    groups.give(g);
    pump();
  }

  void stat_opened(input_state& in, int status) {
    in.work_busy = false;
    const int fd = in.w_fd;
    in.w_fd = -1;
    const bool positional = S_ISREG(in.w_mode) && !(in.src->read_to_end && sequential_ok(in));
    // What the job's stat found holds for the file (source::regular): not where the stated size
    // is not the content (/proc, /sys).
    const bool stated = in.src->regular && !in.src->read_to_end;
    if (status < 0 || in.w_error < 0) {
      if (fd >= 0) ::close(fd);
      in.st = input_state::state::failed;
      in.err = uv_failure(in.src->path, status < 0 ? status : in.w_error);
    } else if (S_ISDIR(in.w_mode)) {
      in.st = input_state::state::failed;
      in.err = std::make_exception_ptr(io_error(in.src->path, "is a directory", UV_EISDIR));
    } else if (positional && stated && replaced(in.src->dev, in.src->ino, in.w_dev, in.w_ino)) {
      ::close(fd);
      in.st = input_state::state::failed;
      in.err = std::make_exception_ptr(io_error(in.src->path, replaced_reason, UV_EIO));
    } else if (positional) {
      in.fd = fd;  // closed with the input (retire_input_if_done, finish)
      // The chunks are cut from the size the job's stat found, else from the one seen here; a
      // file that shrinks later is an error at its read.
      if (!setup_positional(in, stated ? std::min(in.w_size, in.src->size) : in.w_size)) {
        // refused: the fd is closed when the input is retired
      } else if (error) {
        in.st = input_state::state::failed;  // closed by finish()
      } else {
        in.st = input_state::state::ready;
      }
    } else if (fd >= 0) {
      // A FIFO or device opened without a stat (source::regular, out of date), or a regular file
      // of /proc or /sys, read to its end rather than to its stated size (source::read_to_end).
      in.fd = fd;
      if (error)
        in.st = input_state::state::failed;  // closed by finish()
      else
        become_sequential(in);
    } else {
      in.st = input_state::state::reopen;  // FIFO, device: opened when it becomes current
    }
  }

  // The input is a whole file, read by records or lines (not one chunk per file, which is sized
  // from the file's size): it can be read as a stream.
  static bool sequential_ok(const input_state& in) {
    return in.fr.kind != framing_kind::whole_file && in.src->offset == 0 && !in.src->length;
  }

  // Slot-size requirements; a usage_error when the pool cannot hold a chunk.
  bool check_slots(input_state& in, std::uint64_t need) {
    if (pool.slot_bytes() >= need) return true;
    in.st = input_state::state::failed;
    in.err = std::make_exception_ptr(usage_error("slots of " + num(pool.slot_bytes()) +
                                                 " bytes cannot hold a chunk of " + in.src->path +
                                                 " (" + num(need) + " bytes needed)"));
    return false;
  }

  std::uint64_t nominal_chunk(const framing& fr) const {
    return io::nominal_chunk(fr, cfg.chunk_size);
  }

  std::uint64_t slot_need(const framing& fr) const {
    std::uint64_t c = nominal_chunk(fr);
    return fr.kind == framing_kind::lines ? c + fr.max_record + 1 : c;
  }

  bool framing_valid(input_state& in) {
    if (in.fr.kind == framing_kind::records && in.fr.record_size == 0) {
      in.st = input_state::state::failed;
      in.err = std::make_exception_ptr(usage_error("a record size of 0 bytes"));
      return false;
    }
    return check_slots(in, slot_need(in.fr));
  }

  // False when the input is refused.
  bool setup_positional(input_state& in, std::uint64_t size) {
    const auto& path = in.src->path;
    auto bad = [&](std::string reason) {
      in.st = input_state::state::failed;
      in.err = std::make_exception_ptr(input_error(path, std::move(reason)));
      return false;
    };
    std::uint64_t off = in.src->offset;
    if (off > size)
      return bad("the data region starts at byte " + num(off) + ", beyond the end of the file (" +
                 num(size) + " bytes)");
    if (in.src->length && *in.src->length > size - off)
      return bad("the data region (" + num(*in.src->length) + " bytes from byte " + num(off) +
                 ") goes beyond the end of the file (" + num(size) + " bytes)");
    if (in.fr.kind == framing_kind::records && in.fr.record_size == 0) {
      in.st = input_state::state::failed;
      in.err = std::make_exception_ptr(usage_error("a record size of 0 bytes"));
      return false;
    }
    in.region = in.src->length ? *in.src->length : size - off;
    // A file smaller than a chunk needs a slot of its own size only (the pool may have been sized
    // for a job of small files); lines framing reads past a chunk, so it needs the full slot.
    std::uint64_t need = slot_need(in.fr);
    if (in.fr.kind != framing_kind::lines) need = std::min<std::uint64_t>(need, in.region);
    if (!check_slots(in, need)) return false;
    in.chunk_bytes = nominal_chunk(in.fr);
    if (in.fr.kind == framing_kind::records && in.region % in.fr.record_size != 0)
      return bad("size " + num(in.region) + " is not a multiple of the record size " +
                 num(in.fr.record_size));
    if (in.fr.kind == framing_kind::whole_file) {
      if (in.region > cfg.chunk_size)
        return bad("larger than the chunk size (" + num(cfg.chunk_size) +
                   " bytes); raise --chunk-size");
      in.chunk_bytes = std::max<std::uint64_t>(1, in.region);
    }
    in.n_chunks = (in.region + in.chunk_bytes - 1) / in.chunk_bytes;
    in.sequential = false;
    return true;
  }

  void become_sequential(input_state& in) {
    in.sequential = true;
    in.reopening = false;
    struct stat sb {};
    in.pollable = in.fd >= 0 && ::fstat(in.fd, &sb) == 0 &&
                  (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode) || S_ISCHR(sb.st_mode));
    in.gather = in.pollable && !S_ISCHR(sb.st_mode);
    if (!framing_valid(in)) return;
    in.q.skip_left = in.src->offset;
    in.q.remaining = in.src->length;
    in.st = input_state::state::ready;
  }

  void close_fd(input_state& in) {
    if (in.fd >= 0 && in.owns_fd) {
      uv_fs_t r;
      uv_fs_close(&loop, &r, in.fd, nullptr);  // synchronous: cheap for files opened read-only
      uv_fs_req_cleanup(&r);
    }
    in.fd = -1;
  }

  // Closes and forgets an input once nothing more will be issued for it and nothing is pending.
  void retire_input_if_done(input_state& in) {
    if (!in.issue_done || in.inflight > 0 || in.req_busy || in.work_busy || in.q.has_slot) return;
    close_fd(in);
    live.erase(in.index);
  }

  // ---- positional reads ----------------------------------------------------------------------

  // The next chunk of `in` into `slot`: its op, counted in flight, not yet submitted.
  read_op& prepare_chunk(input_state& in, unsigned slot) {
    if (ops.size() < cfg.max_inflight && free_ops.empty()) {
      ops.push_back(std::make_unique<read_op>());
      free_ops.push_back(ops.back().get());
    }
    read_op* op = free_ops.back();
    free_ops.pop_back();
    *op = read_op{};
    op->self = this;
    op->in = &in;
    op->slot = slot;
    op->base = pool.data(slot);
    std::uint64_t k = in.next_chunk++;
    std::uint64_t a = k * in.chunk_bytes;
    std::uint64_t b = std::min(a + in.chunk_bytes, in.region);
    op->info.input = in.index;
    op->info.seq = next_seq++;
    op->info.index = k;
    op->info.offset = a;
    op->info.last = k + 1 == in.n_chunks;
    op->a = a;
    op->b = b;
    if (in.fr.kind == framing_kind::lines) {
      op->r0 = a == 0 ? 0 : a - 1;
      op->max_end = std::min<std::uint64_t>(b + in.fr.max_record, in.region);
      op->step = std::min<std::size_t>(in.fr.max_record, lines_first_ext);
      op->end = std::min<std::uint64_t>(b + op->step, op->max_end);
      op->search_from = b == 0 ? 0 : b - 1;
    } else {
      op->r0 = a;
      op->end = b;
    }
    op->pos = op->r0;
    op->t_begin = steady_ns();
    ++charged;
    ++active;
    ++in.inflight;
    if (in.next_chunk == in.n_chunks) in.issue_done = true;
    return *op;
  }

  void issue_chunk(input_state& in, unsigned slot) {
    read_op& op = prepare_chunk(in, slot);
    if (lane_read(in, op)) return;
    if (in.fr.kind != framing_kind::lines && cfg.piece_bytes > 0 &&
        op.end - op.pos >= 2 * cfg.piece_bytes) {
      submit_pieces(op);
      return;
    }
    if (!submit_read(op)) end_op(op, true);
  }

  // Delivers op's chunk unread (reader_config::lane_reads) with a descriptor of its own, so that
  // the input's may close before the consumer reads, or unopened (the input's only chunk, whatever
  // lane_reads says now: the reader has no descriptor for it). False: read it here as usual.
  bool lane_read(input_state& in, read_op& op) {
    int fd = -1;
    if (!in.unopened) {
      if (!lane_reads_on() || in.fr.kind != framing_kind::records || in.sequential ||
          op.end - op.a < cfg.lane_read_min)
        return false;
      fd = ::fcntl(in.fd, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) return false;  // out of descriptors: the reader reads it
    } else {
      --unopened_waiting;
    }
    chunk c{op.slot, op.base, op.info, op.t_begin, op.t_begin};
    c.info.size = std::size_t(op.end - op.a);
    c.read_fd = fd;
    c.read_offset = in.src->offset + op.a;
    c.unopened = in.unopened;
    if (in.unopened) {
      c.file_dev = in.src->dev;
      c.file_ino = in.src->ino;
    }
    c.windowed = !in.unopened;
    // pump(), our caller, goes on with the input: with its last chunk issued, it moves to the
    // next input and retires this one.
    end_op(op, false, false);
    deliver(c);
    return true;
  }

  // Whether in's chunks may share a mapped window with chunks delivered unread (chunk::windowed):
  // positional records framing of several chunks while lane reads may happen. One chunk alone
  // is either delivered unread (and windowed) or read here (and no window holds it).
  bool windowed(const input_state& in) const {
    return cfg.lane_reads && in.fr.kind == framing_kind::records && !in.sequential &&
           in.n_chunks > 1;
  }

  // A small input read whole by one positional read (one chunk, not lines framing): it may share
  // a thread-pool job with the inputs after it (many small files: one trip per several files,
  // where a trip costs about as much as copying 64 KiB). Larger ones keep a job each, so that
  // their copies run on several threads at once.
  static bool single_read(const input_state& in) {
    return in.st == input_state::state::ready && !in.sequential && !in.unopened &&
           in.n_chunks == 1 && in.next_chunk == 0 && in.fr.kind != framing_kind::lines &&
           in.region <= batched_read_max;
  }

  // Inputs per read_batch: half the reads in flight, so that two jobs can run at once.
  std::size_t batch_most() const {
    return std::min<std::size_t>(read_batch_max, std::max(1u, cfg.max_inflight / 2));
  }

  // `first` (the current input, single_read, its slot taken) and the single_read inputs right
  // after it, as far as slots, reads in flight and the window allow, in one job.
  void issue_batch(input_state& first, unsigned slot) {
    const std::size_t most = batch_most();
    auto& items = batch_items;  // reused: no allocation per batch
    items.assign(1, {&first, slot});
    for (std::size_t j = first.index + 1; items.size() < most && j < inputs.size(); ++j) {
      auto it = live.find(j);
      if (it == live.end() || !single_read(*it->second)) break;
      if (active + items.size() >= cfg.max_inflight ||
          charged + items.size() - retired.load(std::memory_order_acquire) >= cfg.window)
        break;
      auto s = pool.try_acquire();
      if (!s) break;
      items.emplace_back(it->second.get(), *s);
    }
    if (items.size() == 1) return issue_chunk(first, slot);
    read_batch* b = &batches.take();
    b->self = this;
    b->ops.clear();
    for (auto [in, s] : items) {
      read_op& op = prepare_chunk(*in, s);
      op.batched = true;
      b->ops.push_back(&op);
    }
    detail::batched_reads.fetch_add(items.size(), std::memory_order_relaxed);
    const int rc = queue_job<read_batch, &impl::read_all, &impl::on_batch_read>(*b);
    if (rc < 0) {
      fail(uv_failure(first.src->path, rc));
      for (read_op* op : b->ops) end_op(*op, true);
      b->ops.clear();
      batches.give(*b);
      return;
    }
    ++reqs;
  }

  // On a thread-pool thread: op's range with pread, in calls of at most max_bytes_per_call;
  // then the file is closed here rather than on the loop thread (it has no other chunk).
  static void read_all(read_batch& b) {
    for (read_op* op : b.ops) read_whole(*op);
  }
  static void read_whole(read_op& op) {
    read_range(op);
    if (op.in->owns_fd) {
      ::close(op.in->fd);
      op.w_closed = true;
    }
  }
  static void read_range(read_op& op) {  // a file that shrank leaves pos < end
    int err = 0;
    op.pos += pread_range(op.in->fd, op.base + (op.pos - op.r0), std::size_t(op.end - op.pos),
                          op.in->src->offset + op.pos, &err);
    if (err) op.w_error = -err;
  }

  void on_batch_read(read_batch& b, int status) {
    --reqs;
    for (read_op* op : b.ops) {
      if (op->w_closed) op->in->fd = -1;
      const std::string& path = op->in->src->path;
      if (status < 0) {
        if (status != UV_ECANCELED || !error) fail(uv_failure(path, status));
      } else if (!error) {
        if (op->w_error < 0)
          fail(uv_failure(path, op->w_error));
        else if (op->pos < op->end)
          fail(detail::shrank(path));
      }
      if (error) {
        end_op(*op, true);
        continue;
      }
      chunk c{op->slot, op->base, op->info, op->t_begin, steady_ns()};
      c.info.size = std::size_t(op->end - op->a);
      end_op(*op, false);
      deliver(c);
    }
    b.ops.clear();
    batches.give(b);
    pump();
  }

  // False (and the job's error set) when libuv refused the request.
  bool submit_read(read_op& op) {
    uv_buf_t buf;
    buf.base = reinterpret_cast<char*>(op.base + (op.pos - op.r0));
    buf.len = std::min<std::uint64_t>(op.end - op.pos,
                                      detail::max_bytes_per_call.load(std::memory_order_relaxed));
    op.req.data = &op;
    std::int64_t file_off = std::int64_t(op.in->src->offset + op.pos);
    int rc = uv_fs_read(&loop, &op.req, op.in->fd, &buf, 1, file_off, [](uv_fs_t* r) {
      auto* op = static_cast<read_op*>(r->data);
      op->self->on_chunk_read(*op);
    });
    if (rc < 0) {
      uv_fs_req_cleanup(&op.req);
      fail(uv_failure(op.in->src->path, rc));
      return false;
    }
    ++reqs;
    return true;
  }

  // op's range in pieces of cfg.piece_bytes, all submitted at once; the last to finish delivers
  // the chunk (on_piece_read), or ends the op when a read failed.
  void submit_pieces(read_op& op) {
    detail::pieced_reads.fetch_add(1, std::memory_order_relaxed);
    op.pieces.resize((op.end - op.pos + cfg.piece_bytes - 1) / cfg.piece_bytes);
    for (std::size_t k = 0; k < op.pieces.size(); ++k) {
      read_piece& p = op.pieces[k];
      p.op = &op;
      p.pos = op.pos + k * cfg.piece_bytes;
      p.end = std::min(op.end, p.pos + cfg.piece_bytes);
    }
    for (read_piece& p : op.pieces)
      if (!submit_piece(p)) break;  // the error is set: the pieces in flight end the op
    if (op.pieces_busy == 0) end_op(op, true);
  }

  // False (and the job's error set) when libuv refused the request.
  bool submit_piece(read_piece& p) {
    read_op& op = *p.op;
    uv_buf_t buf;
    buf.base = reinterpret_cast<char*>(op.base + (p.pos - op.r0));
    buf.len = std::min<std::uint64_t>(p.end - p.pos,
                                      detail::max_bytes_per_call.load(std::memory_order_relaxed));
    p.req.data = &p;
    const int rc = uv_fs_read(&loop, &p.req, op.in->fd, &buf, 1,
                              std::int64_t(op.in->src->offset + p.pos), [](uv_fs_t* r) {
                                auto* piece = static_cast<read_piece*>(r->data);
                                piece->op->self->on_piece_read(*piece);
                              });
    if (rc < 0) {
      uv_fs_req_cleanup(&p.req);
      fail(uv_failure(op.in->src->path, rc));
      return false;
    }
    ++reqs;
    ++op.pieces_busy;
    p.busy = true;
    return true;
  }

  void on_piece_read(read_piece& p) {
    --reqs;
    read_op& op = *p.op;
    --op.pieces_busy;
    p.busy = false;
    const auto result = p.req.result;
    uv_fs_req_cleanup(&p.req);
    take_result(result, op, p.pos);
    if (!error && p.pos < p.end && submit_piece(p)) return;  // a short read: read on
    if (op.pieces_busy > 0) return;                          // the last piece ends the op
    if (error) {
      end_op(op, true);
      pump();
      return;
    }
    op.pos = op.end;
    deliver_read(op);
  }

  // The op is over: its slot goes back to the pool unless it was delivered. Its input is retired
  // if nothing more is to come from it, unless pump() is the caller (which goes on with it).
  void end_op(read_op& op, bool release_slot, bool retire_input = true) {
    input_state& in = *op.in;
    --active;
    --in.inflight;
    if (release_slot) {
      --charged;
      pool.release(op.slot);
    }
    free_ops.push_back(&op);
    if (retire_input) retire_input_if_done(in);
  }

  // A positional read's result: the bytes read, added to pos, or the job's error (the read's
  // failure, or nothing read before the end: the file shrank).
  void take_result(std::int64_t result, const read_op& op, std::uint64_t& pos) {
    const std::string& path = op.in->src->path;
    if (result < 0) {
      if (result != UV_ECANCELED || !error) fail(uv_failure(path, int(result)));
    } else if (!error) {
      if (result == 0)
        fail(detail::shrank(path));
      else
        pos += std::uint64_t(result);
    }
  }

  // op's chunk, read whole, to the consumer; op is over.
  void deliver_read(read_op& op) {
    chunk c{op.slot, op.base, op.info, op.t_begin, steady_ns()};
    c.info.size = std::size_t(op.end - op.a);
    c.windowed = windowed(*op.in);
    if (op.in->fr.kind == framing_kind::lines) {
      if (op.owns_nothing) {
        c.info.size = 0;
      } else {
        c.data = op.base + (op.s - op.r0);
        c.info.offset = op.s;
        c.info.size = std::size_t(op.e_end - op.s);
      }
    }
    end_op(op, false);
    deliver(c);
    pump();
  }

  void on_chunk_read(read_op& op) {
    --reqs;
    const auto result = op.req.result;
    uv_fs_req_cleanup(&op.req);
    take_result(result, op, op.pos);
    if (error) {
      end_op(op, true);
      pump();
      return;
    }
    // A short read: read on. Lines framing past op.end: lines_done finds the records, or submits
    // a read further (it then raised op.end, so that op.pos < op.end must not be asked again: a
    // second read on the same request crashed). Either, unless it failed.
    const bool short_read = op.pos < op.end;
    if (short_read || (op.in->fr.kind == framing_kind::lines && !lines_done(op))) {
      if (short_read && !error && submit_read(op)) return;
      if (!short_read && !error) return;  // lines_done submitted an extension
      end_op(op, true);
      pump();
      return;
    }
    deliver_read(op);
  }

  // Lines framing after a read reached op.end: find the chunk's first record and the end of its
  // last, reading further when needed. False when a read was submitted or an error was raised.
  bool lines_done(read_op& op) {
    const std::byte* d = op.base;
    auto at = [&](std::uint64_t region_off) { return d + (region_off - op.r0); };
    if (!op.s_known) {
      op.s_known = true;
      if (op.a == 0) {
        op.s = 0;
      } else {
        // positions a-1 .. b-2: a '\n' there starts a record in [a, b)
        const void* q = std::memchr(at(op.a - 1), '\n', std::size_t(op.b - op.a));
        if (!q) {
          op.owns_nothing = true;
          return true;
        }
        op.s = op.r0 + std::uint64_t(static_cast<const std::byte*>(q) - d) + 1;
      }
    }
    const void* q = std::memchr(at(op.search_from), '\n', std::size_t(op.pos - op.search_from));
    if (q) {
      op.e_end = op.r0 + std::uint64_t(static_cast<const std::byte*>(q) - d) + 1;
    } else if (op.pos == op.in->region) {
      op.e_end = op.pos;
    } else if (op.pos >= op.max_end) {
      fail(line_too_long(op.in->src->path, op.in->fr.max_record));
      return false;
    } else {
      op.search_from = op.pos;
      op.step *= 2;
      op.end = std::min<std::uint64_t>(op.pos + op.step, op.max_end);
      submit_read(op);  // on failure the error is set and the caller ends the op
      return false;
    }
    if (!lines_within(at(op.s), std::size_t(op.e_end - op.s), op.in->fr.max_record)) {
      fail(line_too_long(op.in->src->path, op.in->fr.max_record));
      return false;
    }
    return true;
  }

  // ---- sequential reads ----------------------------------------------------------------------

  void submit_seq_read(input_state& in, std::byte* dst, std::size_t len) {
    uv_buf_t buf;
    buf.base = reinterpret_cast<char*>(dst);
    buf.len = std::min(len, detail::max_bytes_per_call.load(std::memory_order_relaxed));
    // A file of /proc or /sys makes its content for the read: /proc/sys refuses a read of 4 MiB
    // or more (ENOMEM, Linux 6.18), the default chunk size of CPU lanes alone.
    if (in.src->read_to_end) buf.len = std::min(buf.len, pseudo_read_max);
    int rc = 0;
    if (in.pollable) {
      in.poll_dst = dst;
      in.poll_len = buf.len;
      in.poll_req.data = &in;
      rc = uv_queue_work(
          &loop, &in.poll_req,
          [](uv_work_t* w) {
            auto* in = static_cast<input_state*>(w->data);
            // -ECANCELED once cancel_fd is signalled: libuv's UV_ECANCELED on Linux
            static_assert(UV_ECANCELED == -ECANCELED);
            if (in->deferred != 0) {
              in->poll_result = std::exchange(in->deferred, 0);
              return;
            }
            std::int64_t got =
                io::poll_read(in->fd, in->poll_dst, in->poll_len, in->self->cancel_fd, -1);
            // Then without waiting: a read that finds nothing (or the end) ends the gathering; an
            // error is kept for the next read, after the bytes before it.
            while (in->gather && got > 0 && std::size_t(got) < in->poll_len) {
              const std::int64_t more =
                  io::poll_read(in->fd, in->poll_dst + got, in->poll_len - std::size_t(got), -1, 0);
              if (more < 0 && more != -ETIMEDOUT) in->deferred = more;
              if (more <= 0) break;
              got += more;
            }
            in->poll_result = got;
          },
          [](uv_work_t* w, int status) {
            auto* in = static_cast<input_state*>(w->data);
            in->self->on_seq_read(*in, status < 0 ? status : in->poll_result);
          });
    } else {
      in.req.data = &in;
      rc = uv_fs_read(&loop, &in.req, in.fd, &buf, 1, -1, [](uv_fs_t* r) {
        auto* in = static_cast<input_state*>(r->data);
        const auto result = r->result;
        uv_fs_req_cleanup(r);
        in->self->on_seq_read(*in, result);
      });
      if (rc < 0) uv_fs_req_cleanup(&in.req);
    }
    if (rc < 0) {
      fail(uv_failure(in.src->path, rc));
      return;
    }
    in.req_busy = true;
    ++reqs;
  }

  void release_seq_slot(input_state& in) {
    if (!in.q.has_slot) return;
    in.q.has_slot = false;
    --active;
    --charged;
    pool.release(in.q.slot);
  }

  void on_seq_read(input_state& in, std::int64_t result) {
    --reqs;
    in.req_busy = false;
    auto& q = in.q;
    const std::string& path = in.src->path;
    if (result == UV_ECANCELED && cancel_requested.load(std::memory_order_acquire)) {
      fail(std::make_exception_ptr(cancelled()));  // cancel() woke the poll before pump() ran
    } else if (result < 0) {
      if (result != UV_ECANCELED || !error) fail(uv_failure(path, int(result)));
    } else if (!error) {
      std::size_t n = std::size_t(result);
      if (q.remaining && q.skip_left == 0) *q.remaining -= n;
      if (n == 0 && q.skip_left == 0 && q.remaining && *q.remaining > 0) {
        fail(std::make_exception_ptr(input_error(
            path, "the input ended before the end of its data region (" + num(*in.src->length) +
                      " bytes from byte " + num(in.src->offset) + ")")));
      } else if (q.skip_left > 0) {
        if (n == 0)
          fail(std::make_exception_ptr(input_error(path, "the data region starts at byte " +
                                                             num(in.src->offset) +
                                                             ", beyond the end of the input")));
        q.skip_left -= n;
      } else if (q.probing) {
        q.probing = false;
        q.probe_done = true;
        q.probe_n = n;
      } else if (n == 0) {
        q.eof = true;
      } else {
        q.have += n;
      }
    }
    if (error) {
      release_seq_slot(in);
      retire_input_if_done(in);
    }
    pump();
  }

  void deliver_seq(input_state& in, std::size_t len, bool last) {
    auto& q = in.q;
    chunk c{q.slot, q.base, {}, q.t_begin, steady_ns()};
    c.info.input = in.index;
    c.info.seq = next_seq++;
    c.info.index = q.index++;
    c.info.offset = q.offset;
    c.info.size = len;
    c.info.last = last;
    q.offset += len;
    q.has_slot = false;
    --active;
    deliver(c);
  }

  // Drives the current sequential input as far as it can go without waiting. True when the input
  // is finished.
  bool seq_advance(input_state& in) {
    auto& q = in.q;
    const framing& fr = in.fr;
    const std::string& path = in.src->path;
    if (q.scratch.empty())
      q.scratch.resize(std::min<std::uint64_t>(probe_bytes, nominal_chunk(fr)));
    for (;;) {
      if (error || in.req_busy) return false;
      if (q.skip_left > 0) {
        submit_seq_read(in, q.scratch.data(),
                        std::min<std::uint64_t>(q.skip_left, q.scratch.size()));
        return false;
      }
      if (q.probe_done) {
        q.probe_done = false;
        if (q.probe_n == 0) {
          q.eof = true;
          deliver_seq(in, q.ready_len, true);
          in.issue_done = true;
          return true;
        }
        if (fr.kind == framing_kind::whole_file) {
          fail(std::make_exception_ptr(input_error(path, "larger than the chunk size (" +
                                                             num(cfg.chunk_size) +
                                                             " bytes); raise --chunk-size")));
          release_seq_slot(in);
          return false;
        }
        q.carry.assign(q.scratch.begin(), q.scratch.begin() + std::ptrdiff_t(q.probe_n));
        deliver_seq(in, q.ready_len, false);
        continue;
      }
      if (!q.has_slot) {
        if (q.eof && q.carry.empty()) {
          in.issue_done = true;
          return true;
        }
        if (!may_take_chunk()) return false;
        auto s = pool.try_acquire();
        if (!s) return false;
        q.has_slot = true;
        q.t_begin = steady_ns();
        q.slot = *s;
        q.base = pool.data(*s);
        ++charged;
        ++active;
        if (!q.carry.empty()) std::memcpy(q.base, q.carry.data(), q.carry.size());
        q.have = q.carry.size();
        q.carry.clear();
        q.target = std::max<std::size_t>(std::size_t(nominal_chunk(fr)), q.have);
      }
      if (q.eof) {
        std::uint64_t total = q.offset + q.have;
        if (q.have == 0) {
          release_seq_slot(in);
        } else if (fr.kind == framing_kind::records && total % fr.record_size != 0) {
          fail(std::make_exception_ptr(
              input_error(path, "size " + num(total) + " is not a multiple of the record size " +
                                    num(fr.record_size))));
          release_seq_slot(in);
          return false;
        } else if (fr.kind == framing_kind::lines && !lines_within(q.base, q.have, fr.max_record)) {
          fail(line_too_long(path, fr.max_record));
          release_seq_slot(in);
          return false;
        } else {
          deliver_seq(in, q.have, true);
        }
        in.issue_done = true;
        return true;
      }
      if (q.have < q.target) {
        std::size_t want = q.target - q.have;
        if (q.remaining) {
          if (*q.remaining == 0) {
            q.eof = true;
            continue;
          }
          want = std::size_t(std::min<std::uint64_t>(want, *q.remaining));
        }
        submit_seq_read(in, q.base + q.have, want);
        return false;
      }
      // The slot is full: cut the chunk.
      q.ready_len = q.have;
      if (fr.kind == framing_kind::lines) {
        const void* nl = ::memrchr(q.base, '\n', q.have);
        if (!nl) {
          if (q.have > fr.max_record) {
            fail(line_too_long(path, fr.max_record));
            release_seq_slot(in);
            return false;
          }
          q.target = fr.max_record + 1;  // one line so far: let it grow to its limit
          continue;
        }
        std::size_t cut = std::size_t(static_cast<const std::byte*>(nl) - q.base) + 1;
        std::size_t tail = q.have - cut;
        if (tail > fr.max_record || !lines_within(q.base, cut, fr.max_record)) {
          fail(line_too_long(path, fr.max_record));
          release_seq_slot(in);
          return false;
        }
        q.ready_len = cut;
        if (tail > 0) {
          q.carry.assign(q.base + cut, q.base + q.have);
          deliver_seq(in, cut, false);
          continue;
        }
      }
      // Read a little ahead to learn whether this chunk is the last one.
      if (q.remaining && *q.remaining == 0) {
        q.probe_done = true;
        q.probe_n = 0;
        continue;
      }
      std::size_t want = q.scratch.size();
      if (q.remaining) want = std::size_t(std::min<std::uint64_t>(want, *q.remaining));
      q.probing = true;
      submit_seq_read(in, q.scratch.data(), want);
      return false;
    }
  }

  // ---- delivery, pumping, finishing ----------------------------------------------------------

  void deliver(chunk c) {
    try {
      on_chunk(c);
    } catch (...) {
      fail(std::current_exception());
      drop_chunk(c);
      --charged;
      try {
        pool.release(c.slot);
      } catch (...) {  // the callback released it before throwing
      }
    }
  }

  void cancel_pending() {
    if (cancels_sent) return;
    cancels_sent = true;
    // uv_cancel succeeds only for requests still queued; running ones finish normally.
    for (auto& op : ops)
      if (!op->batched && std::find(free_ops.begin(), free_ops.end(), op.get()) == free_ops.end()) {
        if (op->pieces.empty()) uv_cancel(reinterpret_cast<uv_req_t*>(&op->req));
        for (read_piece& p : op->pieces)
          if (p.busy) uv_cancel(reinterpret_cast<uv_req_t*>(&p.req));
      }
    for (auto& b : batches.all)
      if (!b->ops.empty()) uv_cancel(reinterpret_cast<uv_req_t*>(&b->work));
    for (auto& [i, in] : live) {
      if (in->req_busy)
        uv_cancel(in->pollable && in->sequential ? reinterpret_cast<uv_req_t*>(&in->poll_req)
                                                 : reinterpret_cast<uv_req_t*>(&in->req));
    }
    signal_cancel_fd();  // reads of pipes and terminals waiting in poll() (poll_read)
    for (auto& g : groups.all)
      if (!g->members.empty()) uv_cancel(reinterpret_cast<uv_req_t*>(&g->work));
    for (auto it = live.begin(); it != live.end();) {
      input_state& in = *(it++)->second;
      if (!in.req_busy) release_seq_slot(in);
    }
  }

  void pump() {
    if (finishing) return;
    if (cancel_requested.load(std::memory_order_acquire))
      fail(std::make_exception_ptr(cancelled()));
    if (!error) {
      open_ahead();
      while (!error && cur < inputs.size()) {
        auto it = live.find(cur);
        if (it == live.end()) break;  // not opened yet (open_ahead is bounded)
        input_state& in = *it->second;
        if (in.st == input_state::state::opening) break;
        if (in.unopened && in.next_chunk == 0 && !lane_reads_on()) {
          revoke_unopened();  // switched off: `in` is opened now, with every other one waiting
          continue;
        }
        if (in.st == input_state::state::failed) {
          fail(in.err);
          break;
        }
        if (in.st == input_state::state::reopen) {
          in.reopening = true;
          // O_NONBLOCK: a FIFO's open does not wait for its writer (a cancelled job could not stop
          // it); on_open clears the flag, and the reads wait in poll() instead.
          submit_open(in, O_RDONLY | O_NONBLOCK);
          if (in.st == input_state::state::failed) continue;
          break;
        }
        if (in.sequential) {
          if (!seq_advance(in)) break;
        } else if (in.next_chunk < in.n_chunks) {
          if (!may_take_chunk()) break;
          // Many small files: while reads are in flight (their completions come back here), wait
          // for a whole batch's slots rather than send a job per slot as each comes free.
          if (single_read(in) && active > 0 && pool.available() < batch_most()) break;
          auto s = pool.try_acquire();
          if (!s) break;  // the pool's listener wakes us
          if (single_read(in))
            issue_batch(in, *s);
          else
            issue_chunk(in, *s);
          continue;
        }
        in.issue_done = true;
        ++cur;
        retire_input_if_done(in);
        open_ahead();
      }
    }
    if (error) cancel_pending();
    if (reqs == 0 && (error || (cur == inputs.size() && active == 0))) finish();
  }

  void finish() {
    finishing = true;
    for (auto& [i, in] : live) close_fd(*in);
    live.clear();
    pool.set_listener(nullptr);
    {
      std::lock_guard lk(wk->mu);
      wk->async = nullptr;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
  }

  void run() {
    pump();
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0 && !error)
      error = std::make_exception_ptr(
          io_error("", "internal error: the libuv loop still had open handles", rc));
    try {
      on_done(error);
    } catch (...) {  // nowhere to go: on_done must not throw
    }
    timespec cpu{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    {
      std::lock_guard lk(done_mu);
      loop_cpu = double(cpu.tv_sec) + double(cpu.tv_nsec) * 1e-9;
      done = true;
    }
    done_cv.notify_all();
  }
};

reader::reader(std::vector<source> inputs, std::function<framing(std::size_t)> frame,
               slot_pool& pool, reader_config cfg)
    : impl_(std::make_unique<impl>(std::move(inputs), std::move(frame), pool, cfg)) {}

reader::~reader() {
  if (!impl_->started) return;
  cancel();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void reader::start(std::function<void(chunk)> on_chunk,
                   std::function<void(std::exception_ptr)> on_done) {
  impl& m = *impl_;
  if (m.started) throw std::logic_error("reader::start called twice");
  if (m.cfg.chunk_size == 0) throw usage_error("a chunk size of 0 bytes");
  m.on_chunk = std::move(on_chunk);
  m.on_done = std::move(on_done);
  int rc = detail::init_loop(&m.loop);
  if (rc < 0)
    throw io_error("", "cannot start the reader's event loop: " + detail::uv_words(rc), rc);
  m.async.data = &m;
  rc = uv_async_init(&m.loop, &m.async, [](uv_async_t* a) { static_cast<impl*>(a->data)->pump(); });
  if (rc < 0) {
    uv_loop_close(&m.loop);
    throw io_error("", "cannot start the reader's event loop: " + detail::uv_words(rc), rc);
  }
  m.wk->async = &m.async;
  m.pool.set_listener([wk = m.wk] { wk->wake(); });
  // No thread (ulimit -u, -v; no memory for its state): no loop either.
  const auto unwind = [&m] {
    m.pool.set_listener(nullptr);
    {
      std::lock_guard lk(m.wk->mu);
      m.wk->async = nullptr;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&m.async), nullptr);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
  };
  try {
    m.thread = std::thread([&m] { m.run(); });
  } catch (const std::system_error& e) {
    unwind();
    throw io_error("", "cannot start the reader's thread: " + errno_reason(e.code().value()),
                   uv_translate_sys_error(e.code().value()));
  } catch (const std::bad_alloc&) {
    unwind();
    throw io_error("", "cannot start the reader's thread: out of memory", UV_ENOMEM);
  }
  m.started = true;
}

void reader::retire(std::uint64_t n) {
  impl_->retired.fetch_add(n, std::memory_order_acq_rel);
  impl_->wk->wake();
}

void reader::cancel() {
  impl_->cancel_requested.store(true, std::memory_order_release);
  impl_->signal_cancel_fd();
  impl_->wk->wake();
}

void reader::wait() {
  if (!impl_->started) return;
  std::unique_lock lk(impl_->done_mu);
  impl_->done_cv.wait(lk, [&] { return impl_->done; });
}

double reader::loop_cpu_seconds() const {
  std::lock_guard lk(impl_->done_mu);
  return impl_->loop_cpu;
}

void open_chunk(chunk& c, const std::string& path) {
  if (std::exchange(c.unopened, false)) {
    // O_NONBLOCK: should the path have become a FIFO since its stat, the open does not wait for
    // a writer (and the fstat below refuses it).
    const int ufd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (ufd < 0) std::rethrow_exception(uv_failure(path, uv_translate_sys_error(errno)));
    struct stat st {};
    const int err = ::fstat(ufd, &st) != 0 ? errno : 0;
    if (err || !S_ISREG(st.st_mode)) {
      ::close(ufd);
      if (err) std::rethrow_exception(uv_failure(path, uv_translate_sys_error(err)));
      throw io_error(path, S_ISDIR(st.st_mode) ? "is a directory" : "no longer a regular file",
                     S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EINVAL);
    }
    if (replaced(c.file_dev, c.file_ino, std::uint64_t(st.st_dev), std::uint64_t(st.st_ino))) {
      ::close(ufd);
      throw io_error(path, replaced_reason, UV_EIO);
    }
    if (std::uint64_t(st.st_size) < c.read_offset + c.info.size) {
      ::close(ufd);
      std::rethrow_exception(detail::shrank(path));
    }
    c.read_fd = ufd;
  }
}

void read_chunk(chunk& c, const std::string& path) {
  open_chunk(c, path);
  if (c.read_fd < 0) return;
  const int fd = std::exchange(c.read_fd, -1);
  int err = 0;
  const std::size_t got = pread_range(fd, c.data, c.info.size, c.read_offset, &err);
  ::close(fd);
  if (err) std::rethrow_exception(uv_failure(path, uv_translate_sys_error(err)));
  if (got < c.info.size) std::rethrow_exception(detail::shrank(path));
}

void drop_chunk(chunk& c) noexcept {
  if (c.read_fd >= 0) ::close(std::exchange(c.read_fd, -1));
}

std::uint64_t nominal_chunk(const framing& fr, std::size_t chunk_size) noexcept {
  if (fr.kind != framing_kind::records || fr.record_size == 0) return chunk_size;
  return std::max<std::uint64_t>(fr.record_size, chunk_size / fr.record_size * fr.record_size);
}

std::optional<std::uint64_t> chunk_count(const framing& fr, std::uint64_t bytes,
                                         std::size_t chunk_size) noexcept {
  if (fr.kind == framing_kind::lines || (fr.kind == framing_kind::records && fr.record_size == 0))
    return std::nullopt;
  if (bytes == 0) return 0;
  if (fr.kind == framing_kind::whole_file) return 1;
  const std::uint64_t c = nominal_chunk(fr, chunk_size);
  return (bytes + c - 1) / c;
}

}  // namespace hetpipe::io

// io::writer: ordered asynchronous writes on a libuv loop of its own, to a temporary file that is
// renamed onto the destination on commit. Also the registry of temporary files that a second
// SIGINT/SIGTERM removes.
#include "io/writer.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

#include "hetpipe/error.hpp"
#include "io/uv_util.hpp"

namespace hetpipe::io {

// ---- temp-file registry and signal handlers ----------------------------------------------------

namespace {

constexpr int max_temps = 64;
enum : int { entry_free = 0, entry_filling = 1, entry_active = 2 };
struct temp_entry {
  std::atomic<int> state{entry_free};
  char path[PATH_MAX];
};
temp_entry temps[max_temps];
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads these");

int register_temp(const std::string& p) {
  if (p.size() >= PATH_MAX) return -1;
  for (int i = 0; i < max_temps; ++i) {
    int expected = entry_free;
    if (temps[i].state.compare_exchange_strong(expected, entry_filling)) {
      std::memcpy(temps[i].path, p.c_str(), p.size() + 1);
      temps[i].state.store(entry_active);
      return i;
    }
  }
  return -1;  // full: this temp is still removed by abort(), only not by a second signal
}

void unregister_temp(int i) {
  if (i >= 0) temps[i].state.store(entry_free);
}

std::atomic<std::atomic<bool>*> signal_flag{nullptr};
std::atomic<int> signals_seen{0};
std::atomic<int> first_signal{0};  // the signal that set the flag
static_assert(std::atomic<std::atomic<bool>*>::is_always_lock_free);

std::atomic<unsigned> grace_seconds{0};  // 0: no deadline after the first signal
struct sigaction alarm_before {};  // SIGALRM's action before it was ours (while grace_seconds)
std::atomic<const char*> last_words{nullptr};  // written to stderr by a forced exit
static_assert(std::atomic<unsigned>::is_always_lock_free);
static_assert(std::atomic<const char*>::is_always_lock_free);

// Ends the process as a second signal does: temps gone, the caller's line, status 128 + sig.
[[noreturn]] void forced_exit(int sig) {
  remove_registered_temps_now();
  if (const char* w = last_words.load()) {
    std::size_t n = 0;
    while (w[n]) ++n;
    (void)!::write(2, w, n);
  }
  ::_exit(128 + sig);
}

extern "C" void on_signal(int sig) {
  int n = signals_seen.fetch_add(1) + 1;
  std::atomic<bool>* flag = signal_flag.load();
  if (n == 1 && flag) {
    first_signal.store(sig);
    flag->store(true);
    if (const unsigned g = grace_seconds.load()) ::alarm(g);  // async-signal-safe
    return;
  }
  forced_exit(sig);
}

// The deadline after a first signal: the job did not stop in time (a write to a pipe whose reader
// has stalled, say, which no flag can end).
extern "C" void on_deadline(int) {
  if (signals_seen.load() == 0) return;  // not ours: no first signal came
  forced_exit(first_signal.load());
}

// SIGPIPE: what the process would do (end by the signal, quietly), once the temporary files are
// gone.
extern "C" void on_sigpipe(int) {
  remove_registered_temps_now();
  ::signal(SIGPIPE, SIG_DFL);
  ::raise(SIGPIPE);
}

}  // namespace

registered_temp::registered_temp(std::string path)
    : path_(std::move(path)), entry_(register_temp(path_)) {}

registered_temp::~registered_temp() {
  ::unlink(path_.c_str());
  unregister_temp(entry_);
}

void remove_registered_temps_now() {
  for (auto& t : temps)
    if (t.state.load() == entry_active) ::unlink(t.path);
}

int interrupting_signal() noexcept {
  return first_signal.load();
}

void install_signal_handlers(std::atomic<bool>* cancel_flag, unsigned grace, const char* words) {
  // The previous install's deadline: SIGALRM is ours while it has one, and its first signal (if
  // one came: the process lives on only with a flag) armed the alarm.
  const bool had_deadline = grace_seconds.load() != 0;
  if (had_deadline && signals_seen.load() > 0) ::alarm(0);
  signal_flag.store(cancel_flag);
  signals_seen.store(0);
  first_signal.store(0);
  grace_seconds.store(cancel_flag ? grace : 0);
  last_words.store(words);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // the first signal only sets a flag: let blocked calls go on
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // SIGALRM is taken only while a deadline may come, and given back as it was after.
  if (grace_seconds.load()) {
    struct sigaction alarm_sa {};
    alarm_sa.sa_handler = on_deadline;
    sigemptyset(&alarm_sa.sa_mask);
    alarm_sa.sa_flags = SA_RESTART;
    ::sigaction(SIGALRM, &alarm_sa, had_deadline ? nullptr : &alarm_before);
  } else if (had_deadline) {
    ::sigaction(SIGALRM, &alarm_before, nullptr);
  }
  struct sigaction pipe_sa {};
  if (::sigaction(SIGPIPE, nullptr, &pipe_sa) == 0 && pipe_sa.sa_handler == SIG_DFL) {
    pipe_sa.sa_handler = on_sigpipe;  // not where the caller ignores or handles it
    sigemptyset(&pipe_sa.sa_mask);
    pipe_sa.sa_flags = 0;
    ::sigaction(SIGPIPE, &pipe_sa, nullptr);
  }
}

// ---- writer ------------------------------------------------------------------------------------

namespace {

// One write in flight at a time, to a file as to standard output (which may be a pipe, written
// sequentially): Linux serialises buffered writes to one file on its inode lock (tmpfs, ext4,
// XFS), so more only spin on it. Measured with 4 in flight on the 2-core machine, encrypting
// 512 MiB into /dev/shm: the same wall time, 10% of the CPU samples spinning in
// rwsem_spin_on_owner under pwrite.
constexpr unsigned writes_in_flight = 1;

// A file output starts its loop thread only once it holds more than this many pieces: an output of
// one chunk (an image, a small file: the prologue and one piece) is written whole by commit(), on
// the committing thread, without a thread, an event loop and four thread hand-offs of its own
// (about 160 us per output on the 2-core machine, measured with 1000 small outputs).
constexpr unsigned lazy_pieces = 2;

std::string errno_words(int e) {
  return detail::uv_words(uv_translate_sys_error(e));
}

std::string random_suffix() {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 gen{
      std::random_device{}() ^
      std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      std::uint64_t(::getpid())};
  std::string s(6, 'x');
  for (auto& c : s) c = alphabet[gen() % (sizeof alphabet - 1)];
  return s;
}

}  // namespace

struct writer::impl {
  struct write_op {
    uv_fs_t req;
    impl* self;
    std::vector<std::byte> bytes;
    std::size_t done = 0;
    std::int64_t offset = 0;  // -1 for a stream
    std::uint64_t begin_ns = 0;
  };
  writer::observer observer;
  writer::recycler recycler;
  writer::filter_each each;
  writer::filter_end end;

  std::string path, dir, temp;
  std::string target;  // where the output goes: path, or the file a symbolic link at path names
  // Written as the pieces come, in place, with nothing to rename or remove: standard output ("-"),
  // or an existing file that is not a regular one (a device such as /dev/null, a FIFO).
  bool stream = false;
  bool owns_fd = true;  // false for standard output
  uv_file fd = -1;
  int temp_entry = -1;
  unsigned max_pending;

  uv_loop_t loop;
  uv_async_t async;
  std::thread thread;
  bool loop_running = false;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::mutex stop_mu;                                      // stop_loop() once
  std::mutex abort_mu;                                     // abort() once
  std::map<std::uint64_t, std::vector<std::byte>> queued;  // not yet handed to libuv
  std::uint64_t next_seq = 0;                              // the next piece to hand to libuv
  unsigned pending = 0;                                    // queued + being written
  unsigned in_flight = 0;
  bool stopping = false;
  int error_code = 0;
  std::string error_reason;
  std::uint64_t written = 0;
  std::uint64_t file_offset = 0;  // the loop thread's, or commit()'s when no loop ran
  bool finished = false;          // committed or aborted
  bool committed = false;
  bool aborting = false;  // under mu: abort() was called

  void set_error(int code, std::string reason) {  // under mu
    if (error_code == 0) {
      error_code = code;
      error_reason = std::move(reason);
    }
  }

  [[noreturn]] void throw_error() {  // under mu or after the loop stopped
    throw io_error(path, error_reason, error_code);
  }

  // Loop thread: hand every piece that is next in order to libuv.
  void issue() {
    std::unique_lock lk(mu);
    while (error_code == 0 && !aborting && in_flight < writes_in_flight) {
      auto it = queued.find(next_seq);
      if (it == queued.end()) break;
      auto* op = new write_op{};
      op->self = this;
      op->bytes = std::move(it->second);
      queued.erase(it);
      ++next_seq;
      if (each) {
        // In order, on this thread alone; producers go on meanwhile (in flight: a commit() waits).
        ++in_flight;
        lk.unlock();
        std::optional<std::string> failed;
        try {
          each(op->bytes);
        } catch (const std::exception& e) {
          failed = e.what();
        } catch (...) {
          failed = "the output's filter failed";
        }
        lk.lock();
        --in_flight;
        if (failed || aborting) {
          delete op;
          --pending;
          if (failed) set_error(UV_EIO, *failed);
          cv.notify_all();
          break;
        }
      }
      op->offset = stream ? -1 : std::int64_t(file_offset);
      file_offset += op->bytes.size();
      if (op->bytes.empty()) {
        delete op;
        --pending;
        cv.notify_all();
        continue;
      }
      ++in_flight;
      lk.unlock();
      submit(op);
      lk.lock();
    }
    if (stopping && in_flight == 0) {
      lk.unlock();
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async)))
        uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
    }
  }

  static std::uint64_t now_ns() {
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count());
  }

  void submit(write_op* op) {
    if (op->begin_ns == 0) op->begin_ns = now_ns();
    uv_buf_t buf;
    buf.base = reinterpret_cast<char*>(op->bytes.data() + op->done);
    buf.len = std::min(op->bytes.size() - op->done,
                       detail::max_bytes_per_call.load(std::memory_order_relaxed));
    op->req.data = op;
    std::int64_t off = op->offset < 0 ? -1 : op->offset + std::int64_t(op->done);
    int rc = uv_fs_write(&loop, &op->req, fd, &buf, 1, off, [](uv_fs_t* r) {
      auto* op = static_cast<write_op*>(r->data);
      op->self->on_write(op);
    });
    if (rc < 0) {
      uv_fs_req_cleanup(&op->req);
      complete(op, rc);
    }
  }

  void on_write(write_op* op) {
    auto result = op->req.result;
    uv_fs_req_cleanup(&op->req);
    if (result < 0) return complete(op, int(result));
    op->done += std::size_t(result);
    {
      std::lock_guard lk(mu);
      written += std::uint64_t(result);
    }
    if (result == 0) return complete(op, UV_EIO);  // no progress: do not spin
    if (op->done < op->bytes.size()) return submit(op);
    piece_written(op->begin_ns, std::move(op->bytes));
    complete(op, 0);
  }

  // A piece reached the file (on the loop thread, or in commit() when no loop ran): the trace
  // sees it, and its memory goes back to the producer.
  void piece_written(std::uint64_t begin_ns, std::vector<std::byte>&& bytes) {
    if (observer && !bytes.empty()) observer(begin_ns, now_ns(), bytes.size());
    if (!recycler) return;
    try {
      recycler(std::move(bytes));
    } catch (...) {  // only memory for later pieces is lost
    }
  }

  void complete(write_op* op, int code) {
    delete op;
    {
      std::lock_guard lk(mu);
      --in_flight;
      --pending;
      if (code < 0) set_error(code, "write failed: " + detail::uv_words(code));
    }
    cv.notify_all();
    issue();
  }

  void start_loop() {
    int rc = detail::init_loop(&loop);
    if (rc < 0) throw io_error(path, "cannot start the writer's event loop", rc);
    async.data = this;
    rc = uv_async_init(&loop, &async, [](uv_async_t* a) { static_cast<impl*>(a->data)->issue(); });
    if (rc < 0) {
      uv_loop_close(&loop);
      throw io_error(path, "cannot start the writer's event loop", rc);
    }
    loop_running = true;
    thread = std::thread([this] {
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    });
  }

  // Lets the writes in flight finish, then ends the loop thread. Never throws.
  // Once, whoever calls it (abort() from several threads, commit(), the destructor): the others
  // wait for the first. The wake-up is sent under mu, with `stopping` (see write()).
  void stop_loop() noexcept {
    std::lock_guard once(stop_mu);
    {
      std::lock_guard lk(mu);
      if (!loop_running) return;
      stopping = true;
      uv_async_send(&async);
    }
    thread.join();
    {
      std::lock_guard lk(mu);
      loop_running = false;
    }
    cv.notify_all();
  }

  void remove_temp() noexcept {
    if (owns_fd && fd >= 0) ::close(fd);
    fd = -1;
    if (!temp.empty()) ::unlink(temp.c_str());
    unregister_temp(temp_entry);
    temp_entry = -1;
    temp.clear();
  }
};

writer::writer(std::string path, unsigned max_pending) : impl_(std::make_unique<impl>()) {
  impl& m = *impl_;
  m.path = std::move(path);
  if (m.path.empty()) throw usage_error("an empty output file name");
  m.max_pending = std::max(1u, max_pending);
  // What the path is now, from one lstat (an output that does not exist yet, the common case,
  // costs that alone), and what a link there names.
  struct stat lsb {};
  struct stat existing {};
  const bool there = m.path != "-" && ::lstat(m.path.c_str(), &lsb) == 0;
  const bool link = there && S_ISLNK(lsb.st_mode);
  bool named = there;  // `existing` is what the path names (a dangling link names nothing)
  int named_err = 0;
  if (link) {
    named = ::stat(m.path.c_str(), &existing) == 0;
    named_err = named ? 0 : errno;
  } else if (there) {
    existing = lsb;
  }
  // A symbolic link to a file is written through, as `cp` and `age -o` do: the temporary file
  // goes beside the file it names and is renamed onto that file (renamed onto the link, it would
  // replace the link: as root, -o /dev/stdout replaced /dev/stdout itself). A link whose file has
  // no name left (/dev/stdout, a descriptor's link, to a deleted file) is written in place, as a
  // device is; one whose file cannot be found (a folder on the way that cannot be searched) is
  // refused.
  std::string through;
  bool deleted = false;
  if (link && !named) {
    // A dangling link: the file it names is made there, as age -o and a shell's > make it (the
    // link used to be replaced by the output). A chain of links is followed to its end, each
    // relative target taken from its own link's folder. Where the links cannot be followed (a
    // loop, a folder that cannot be searched), the path is refused with the reason.
    if (named_err != ENOENT)
      throw io_error(m.path, "cannot find the file this link names: " + errno_words(named_err),
                     uv_translate_sys_error(named_err));
    std::filesystem::path at = m.path;
    for (int hops = 0;; ++hops) {
      std::error_code ec;
      const std::filesystem::path target = std::filesystem::read_symlink(at, ec);
      if (ec == std::errc::no_such_file_or_directory) break;  // the end: the file to make
      if (!ec && hops == 40) ec = std::make_error_code(std::errc::too_many_symbolic_link_levels);
      if (ec)
        throw io_error(m.path, "cannot find the file this link names: " + errno_words(ec.value()),
                       uv_translate_sys_error(ec.value()));
      at = target.is_absolute() ? target : at.parent_path() / target;
    }
    through = at.string();
  } else if (link && named && S_ISREG(existing.st_mode)) {
    if (char* real = ::realpath(m.path.c_str(), nullptr)) {
      through = real;
      std::free(real);
    } else if (existing.st_nlink == 0) {
      deleted = true;
    } else {
      const int err = errno;
      throw io_error(m.path, "cannot find the file this link names: " + errno_words(err),
                     uv_translate_sys_error(err));
    }
  }
  if (m.path == "-") {
    m.stream = true;
    m.owns_fd = false;
    m.fd = STDOUT_FILENO;
  } else if (deleted || (named && !S_ISREG(existing.st_mode) && !S_ISDIR(existing.st_mode))) {
    // A device or FIFO is written to, as `cp` and shells do: renamed onto, a temporary file would
    // replace it (as root, /dev/null itself). A FIFO's open waits for its reader.
    m.stream = true;
    m.fd = ::open(m.path.c_str(), O_WRONLY | O_CLOEXEC | (deleted ? O_TRUNC : 0));
    if (m.fd < 0) throw io_error(m.path, errno_words(errno), uv_translate_sys_error(errno));
  } else {
    m.target = through.empty() ? m.path : through;
    const std::string& dest = m.target;
    auto slash = dest.rfind('/');
    std::string base = slash == std::string::npos ? dest : dest.substr(slash + 1);
    m.dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dest.substr(0, slash);
    if (base.empty() || base == "." || base == ".." || (named && S_ISDIR(existing.st_mode)))
      throw io_error(m.path, "is a directory", UV_EISDIR);
    std::string prefix =
        (slash == std::string::npos ? "" : dest.substr(0, slash + 1)) + "." + base + ".hetpipe-";
    // A file replaced keeps its permission bits (and, for root, its owner and group), as `cp`
    // and `age -o`, which write into it, keep them: a decrypted file over a private one stays
    // private. The temporary file has them from its creation on.
    const bool replaces = named && S_ISREG(existing.st_mode);
    const mode_t mode = replaces ? existing.st_mode & 0777 : 0666;
    for (int attempt = 0;; ++attempt) {
      std::string t = prefix + random_suffix();
      // O_EXCL with mode 0666 for a new file: the umask applies as for any (mkstemp would give
      // 0600).
      int fd = ::open(t.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      if (fd >= 0) {
        m.fd = fd;
        m.temp = t;
        break;
      }
      int e = errno;
      if (e != EEXIST || attempt > 100)
        throw io_error(m.path, "cannot create a file in " + m.dir + ": " + errno_words(e),
                       uv_translate_sys_error(e));
    }
    m.temp_entry = register_temp(m.temp);
    if (replaces) {
      // The mode exactly (the umask took from it at the open); the owner only where that is
      // allowed (root), else the group where this user is in it. Failures leave this user's.
      if (::fchmod(m.fd, mode) != 0) {
        const int e = errno;
        m.remove_temp();
        throw io_error(m.path, "cannot set the permissions it had: " + errno_words(e),
                       uv_translate_sys_error(e));
      }
      (void)!::fchown(m.fd, ::geteuid() == 0 ? existing.st_uid : static_cast<uid_t>(-1),
                      existing.st_gid);
    }
  }
  if (m.stream) m.start_loop();  // written as it comes (files: see lazy_pieces)
}

writer::~writer() {
  if (!impl_->finished) abort();
}

void writer::observe(observer f) {
  impl_->observer = std::move(f);
}

void writer::recycle(recycler f) {
  impl_->recycler = std::move(f);
}

void writer::filter(filter_each each, filter_end end) {
  impl_->each = std::move(each);
  impl_->end = std::move(end);
}

void writer::write(std::uint64_t seq, std::vector<std::byte> bytes) {
  impl& m = *impl_;
  std::unique_lock lk(m.mu);
  m.cv.wait(lk, [&] {
    return m.error_code != 0 || m.stopping || m.pending < m.max_pending || seq == m.next_seq;
  });
  if (m.aborting) throw cancelled();  // abort() from another thread, e.g. on SIGINT
  if (m.error_code != 0) m.throw_error();
  if (m.stopping) throw std::logic_error("writer::write after commit()");
  if (seq < m.next_seq || m.queued.count(seq))
    throw std::logic_error("writer::write: piece " + std::to_string(seq) + " given twice");
  m.queued.emplace(seq, std::move(bytes));
  ++m.pending;
  bool wake = seq == m.next_seq;
  if (!m.loop_running) {
    if (m.pending <= lazy_pieces && m.pending < m.max_pending) return;  // commit() writes them
    m.start_loop();  // under mu: the loop thread's first issue() waits for it
    wake = true;
  }
  // Under mu: the loop thread closes its wake-up handle only once it has seen `stopping` (under
  // mu), which abort() or commit() may set as soon as mu is free; a send after that would find
  // the handle closed (libuv aborts the process).
  if (wake) uv_async_send(&m.async);
}

void writer::commit() {
  impl& m = *impl_;
  if (m.committed) return;
  if (m.finished) throw std::logic_error("writer::commit after abort()");
  std::uint64_t gap = 0;
  bool has_gap = false;
  std::map<std::uint64_t, std::vector<std::byte>> pieces;  // written here (no loop started)
  {
    std::unique_lock lk(m.mu);
    if (m.loop_running)
      m.cv.wait(lk, [&] {
        if (m.error_code != 0) return true;
        if (m.in_flight > 0) return false;
        return m.queued.empty() || m.queued.begin()->first != m.next_seq;
      });
    else {
      pieces.swap(m.queued);
      m.pending = 0;
      m.stopping = true;  // later write() calls are errors, as after a loop's commit
    }
    bool lazy_gap = false;
    for (const auto& piece : pieces) {
      if (piece.first != m.next_seq) {
        lazy_gap = true;
        break;
      }
      ++m.next_seq;
    }
    if (m.error_code == 0 && (!m.queued.empty() || lazy_gap)) {
      has_gap = true;
      gap = m.next_seq;
    }
  }
  m.stop_loop();
  auto fail = [&](int code, std::string reason) {
    abort();
    throw io_error(m.path, std::move(reason), code);
  };
  if (has_gap) {
    abort();
    throw std::logic_error("writer::commit: piece " + std::to_string(gap) + " was never written");
  }
  if (m.error_code != 0) fail(m.error_code, m.error_reason);
  // The filter's pieces (pieces written here go through it too) and its end, after the last.
  if (m.each || m.end) {
    try {
      if (m.each)
        for (auto& piece : pieces) m.each(piece.second);
      if (m.end) pieces.emplace(m.next_seq, m.end());
    } catch (const std::exception& e) {
      fail(UV_EIO, e.what());
    } catch (...) {
      fail(UV_EIO, "the output's filter failed");
    }
  }
  for (auto& [seq, bytes] : pieces) {
    const std::uint64_t begin = impl::now_ns();
    std::size_t done = 0;
    while (done < bytes.size()) {
      const std::size_t n =
          std::min(bytes.size() - done, detail::max_bytes_per_call.load(std::memory_order_relaxed));
      // A stream (a pipe, a terminal, standard output redirected to a file at any position) is
      // written where it stands, as the loop writes it: the filter's end comes here after the
      // loop's pieces (a pwrite failed on a pipe, and wrote over them at a file's offset).
      const ssize_t r = m.stream
                            ? ::write(m.fd, bytes.data() + done, n)
                            : ::pwrite(m.fd, bytes.data() + done, n, off_t(m.file_offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && m.stream && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{m.fd, POLLOUT, 0};  // a descriptor someone made non-blocking
        ::poll(&p, 1, -1);
        continue;
      }
      if (r < 0) fail(uv_translate_sys_error(errno), "write failed: " + errno_words(errno));
      if (r == 0) fail(UV_EIO, "write failed: " + detail::uv_words(UV_EIO));
      done += std::size_t(r);
    }
    m.file_offset += bytes.size();
    {
      std::lock_guard lk(m.mu);
      m.written += bytes.size();
    }
    m.piece_written(begin, std::move(bytes));
  }
  if (m.stream) {
    // A pipe, terminal or device cannot be synced (EINVAL); a redirected file can.
    if (::fsync(m.fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
      fail(uv_translate_sys_error(errno),
           (m.owns_fd ? "cannot flush: " : "cannot flush standard output: ") + errno_words(errno));
    if (m.owns_fd && ::close(std::exchange(m.fd, -1)) != 0)
      fail(uv_translate_sys_error(errno), "write failed: " + errno_words(errno));
    m.finished = m.committed = true;
    return;
  }
  if (::fsync(m.fd) != 0)
    fail(uv_translate_sys_error(errno), "cannot flush to disk: " + errno_words(errno));
  int fd = m.fd;
  m.fd = -1;
  if (::close(fd) != 0) fail(uv_translate_sys_error(errno), "write failed: " + errno_words(errno));
  if (::rename(m.temp.c_str(), m.target.c_str()) != 0)
    fail(uv_translate_sys_error(errno), "cannot rename the finished output: " + errno_words(errno));
  unregister_temp(m.temp_entry);
  m.temp_entry = -1;
  m.temp.clear();
  m.finished = m.committed = true;
  // Make the rename durable. The output is in place already; a folder that cannot be synced
  // (EINVAL on some file systems) is not an error.
  int dfd = ::open(m.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd);
    int e = errno;
    ::close(dfd);
    if (rc != 0 && e != EINVAL && e != ENOTSUP)
      throw io_error(m.path, "cannot flush its folder to disk: " + errno_words(e),
                     uv_translate_sys_error(e));
  }
}

void writer::abort() {
  impl& m = *impl_;
  std::lock_guard once(m.abort_mu);  // lanes that refuse chunks of one input may abort it at once
  if (m.committed) return;
  {
    std::lock_guard lk(m.mu);
    m.aborting = true;
  }
  m.stop_loop();
  if (m.finished && m.temp.empty()) return;
  {
    std::lock_guard lk(m.mu);
    m.queued.clear();
    m.pending = 0;
  }
  m.remove_temp();
  m.finished = true;
}

std::uint64_t writer::bytes_written() const {
  std::lock_guard lk(impl_->mu);
  return impl_->written;
}

std::uint64_t writer::bytes_queued() const {
  std::lock_guard lk(impl_->mu);
  std::uint64_t n = 0;
  for (const auto& [seq, bytes] : impl_->queued) n += bytes.size();
  return n;
}

}  // namespace hetpipe::io

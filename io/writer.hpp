// io::writer writes pieces that arrive in any order (tagged with their sequence number) to one
// output, in order, with asynchronous libuv writes; the output appears atomically on commit().
//
//   hetpipe::io::writer w("out.bin");   // creates ./.out.bin.hetpipe-a8Xk2q
//   w.write(1, {b2});  w.write(0, {b0, b1});  // written as b0 b1 b2
//   w.commit();                                // fsync, rename onto out.bin, fsync the folder
//
// Path "-" writes to standard output directly, and an existing path that is not a regular file or
// a folder (a device such as /dev/null, a FIFO) is written to in place, as `cp` does (a rename
// would replace it): nothing can be renamed or removed there, so an error or abort leaves what
// was already written in place (commit() still waits and flushes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hetpipe::io {

class writer {
 public:
  // Creates the temporary file ".NAME.hetpipe-XXXXXX" in the destination's folder (mode 0666 less
  // the umask; where it replaces a file, that file's permission bits, and for root its owner).
  // Throws io_error(path, reason) when it cannot (folder missing or not writable, path is a
  // directory).
  explicit writer(std::string path, unsigned max_pending = 16);
  ~writer();  // not committed → abort(); never throws
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  // Thread-safe. Pieces may come in any order; they are written in seq order (0, 1, 2, ... with
  // no gaps). Blocks while max_pending pieces are queued, except for the piece the output waits
  // for, which is always accepted (so out-of-order producers cannot deadlock). Throws io_error
  // once a write has failed, std::logic_error for a repeated seq or after commit()/abort().
  void write(std::uint64_t seq, std::vector<std::byte> bytes);
  // Waits for every write, fsync, close, rename onto path (atomic), fsync the folder. On failure
  // the temporary file is removed and io_error(path, reason) thrown; a gap in the sequence
  // numbers (a piece never written) is a std::logic_error. A second commit() does nothing.
  void commit();
  void abort();  // stops writing and removes the temporary file; idempotent; never throws
  // Called on the writer's own thread after each piece reached the file: when its first write
  // call was issued and when its last one returned (steady_clock nanoseconds), and its bytes.
  // For traces. Set it before the first write().
  using observer =
      std::function<void(std::uint64_t begin_ns, std::uint64_t end_ns, std::uint64_t bytes)>;
  void observe(observer f);
  // Called on the writer's own thread with each piece's bytes once they reached the file, so
  // the producer can reuse the memory (already mapped) for its next piece. Set it before the
  // first write().
  using recycler = std::function<void(std::vector<std::byte>&&)>;
  void recycle(recycler f);
  // A stage the pieces go through in order, on the writer's own thread, just before they are
  // written: `each` may change a piece (its size too: a text encoding of the whole output), and
  // commit() writes what `end` gives after the last piece. Set it before the first write().
  using filter_each = std::function<void(std::vector<std::byte>&)>;
  using filter_end = std::function<std::vector<std::byte>()>;
  void filter(filter_each each, filter_end end);
  std::uint64_t bytes_written() const;  // bytes that reached the file so far
  std::uint64_t bytes_queued() const;   // bytes of pieces held, not yet handed to the file

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// Temporary files being written are registered (up to 64 at once; more still work but are not
// removed by a second signal). After install_signal_handlers(flag), the first SIGINT/SIGTERM sets
// *flag (the pipeline then cancels and aborts its writers, which removes their temps); a second
// one unlinks every registered temp file with async-signal-safe calls and _exit(130 or 143).
// With a null flag the first signal does that already. A SIGPIPE (standard output's reader gone)
// unlinks them too, then ends the process as it would have.
//
// grace > 0 (with a flag): a process still running `grace` seconds after the first signal ends as
// at a second one (SIGALRM: alarm(grace) is armed by the first signal; installing the handlers
// again disarms it, and with grace 0 gives SIGALRM back its action from before). This bounds what
// no flag can stop: a write blocked on a pipe whose reader has stalled, a descriptor that never
// answers. A caller that goes on living after a cancelled job gives 0. `words` (kept, not copied;
// may be null): a line written to stderr by such a forced exit and by a second signal's.
void install_signal_handlers(std::atomic<bool>* cancel_flag, unsigned grace = 0,
                             const char* words = nullptr);
// The signal (SIGINT or SIGTERM) that set the flag, 0 before one came.
int interrupting_signal() noexcept;
// Unlinks every registered temp file now (async-signal-safe).
void remove_registered_temps_now();

// A file of the caller's that a second signal (or a SIGPIPE) removes as it removes writers'
// temporary files, and that is removed when this goes (an intermediate file, say).
class registered_temp {
 public:
  explicit registered_temp(std::string path);
  ~registered_temp();  // unlinks the file
  registered_temp(const registered_temp&) = delete;
  registered_temp& operator=(const registered_temp&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  int entry_;
};

}  // namespace hetpipe::io

// Reads of the small inputs a command takes besides its data (a sum list, a key or identity file,
// an age header), which may be pipes, FIFOs or terminals that never deliver: each wait for data,
// and the open of a FIFO, stops when the job's cancel flag is set (a first SIGINT or SIGTERM),
// throwing hetpipe::cancelled, instead of blocking until a writer comes.
//
//   const int fd = io::open_input(path);            // a FIFO: without waiting for its writer
//   std::string text = io::read_to_end(fd, path, opt.cancel, 64 << 20);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace hetpipe::io {

// A descriptor that is closed when this goes (-1: none); moves hand it on.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd();
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// open(path, O_RDONLY | O_CLOEXEC) that does not wait for a FIFO's writer (O_NONBLOCK, cleared
// once open: later reads block as usual, read_some waits in poll()). Throws io_error naming path
// ("is a directory" for a folder).
int open_input(const std::string& path);

// Clears O_NONBLOCK on fd (an open that was not to wait for a FIFO's writer): 0, or the errno.
int make_blocking(int fd);

// One read(2) of up to len bytes from fd once poll() finds data, end of file or an error there.
// Returns the bytes read or a negative errno: -ECANCELED once wake_fd (>= 0; an eventfd, say) is
// readable, -ETIMEDOUT after timeout_ms (-1: no limit) without either. EINTR, and EAGAIN (a
// descriptor someone else made non-blocking), wait again. For a thread that cannot throw.
std::int64_t poll_read(int fd, void* dst, std::size_t len, int wake_fd, int timeout_ms);

// One read(2) of up to len bytes from fd, once poll() finds data, end of file or an error; while
// it waits, *cancel (when given) is looked at every 50 ms. Returns the bytes read, 0 at the end.
// Throws cancelled, or io_error(name, reason) for a read error. EINTR and EAGAIN (a descriptor
// someone else made non-blocking, as a shared standard input can be) wait again.
std::size_t read_some(int fd, void* dst, std::size_t len, const std::string& name,
                      const std::atomic<bool>* cancel);

// All of fd from where it stands, by read_some. More than max_bytes is an input_error naming
// `name` ("larger than N bytes").
std::string read_to_end(int fd, const std::string& name, const std::atomic<bool>* cancel,
                        std::size_t max_bytes);

// The first `limit` bytes of path (all of it when shorter): open_input + read_some, "-" being
// standard input (read, not closed). Reading stops at limit, so a caller that wants an exact size
// asks for one byte more.
std::string read_small_file(const std::string& path, const std::atomic<bool>* cancel,
                            std::size_t limit);

// The lines of path ("-": standard input) to on_line as they arrive, as std::getline splits them:
// '\n' ends a line and is not passed on, a last line without it is passed too, an empty input
// has no line.
void for_each_line(const std::string& path, const std::atomic<bool>* cancel,
                   const std::function<void(std::string&)>& on_line);

}  // namespace hetpipe::io

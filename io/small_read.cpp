#include "io/small_read.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "hetpipe/error.hpp"

namespace hetpipe::io {

namespace {
constexpr int cancel_look_ms = 50;  // how often a wait for data looks at the cancel flag
}

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

int make_blocking(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK && ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)) return errno;
  return 0;
}

int open_input(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw io_error(path, errno_reason(errno), -errno);
  struct stat st {};
  int err = ::fstat(fd, &st) != 0 ? errno : 0;
  if (!err && !S_ISREG(st.st_mode)) err = make_blocking(fd);
  if (err) {
    ::close(fd);
    throw io_error(path, errno_reason(err), -err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw io_error(path, "is a directory", -EISDIR);
  }
  return fd;
}

std::int64_t poll_read(int fd, void* dst, std::size_t len, int wake_fd, int timeout_ms) {
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -ETIMEDOUT;
    if (wake_fd >= 0 && p[1].revents) return -ECANCELED;
    const ssize_t got = ::read(fd, dst, len);
    if (got >= 0) return got;
    if (errno != EINTR && errno != EAGAIN) return -errno;
  }
}

std::size_t read_some(int fd, void* dst, std::size_t len, const std::string& name,
                      const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel && cancel->load()) throw cancelled();
    const std::int64_t got = poll_read(fd, dst, len, -1, cancel ? cancel_look_ms : -1);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (got != -ETIMEDOUT) throw io_error(name, errno_reason(int(-got)), int(got));
  }
}

std::string read_to_end(int fd, const std::string& name, const std::atomic<bool>* cancel,
                        std::size_t max_bytes) {
  std::string s;
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = read_some(fd, buf, sizeof buf, name, cancel);
    if (n == 0) return s;
    if (n > max_bytes - s.size())
      throw input_error(name, "larger than " + std::to_string(max_bytes) + " bytes");
    s.append(buf, n);
  }
}

namespace {

// fd of path ("-": standard input, not to be closed), closed when this goes.
struct input_fd {
  unique_fd owned;
  int fd;
  explicit input_fd(const std::string& path)
      : owned(path == "-" ? -1 : open_input(path)), fd(path == "-" ? 0 : owned.get()) {}
};

}  // namespace

std::string read_small_file(const std::string& path, const std::atomic<bool>* cancel,
                            std::size_t limit) {
  const input_fd in(path);
  std::string s;
  char buf[1 << 16];
  while (s.size() < limit) {
    const std::size_t n =
        read_some(in.fd, buf, std::min(sizeof buf, limit - s.size()), path, cancel);
    if (n == 0) break;
    s.append(buf, n);
  }
  return s;
}

void for_each_line(const std::string& path, const std::atomic<bool>* cancel,
                   const std::function<void(std::string&)>& on_line) {
  const input_fd in(path);
  std::string pending, line;
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = read_some(in.fd, buf, sizeof buf, path, cancel);
    if (n == 0) break;
    const char* p = buf;
    const char* end = buf + n;
    while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', std::size_t(end - p)))) {
      pending.append(p, nl);
      line.swap(pending);
      pending.clear();
      on_line(line);
      p = nl + 1;
    }
    pending.append(p, end);
  }
  if (!pending.empty()) on_line(pending);
}

}  // namespace hetpipe::io

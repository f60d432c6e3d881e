#include "io/uv_util.hpp"

#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>

#include "hetpipe/error.hpp"
#include "io/reader.hpp"

namespace hetpipe::io {

namespace {
// libuv 1.44: default 4, clamped to [1, 1024], read once (uv_once) at the first thread-pool use.
constexpr unsigned uv_default_threads = 4;
constexpr unsigned uv_max_threads = 1024;

std::mutex threads_mu;
bool uv_used = false;
unsigned threads_in_effect = 0;

unsigned threads_from_env() {
  const char* v = std::getenv("UV_THREADPOOL_SIZE");
  if (!v || !*v) return uv_default_threads;
  long n = std::strtol(v, nullptr, 10);  // libuv uses atoi: garbage reads as 0, clamped to 1
  if (n < 1) n = 1;
  if (n > long(uv_max_threads)) n = uv_max_threads;
  return unsigned(n);
}
}  // namespace

unsigned given_io_threads() {
  static const unsigned given = [] {  // a value libuv would read as 0 or less: none given
    const char* v = std::getenv("UV_THREADPOOL_SIZE");
    return v && std::strtol(v, nullptr, 10) >= 1 ? threads_from_env() : 0u;
  }();
  return given;
}

unsigned set_io_threads(unsigned n) {
  (void)given_io_threads();  // read before this process's own setenv
  std::lock_guard lk(threads_mu);
  if (uv_used) return threads_in_effect;
  if (n > 0 && n != threads_from_env()) {  // the environment's own value is left untouched
    if (n > uv_max_threads) n = uv_max_threads;
    // setenv is not thread-safe against concurrent getenv: call this early, before other threads.
    ::setenv("UV_THREADPOOL_SIZE", std::to_string(n).c_str(), 1);
  }
  return threads_from_env();
}

namespace detail {

namespace {
const std::size_t page_bytes = [] {
  const long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
}();
}  // namespace

std::size_t page_size() noexcept {
  return page_bytes;
}

std::atomic<std::size_t> max_bytes_per_call{std::size_t(1) << 30};
std::atomic<std::uint64_t> batched_reads{0};
std::atomic<std::uint64_t> pieced_reads{0};

std::exception_ptr shrank(const std::string& path) {
  return std::make_exception_ptr(io_error(path, "file shrank while reading", UV_EOF));
}

void note_uv_use() {
  std::lock_guard lk(threads_mu);
  if (uv_used) return;
  uv_used = true;
  threads_in_effect = threads_from_env();
}

int init_loop(uv_loop_s* loop) {
  note_uv_use();
  int spare[4] = {-1, -1, -1, -1}, rc = 0;
  for (int& fd : spare)
    if ((fd = ::eventfd(0, EFD_CLOEXEC)) < 0) {
      rc = uv_translate_sys_error(errno);
      break;
    }
  for (const int fd : spare)
    if (fd >= 0) ::close(fd);
  return rc < 0 ? rc : uv_loop_init(loop);
}

std::string uv_words(int code) {
  switch (code) {
    case UV_EISDIR:
      return "is a directory";
    case UV_EACCES:
      return "permission denied";
    case UV_EPERM:
      return "operation not permitted";
    case UV_ENOENT:
      return "no such file or directory";
    case UV_ENOTDIR:
      return "a component of the path is not a directory";
    case UV_ELOOP:
      return "too many levels of symbolic links";
    case UV_ENOSPC:
      return "no space left on device";  // strerror's words, as errno_reason gives them
    case UV_EROFS:
      return "read-only file system";
    case UV_EMFILE:
    case UV_ENFILE:
      return "too many open files";
    case UV_EIO:
      return "input/output error";
    case UV_EOF:
      return "unexpected end of file";
    default:
      break;
  }
  // libuv names the errors it maps; others (EBADFD from /dev/net/tun, say) it calls "Unknown
  // system error -77". Its codes are negated errno values on Linux: the C library names them.
  // (uv_strerror leaks the text it makes for an unknown code: LeakSanitizer found it.)
  char text[128];
  std::string words = uv_strerror_r(code, text, sizeof text);
  if (code < 0 && code > -1000 && words.starts_with("Unknown system error"))
    return errno_reason(-code);
  return words;
}

}  // namespace detail
}  // namespace hetpipe::io

#include "age_cmd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <hetpipe/age.hpp>
#include <hetpipe/error.hpp>

namespace hetpipe::cli {

namespace {

// One line from the terminal, echo off. The wait looks at *cancel every 50 ms: a first SIGINT
// at the prompt stops the command with the terminal's echo back on (a second signal would end the
// process with it off).
std::string prompt(int tty, const char* text, const std::atomic<bool>* cancel) {
  termios old{};
  const bool term = ::tcgetattr(tty, &old) == 0;
  if (term) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  struct restore {
    int tty;
    bool term;
    const termios& old;
    ~restore() {
      if (term) ::tcsetattr(tty, TCSAFLUSH, &old);
      if (::write(tty, "\n", 1) < 0) {
      }
    }
  } const on_exit{tty, term, old};
  // The prompt once the echo is off: nothing typed after it shows.
  if (::write(tty, text, std::strlen(text)) < 0) throw usage_error("cannot write to the terminal");
  std::string line;
  for (;;) {
    if (cancel && cancel->load()) throw cancelled();
    pollfd p{tty, POLLIN, 0};
    const int n = ::poll(&p, 1, 50);
    if (n < 0 && errno != EINTR) throw usage_error("cannot read from the terminal");
    if (n <= 0) continue;
    char c;
    const ssize_t got = ::read(tty, &c, 1);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0 || c == '\n') return line;
    line.push_back(c);
  }
}

// The terminal, closed when this goes.
struct tty_fd {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  tty_fd() = default;
  tty_fd(const tty_fd&) = delete;
  tty_fd& operator=(const tty_fd&) = delete;
  ~tty_fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string read_passphrase(const std::string& env_name, bool confirm,
                            const std::atomic<bool>* cancel) {
  if (!env_name.empty()) {
    const char* v = std::getenv(env_name.c_str());
    if (!v) throw usage_error("--passphrase-env " + env_name + ": the variable is not set");
    if (!*v) throw usage_error("--passphrase-env " + env_name + ": the passphrase is empty");
    return v;
  }
  const tty_fd tty;
  if (tty.fd < 0)
    throw usage_error("no terminal to read the passphrase from: use --passphrase-env NAME");
  std::string p = prompt(tty.fd, "Enter passphrase: ", cancel);
  if (confirm && !p.empty()) {
    const std::string again = prompt(tty.fd, "Confirm passphrase: ", cancel);
    if (again != p) throw usage_error("the passphrases do not match");
  }
  if (p.empty()) throw usage_error("the passphrase is empty");
  return p;
}

std::string write_new_key(const std::string& path) {
  const age_key k = generate_age_key();
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const std::string text = std::string("# created: ") + when + "\n# public key: " + k.recipient +
                           "\n" + k.identity + "\n";
  if (path == "-") {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      throw io_error("-", "write error: " + errno_reason(errno) + " (no key was written)", -errno);
    return k.recipient;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec)))
    throw io_error(path, "exists already (not overwritten)", -EEXIST);
  const fs::path out(path);
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + out.filename().string() + ".hetpipe-XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());  // mode 0600
  if (fd < 0) throw io_error(path, errno_reason(errno), -errno);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  // link() rather than rename(): it fails instead of replacing a file created meanwhile.
  if (!ok || ::link(tmpl.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlink(tmpl.c_str());
    throw io_error(path, errno_reason(e), -e);
  }
  ::unlink(tmpl.c_str());
  return k.recipient;
}

}  // namespace hetpipe::cli

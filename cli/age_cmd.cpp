#include "age_cmd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

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

// One line from the terminal, echo off.
std::string prompt(int tty, const char* text) {
  if (::write(tty, text, std::strlen(text)) < 0) throw usage_error("cannot write to the terminal");
  termios old{};
  const bool term = ::tcgetattr(tty, &old) == 0;
  if (term) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  std::string line;
  char c;
  while (::read(tty, &c, 1) == 1 && c != '\n') line.push_back(c);
  if (term) ::tcsetattr(tty, TCSAFLUSH, &old);
  if (::write(tty, "\n", 1) < 0) {
  }
  return line;
}

}  // namespace

std::string read_passphrase(const std::string& env_name, bool confirm) {
  if (!env_name.empty()) {
    const char* v = std::getenv(env_name.c_str());
    if (!v) throw usage_error("--passphrase-env " + env_name + ": the variable is not set");
    if (!*v) throw usage_error("--passphrase-env " + env_name + ": the passphrase is empty");
    return v;
  }
  const int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0)
    throw usage_error("no terminal to read the passphrase from: use --passphrase-env NAME");
  std::string p = prompt(tty, "Enter passphrase: ");
  if (confirm && !p.empty()) {
    std::string again = prompt(tty, "Confirm passphrase: ");
    if (again != p) {
      ::close(tty);
      throw usage_error("the passphrases do not match");
    }
  }
  ::close(tty);
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

#include "checksum_cmd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <hetpipe/error.hpp>

namespace hetpipe::cli {

namespace {

bool is_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// A name as sha256sum prints it: with a backslash, a newline or a carriage return in it, those
// escaped and the whole line marked by a leading backslash.
std::string printed_name(const std::string& name, bool& escaped) {
  escaped = name.find_first_of("\\\n\r") != std::string::npos;
  if (!escaped) return name;
  std::string esc;
  for (char c : name) {
    if (c == '\\')
      esc += "\\\\";
    else if (c == '\n')
      esc += "\\n";
    else if (c == '\r')
      esc += "\\r";
    else
      esc += c;
  }
  return esc;
}

}  // namespace

std::string sum_line(const std::string& hex, const std::string& name) {
  bool escaped = false;
  const std::string printed = printed_name(name, escaped);
  return (escaped ? "\\" : "") + hex + "  " + printed;
}

std::optional<sum_entry> parse_sum_line(const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  bool escaped = false;
  if (!line.empty() && line[0] == '\\') {
    escaped = true;
    line.erase(0, 1);
  }
  const std::size_t sp = line.find(' ');
  if (sp == std::string::npos || sp + 2 > line.size()) return std::nullopt;
  std::string hex = line.substr(0, sp);
  if (!is_hex(hex) || hex.size() % 2 != 0) return std::nullopt;
  const char mode = line[sp + 1];
  if (mode != ' ' && mode != '*') return std::nullopt;
  std::string name = line.substr(sp + 2);
  if (name.empty() || name.find('\0') != std::string::npos) return std::nullopt;
  if (escaped) {
    std::string un;
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (name[i] != '\\') {
        un += name[i];
        continue;
      }
      if (++i == name.size()) return std::nullopt;
      if (name[i] == '\\')
        un += '\\';
      else if (name[i] == 'n')
        un += '\n';
      else if (name[i] == 'r')
        un += '\r';
      else
        return std::nullopt;
    }
    name = un;
  }
  for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return sum_entry{hex, name, 0};
}

std::array<std::uint8_t, 32> read_key_file(const std::string& path,
                                           const std::atomic<bool>* cancel) {
  const std::string bytes = read_input(path, cancel, 33);  // one more: "more" than 32
  if (bytes.size() != 32)
    throw input_error(
        path, "a BLAKE3 key file must hold exactly 32 bytes (this one has " +
                  (bytes.size() > 32 ? std::string("more") : std::to_string(bytes.size())) + ")");
  std::array<std::uint8_t, 32> key{};
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

int check_sums(const std::string& sum_file, const checksum_spec& spec, const options& opt,
               const check_output& how, std::ostream& out) {
  validate(spec);  // the options first, whatever the sum file holds
  const std::size_t want_hex = spec.algo == checksum_algo::blake3 ? 2 * spec.length : 8;
  std::vector<sum_entry> entries;
  std::size_t malformed = 0, unreadable = 0, failed = 0, n = 0;
  // The list may be a pipe or a terminal: a first signal stops the wait for its lines.
  read_lines(sum_file, opt.cancel, [&](std::string& line) {
    ++n;
    if (line.empty() || line == "\r" || line[0] == '#') return;  // a blank line, CRLF too
    auto e = parse_sum_line(line);
    if (!e || e->hex.size() != want_hex) {
      ++malformed;
      if (!how.status)
        std::fprintf(
            stderr, "hetpipe: %s:%zu: not a %s checksum line ('HEX  NAME', %zu hex digits)\n",
            sum_file.c_str(), n, std::string(checksum_algo_name(spec.algo)).c_str(), want_hex);
      return;
    }
    e->line = n;
    entries.push_back(std::move(*e));
  });
  if (entries.empty()) {
    std::fprintf(stderr, "hetpipe: %s: no properly formatted checksum lines found\n",
                 sum_file.c_str());
    return 1;
  }
  // Files that cannot be opened are reported and left out of the job; the rest go in one job.
  std::vector<std::string> names;
  std::vector<std::size_t> which;
  std::vector<bool> readable(entries.size(), false), missing(entries.size(), false);
  // One line on stderr for a listed file that cannot be verified, named as its output line shows
  // it: a name with a newline stays on one line.
  const auto cannot_read = [](const std::string& name, const std::string& reason) {
    bool escaped = false;
    const std::string shown = printed_name(name, escaped);
    std::fprintf(stderr, "hetpipe: %s%s: %s\n", escaped ? "\\" : "", shown.c_str(), reason.c_str());
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& name = entries[i].name;
    // "-" is standard input, as in sha256sum's lines: unreadable where it is closed or is the
    // sum file itself.
    if (name == "-" && (sum_file == "-" || how.stdin_closed || how.stdin_is_key)) {
      cannot_read(name, sum_file == "-"    ? "standard input is the sum file"
                        : how.stdin_is_key ? "standard input held the key"
                                           : "standard input is closed");
      continue;
    }
    // stat first: a folder opens but cannot be read, and opening a FIFO would wait for its writer
    // (FIFOs and devices go to the job unopened).
    struct stat st {};
    const bool stdin_entry = name == "-";
    int err = stdin_entry ? 0 : ::stat(name.c_str(), &st) != 0 ? errno : 0;
    if (!err && !stdin_entry && S_ISDIR(st.st_mode)) err = EISDIR;
    if (!err && !stdin_entry && S_ISREG(st.st_mode)) {
      const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0)
        err = errno;
      else
        ::close(fd);
    }
    if (err == ENOENT && how.ignore_missing) {
      missing[i] = true;
      continue;
    }
    if (err) {
      cannot_read(name, errno_reason(err));
      continue;
    }
    readable[i] = true;
    names.push_back(entries[i].name);
    which.push_back(i);
  }
  // A file that fails while it is read (an I/O error, a file cut short) fails its own line, as
  // with sha256sum -c: it is reported and left out, and the job runs again over the others (a
  // rare case; the first run's work on them is lost).
  std::vector<checksum_result> results;
  while (!names.empty()) {
    try {
      results = checksum(names, spec, opt);
      break;
    } catch (const io_error& e) {
      const auto it = std::find(names.begin(), names.end(), e.file());
      if (it == names.end()) throw;  // not one file's (standard output, say)
      const auto leave_out = [&](std::size_t k, const std::string& reason) {
        cannot_read(names[k], reason);
        readable[which[k]] = false;
        names.erase(names.begin() + static_cast<std::ptrdiff_t>(k));
        which.erase(which.begin() + static_cast<std::ptrdiff_t>(k));
      };
      leave_out(static_cast<std::size_t>(it - names.begin()), e.reason());
      // Standard input cannot be read a second time: the failed run may have taken it.
      for (std::size_t k = names.size(); k-- > 0;)
        if (names[k] == "-") leave_out(k, "standard input cannot be read again");
    }
  }
  std::vector<const checksum_result*> by_entry(entries.size(), nullptr);
  for (std::size_t k = 0; k < which.size(); ++k) by_entry[which[k]] = &results[k];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (missing[i]) continue;
    std::string line;
    bool escaped = false;
    const std::string name = printed_name(entries[i].name, escaped);
    if (!readable[i]) {
      ++unreadable;
      line = name + ": FAILED open or read\n";
    } else {
      const bool ok = to_hex(by_entry[i]->digest) == entries[i].hex;
      if (!ok) ++failed;
      if (!ok || !how.quiet) line = name + (ok ? ": OK\n" : ": FAILED\n");
    }
    if (!line.empty() && !how.status) out << (escaped ? "\\" : "") << line;
  }
  out.flush();
  const bool none_verified = how.ignore_missing && names.empty();
  if (none_verified && !how.status)
    std::fprintf(stderr, "hetpipe: %s: no file was verified\n", sum_file.c_str());
  if (how.status) return malformed || unreadable || failed || none_verified ? 1 : 0;
  if (malformed)
    std::fprintf(stderr, "hetpipe: WARNING: %zu line%s improperly formatted\n", malformed,
                 malformed == 1 ? " is" : "s are");
  if (unreadable)
    std::fprintf(stderr, "hetpipe: WARNING: %zu listed file%s could not be read\n", unreadable,
                 unreadable == 1 ? "" : "s");
  if (failed)
    std::fprintf(stderr, "hetpipe: WARNING: %zu computed checksum%s did NOT match\n", failed,
                 failed == 1 ? "" : "s");
  return malformed || unreadable || failed || none_verified ? 1 : 0;
}

}  // namespace hetpipe::cli

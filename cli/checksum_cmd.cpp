#include "checksum_cmd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include <hetpipe/error.hpp>

#include "format.hpp"

namespace hetpipe::cli {

namespace {

bool is_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// A sum line to `out`, without its newline: hex(out) writes the digest's hex.
template <class Hex>
void put_sum_line(std::ostream& out, Hex&& hex, const std::string& name) {
  bool escaped = false;
  const std::string printed = printed_name(name, escaped);
  if (escaped) out << '\\';
  hex(out);
  out << "  " << printed;
}

}  // namespace

std::string sum_line(const std::string& hex, const std::string& name) {
  std::ostringstream line;
  put_sum_line(
      line, [&](std::ostream& o) { o << hex; }, name);
  return line.str();
}

std::optional<sum_entry> parse_sum_line(const std::string& raw, bool* bad_escape) {
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
      if (++i == name.size() || (name[i] != '\\' && name[i] != 'n' && name[i] != 'r')) {
        if (bad_escape) *bad_escape = true;
        return std::nullopt;
      }
      un += name[i] == 'n' ? '\n' : name[i] == 'r' ? '\r' : '\\';
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

namespace {

// Clears the progress line (it has no newline: a line printed on its terminal would follow its
// text).
void clear_progress_line() {
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

// Whether a progress line is drawn on a terminal as stderr: an error printed there mid-job clears
// it first.
bool progress_on_terminal(const options& opt) {
  return opt.progress && ::isatty(STDERR_FILENO) != 0;
}

// Holds stderr's stdio lock (recursive), which the progress monitor's writes take: it draws
// nothing between a clear of its line and the lines that follow.
struct stderr_held {
  stderr_held() { ::flockfile(stderr); }
  ~stderr_held() { ::funlockfile(stderr); }
  stderr_held(const stderr_held&) = delete;
  stderr_held& operator=(const stderr_held&) = delete;
};

// An error line on stderr mid-job, the progress line cleared first where it is on a terminal.
void error_line(bool clear_progress, const std::string& file, const std::string& reason) {
  const stderr_held held;
  if (clear_progress) clear_progress_line();
  print_error(file, reason);
}

// Whether a progress line on stderr shares a terminal with the lines on stdout.
bool progress_shares_terminal(const options& opt) {
  return progress_on_terminal(opt) && ::isatty(STDOUT_FILENO) != 0;
}

// Lines for items 0, 1, ... in order, each as soon as it and every item before it are known:
// emit(i) prints item i; settle() is called, under `mutex`, whenever an item may have become
// known. Where the progress line shares a terminal with `out`, it is cleared and the lines are
// flushed at once; a pipe or file gets them within 100 ms (a thread flushes what waits in stdio's
// buffer), not only in 4 KiB blocks, and without a write per line.
class in_order {
 public:
  in_order(std::size_t n, std::function<bool(std::size_t)> known,
           std::function<void(std::size_t)> emit, std::ostream& out, bool share_terminal,
           std::mutex& mutex)
      : n_(n),
        known_(std::move(known)),
        emit_(std::move(emit)),
        out_(out),
        share_terminal_(share_terminal),
        mutex_(mutex) {
    if (share_terminal_) return;
    try {
      flusher_ = std::thread([this] { flush_loop(); });
    } catch (const std::system_error&) {
      // No thread (a limit on processes): lines go out in stdio's blocks and at the end.
    } catch (const std::bad_alloc&) {  // (its state)
    }
  }
  ~in_order() { finish(); }
  // Stops the flushing thread (the caller then has `out` to itself); not under the mutex.
  void finish() {
    if (!flusher_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    flusher_.join();
  }
  // Whether every item was printed (checksum_files reports each input once).
  bool done() const { return next_ == n_; }
  in_order(const in_order&) = delete;
  in_order& operator=(const in_order&) = delete;

  void settle() {
    if (next_ >= n_ || !known_(next_)) return;
    if (!share_terminal_) {
      while (next_ < n_ && known_(next_)) emit_(next_++);
      unflushed_ = true;
      return;
    }
    const stderr_held held;  // no progress drawn until the lines are out
    clear_progress_line();
    while (next_ < n_ && known_(next_)) emit_(next_++);
    out_.flush();
  }

 private:
  void flush_loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      if (unflushed_) {
        out_.flush();
        unflushed_ = false;
      }
    }
  }

  std::size_t n_;
  std::function<bool(std::size_t)> known_;
  std::function<void(std::size_t)> emit_;
  std::ostream& out_;
  bool share_terminal_;
  std::mutex& mutex_;
  std::size_t next_ = 0;    // items before it are printed
  bool unflushed_ = false;  // lines printed since the last flush
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread flusher_;  // last: started once the members it reads are made
};

}  // namespace

int print_sums(const std::vector<std::string>& paths, const checksum_spec& spec, const options& opt,
               const sum_output& how, std::ostream& out) {
  validate(spec);  // the options first, whatever the paths hold
  const auto one_for_raw = [&](std::size_t n) {
    if (how.raw && n != 1)
      throw usage_error("--raw writes one digest: give one input, not " + std::to_string(n));
  };
  one_for_raw(paths.size());
  // A path that does not exist, or a folder without -r, is reported and the others go on: in
  // order, names[i] with reason[i] set when it cannot be digested. Nothing is opened ahead: a
  // file that cannot be read fails the job, which runs again without it (checksum_files).
  std::vector<std::string> names, reason;
  std::vector<bool> once;
  bool any_failed = false;
  for (auto& e : expand_paths_each(paths, how.recursive)) {
    any_failed = any_failed || !e.error.empty();
    names.push_back(std::move(e.path));
    reason.push_back(std::move(e.error));
    once.push_back(e.once);
  }
  if (!any_failed) one_for_raw(names.size());  // a folder's files with -r
  std::vector<std::string> readable;
  std::vector<bool> readable_once;
  std::vector<std::size_t> at;  // readable[k] is names[at[k]]
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!reason[i].empty()) continue;
    readable.push_back(names[i]);
    readable_once.push_back(once[i]);
    at.push_back(i);
  }
  // Each name is printed, in order, once it and every name before it are known: a digest as soon
  // as its file is done (a long job shows its first files' digests while it runs, and an interrupt
  // keeps them), a failure as a line on stderr in its place. --json is one array, at the end.
  // Each digest is let go once printed: with -l 64M a digest is 64 MiB and its hex 128 MiB.
  std::mutex mutex;  // checksum_files' calls come from lanes, and from this thread between jobs
  std::vector<std::optional<checksum_result>> got(names.size());
  nlohmann::json all = nlohmann::json::array();
  const bool progress_tty = progress_on_terminal(opt);
  const auto emit = [&](std::size_t i) {
    if (!reason[i].empty()) {
      any_failed = true;
      out.flush();  // in order with the lines before it, where both streams meet
      error_line(progress_tty, names[i], reason[i]);
      if (how.json)
        all.push_back({{"file", names[i]},
                       {"algorithm", std::string(checksum_algo_name(spec.algo))},
                       {"error", reason[i]}});
      return;
    }
    const checksum_result& g = *got[i];
    if (how.json) {
      all.push_back(to_json(g, spec));
    } else if (how.raw) {
      out.write(reinterpret_cast<const char*>(g.digest.data()),
                static_cast<std::streamsize>(g.digest.size()));
    } else {
      const auto hex = [&d = g.digest](std::ostream& o) {  // in pieces: one copy of 64 KiB each
        constexpr std::size_t piece = 1 << 16;
        for (std::size_t at = 0; at < d.size(); at += piece)
          o << to_hex({d.begin() + at, d.begin() + std::min(d.size(), at + piece)});
      };
      if (how.no_names)
        hex(out);
      else
        put_sum_line(out, hex, g.file);
      out << '\n';
    }
    got[i].reset();
  };
  // An item is known once it has a result or a reason (a printed digest is let go, but by then
  // the printer has gone past it).
  in_order printer(
      names.size(), [&](std::size_t i) { return got[i].has_value() || !reason[i].empty(); }, emit,
      out, !how.json && progress_shares_terminal(opt), mutex);
  {
    std::lock_guard lock(mutex);
    printer.settle();  // the paths that failed before any job, up to the first file
  }
  checksum_files(
      readable, spec, opt,
      [&](std::size_t k, std::optional<checksum_result>&& r, const std::string& why) {
        std::lock_guard lock(mutex);
        const std::size_t i = at[k];
        if (r)
          got[i] = std::move(r);
        else
          reason[i] = why;
        printer.settle();
      },
      readable_once);
  printer.finish();
  if (!printer.done()) throw std::logic_error("checksum: an input had neither digest nor error");
  if (how.json) out << json_text(all) << "\n";
  out.flush();
  return any_failed ? 1 : 0;
}

int check_sums(const std::string& sum_file, const checksum_spec& spec, const options& opt,
               const check_output& how, std::ostream& out) {
  validate(spec);  // the options first, whatever the sum file holds
  const std::size_t want_hex = spec.algo == checksum_algo::blake3 ? 2 * spec.length : 8;
  std::vector<sum_entry> entries;
  std::size_t malformed = 0, unreadable = 0, failed = 0, n = 0;
  // The list may be a pipe or a terminal: a first signal stops the wait for its lines. A list
  // that cannot be read (missing, a folder) is reported and fails alone: the caller goes on with
  // the next, as sha256sum -c does.
  try {
    read_lines(sum_file, opt.cancel, [&](std::string& line) {
      ++n;
      if (line.empty() || line == "\r" || line[0] == '#') return;  // a blank line, CRLF too
      bool bad_escape = false;
      auto e = parse_sum_line(line, &bad_escape);
      if (!e || e->hex.size() != want_hex) {
        ++malformed;
        if (!how.status)
          print_error(sum_file + ":" + std::to_string(n),
                      bad_escape ? std::string("a backslash escape in the name other than "
                                               "\\\\, \\n or \\r")
                                 : "not a " + std::string(checksum_algo_name(spec.algo)) +
                                       " checksum line ('HEX  NAME', " + std::to_string(want_hex) +
                                       " hex digits)");
        return;
      }
      e->line = n;
      entries.push_back(std::move(*e));
    });
  } catch (const io_error& e) {
    print_error(e.file(), e.reason());
    return 1;
  } catch (const input_error& e) {
    print_error(e.file(), e.reason());
    return 1;
  }
  if (entries.empty()) {
    print_error(sum_file, "no properly formatted checksum lines found");
    return 1;
  }
  // Files that cannot be opened are reported and left out of the job; the rest go in one job.
  std::vector<std::string> names;
  std::vector<bool> once;
  std::vector<std::size_t> which;
  std::vector<bool> readable(entries.size(), false), missing(entries.size(), false);
  std::vector<std::string> reason(entries.size());  // why entry i could not be read
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& name = entries[i].name;
    // "-" is standard input, as in sha256sum's lines: unreadable where it is closed or is the
    // sum file itself.
    if (name == "-" && (sum_file == "-" || how.stdin_closed || how.stdin_is_key)) {
      reason[i] = sum_file == "-"    ? "standard input is the sum file"
                  : how.stdin_is_key ? "standard input held the key"
                                     : "standard input is closed";
      continue;
    }
    bool read_once = false;
    const int err = input_open_error(name, &read_once);
    if (err == ENOENT && how.ignore_missing) {
      missing[i] = true;
      continue;
    }
    if (err) {
      reason[i] = errno_reason(err);
      continue;
    }
    names.push_back(entries[i].name);
    once.push_back(read_once);
    which.push_back(i);
  }
  // Each digest compared as it comes, and let go (64 MiB ones with -l 64M). Each listed file's
  // line is printed in the list's order as soon as it and those before it are known, as
  // sha256sum -c prints them: a long check shows its first files' lines while it runs, and an
  // interrupt keeps them. A file that cannot be read has its error on stderr in its place, then
  // "FAILED open or read".
  std::mutex mutex;  // checksum_files' calls come from lanes, and from this thread between jobs
  std::vector<char> matches(entries.size(), 0);
  std::size_t verified = 0;
  const bool progress_tty = progress_on_terminal(opt);
  const auto emit = [&](std::size_t i) {
    if (missing[i]) return;
    if (!reason[i].empty()) {
      out.flush();  // in order with the lines before it, where both streams meet
      error_line(progress_tty, entries[i].name, reason[i]);
    }
    std::string line;
    bool escaped = false;
    const std::string name = printed_name(entries[i].name, escaped);
    if (!readable[i]) {
      ++unreadable;
      line = name + ": FAILED open or read\n";
    } else {
      const bool ok = matches[i] != 0;
      if (!ok) ++failed;
      if (!ok || !how.quiet) line = name + (ok ? ": OK\n" : ": FAILED\n");
    }
    if (!line.empty() && !how.status) out << (escaped ? "\\" : "") << line;
    if (!reason[i].empty()) out.flush();  // its two lines together, before what stderr says next
  };
  in_order printer(
      entries.size(),
      [&](std::size_t i) { return missing[i] || readable[i] || !reason[i].empty(); }, emit, out,
      !how.status && progress_shares_terminal(opt), mutex);
  {
    std::lock_guard lock(mutex);
    printer.settle();  // the files that cannot be opened, up to the first that can
  }
  checksum_files(
      names, spec, opt,
      [&](std::size_t k, std::optional<checksum_result>&& r, const std::string& why) {
        std::lock_guard lock(mutex);
        const std::size_t i = which[k];
        readable[i] = r.has_value();
        verified += r.has_value();
        if (r)
          matches[i] = to_hex(r->digest) == entries[i].hex;
        else
          reason[i] = why;
        printer.settle();
      },
      once);
  printer.finish();
  if (!printer.done()) throw std::logic_error("checksum: an input had neither digest nor error");
  out.flush();
  const bool none_verified = how.ignore_missing && verified == 0;
  if (none_verified && !how.status) print_error(sum_file, "no file was verified");
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

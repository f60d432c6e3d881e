// `hetpipe checksum`: digests in the format of b3sum / sha256sum, and --check.
#pragma once

#include <array>
#include <atomic>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/checksum.hpp>

namespace hetpipe::cli {

// "<hex>  <name>"; a name holding '\\' or a newline is escaped (\\ and \n) and the line starts
// with a backslash, as b3sum and sha256sum do.
std::string sum_line(const std::string& hex, const std::string& name);

struct sum_entry {
  std::string hex;   // lower case
  std::string name;  // unescaped
  std::size_t line = 0;
};

// Parses one line of a sum file; nullopt when it is not "<hex>  <name>" (or "<hex> *<name>"), or
// the name holds a NUL byte. A line that starts with a backslash has its name escaped (\\, \n,
// \r); nullopt for any other escape, and *bad_escape (when given) set.
std::optional<sum_entry> parse_sum_line(const std::string& line, bool* bad_escape = nullptr);

// Reads the 32-byte key of keyed BLAKE3 from a file (exactly 32 bytes; a FIFO's wait ends when
// *cancel is set). Throws input_error.
std::array<std::uint8_t, 32> read_key_file(const std::string& path,
                                           const std::atomic<bool>* cancel);

// How digests are printed.
struct sum_output {
  bool recursive = false;  // -r: folders are walked (else a folder is an error of its own)
  bool json = false;       // [{"file", "algorithm", "keyed", "digest", "bytes"}], or "error"
  bool raw = false;        // the one input's digest as bytes
  bool no_names = false;   // the digests alone
};

// The digests of the files `paths` name, printed as b3sum prints them (or as `how` says) on
// `out`, in order, each as soon as it and those before it are known (--json: at the end). As with
// b3sum and sha256sum, a path that cannot be read (missing, a folder without -r, unreadable,
// failing midway) is reported on stderr in its place, "hetpipe: NAME: reason", and the others
// are still printed (in --json, an object with "error" in its place); the result is 1 then,
// else 0. Throws usage_error for a spec checksum() refuses, or --raw with other than one
// input, before reading.
int print_sums(const std::vector<std::string>& paths, const checksum_spec& spec, const options& opt,
               const sum_output& how, std::ostream& out);

// How --check reports, as sha256sum -c's options of the same names say.
struct check_output {
  bool quiet = false;           // no "name: OK" lines
  bool status = false;          // nothing on `out`, and no WARNING summary: the exit status says
  bool ignore_missing = false;  // a listed file that does not exist is neither reported nor failed
  bool stdin_closed = false;    // a listed "-" cannot be read (nor when sum_file is "-")
  bool stdin_is_key = false;    // nor here: standard input held the key (--keyed -)
};

// --check: verifies every file listed in sum_file; prints "name: OK" / "name: FAILED" (and
// "FAILED open or read", for a file that cannot be opened or fails while it is read: the others
// are still verified) on `out`, problems on stderr. Returns the exit status (0 all OK, 1
// otherwise: a file failed, could not be read, a line was malformed, or, with ignore_missing,
// no file was verified; also when sum_file itself cannot be read, which is reported on stderr).
// Throws usage_error for a spec checksum() refuses, before reading.
int check_sums(const std::string& sum_file, const checksum_spec& spec, const options& opt,
               const check_output& how, std::ostream& out);

}  // namespace hetpipe::cli

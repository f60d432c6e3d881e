#include "count_cmd.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <ostream>

#include <hetpipe/checksum.hpp>
#include <hetpipe/error.hpp>

#include "format.hpp"

namespace hetpipe::cli {

std::string count_line(const text_counts& c, const count_output& how, int width,
                       const std::string& name) {
  std::string line;
  const auto column = [&](bool on, std::uint64_t v) {
    if (!on) return;
    const std::string digits = std::to_string(v);
    if (!line.empty()) line += ' ';
    line.append(digits.size() < static_cast<std::size_t>(width) ? width - digits.size() : 0, ' ');
    line += digits;
  };
  column(how.lines, c.lines);
  column(how.words, c.words);
  column(how.chars, c.chars);
  column(how.bytes, c.bytes);
  if (!name.empty()) {
    bool escaped = false;
    const std::string printed = printed_name(name, escaped);
    line += ' ';
    if (escaped) line += '\\';
    line += printed;
  }
  return line;
}

int print_counts(const std::vector<std::string>& paths, const options& opt, const count_output& how,
                 std::ostream& out) {
  const bool named = !paths.empty();
  std::vector<std::string> given = paths;
  if (given.empty()) given.push_back("-");
  // Every path's outcome in its place: a file's counts, or why it could not be read.
  struct entry {
    std::string file, error;
    bool regular = false;
    text_counts counts;
  };
  std::vector<entry> entries;
  std::vector<std::string> files;
  std::vector<std::size_t> where;  // entries index of each of `files`
  for (auto& e : expand_paths_each(given, how.recursive)) {
    entry en{e.path, e.error};
    if (en.error.empty()) {
      bool once = false;
      if (const int err = input_open_error(e.path, &once, true)) en.error = errno_reason(err);
      struct stat st {};
      en.regular = e.path != "-" && ::stat(e.path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    }
    if (en.error.empty()) {
      where.push_back(entries.size());
      files.push_back(e.path);
    }
    entries.push_back(std::move(en));
  }
  count_spec spec;
  spec.chars = how.chars || how.json;
  const auto results = count_text(files, spec, opt);
  for (std::size_t k = 0; k < results.size(); ++k) entries[where[k]].counts = results[k].counts;

  // wc's widths: the digits of the regular files' total size, at least 7 when another kind of
  // input is counted (a pipe's size is not known ahead); 1 for a single number.
  text_counts total;
  std::uint64_t regular_bytes = 0;
  bool other = false;
  for (const entry& e : entries) {
    if (!e.error.empty()) continue;
    total.lines += e.counts.lines, total.words += e.counts.words;
    total.chars += e.counts.chars, total.bytes += e.counts.bytes;
    if (e.regular)
      regular_bytes += e.counts.bytes;
    else
      other = true;
  }
  int width = 1;
  for (std::uint64_t v = regular_bytes; v >= 10; v /= 10) ++width;
  if (other) width = std::max(width, 7);
  const int columns = int{how.lines} + int{how.words} + int{how.chars} + int{how.bytes};
  if (entries.size() == 1 && columns == 1) width = 1;

  int rc = 0;
  if (how.json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const entry& e : entries) {
      if (!e.error.empty()) {
        doc.push_back({{"file", e.file}, {"error", e.error}});
        rc = 1;
        continue;
      }
      doc.push_back({{"file", e.file},
                     {"lines", e.counts.lines},
                     {"words", e.counts.words},
                     {"chars", e.counts.chars},
                     {"bytes", e.counts.bytes}});
    }
    out << json_text(doc) << "\n";
    return rc;
  }
  for (const entry& e : entries) {
    if (!e.error.empty()) {
      out.flush();  // the lines before it first, as wc's order on a terminal
      print_error(e.file, e.error);
      rc = 1;
      continue;
    }
    out << count_line(e.counts, how, width, named ? e.file : std::string()) << "\n";
  }
  if (entries.size() > 1) out << count_line(total, how, width, "total") << "\n";
  return rc;
}

}  // namespace hetpipe::cli

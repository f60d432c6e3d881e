// Exact column statistics of CSV inputs: each file's first record read here (its header, or its
// first record), then a job in lines framing whose CPU and GPU lanes parse each chunk's records
// into exact accumulators (host/csv.hpp, cuda/csv_kernels.hpp). A chunk whose start lies inside a
// quoted field is parsed again at its merge (csv_partial), so any cut into chunks, any thread
// count, any device gives the same sums; a bad record names its line, the first in the file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "host/csv.hpp"
#if HETPIPE_WITH_CUDA
#include "cuda/csv_kernels.hpp"
#include "cuda/runtime.hpp"
#include "cuda/stats_kernels.hpp"
#endif
#include "pipeline/src/engine.hpp"
#include "pipeline/src/paths.hpp"
#include "pipeline/src/stats_partial.hpp"

namespace hetpipe::detail {

namespace {

namespace csv = host::csv;

// The longest line read (and the framing's max_record).
constexpr std::size_t max_line = std::size_t{1} << 20;

// A bad record, found by a lane: its byte offset in the input's data region; the line number is
// worked out once the job has stopped.
class csv_record_error : public input_error {
 public:
  csv_record_error(const std::string& file, std::size_t input, std::uint64_t offset,
                   const std::string& detail)
      : input_error(file, detail), input(input), offset(offset) {}
  std::size_t input;
  std::uint64_t offset;
};

struct csv_plan {
  std::string file;
  csv::layout layout;
  std::vector<std::string> names;
  // A regular file's offset where the job's records start: after any byte-order mark, blank lines
  // and header line.
  std::uint64_t data_offset = 0;
  bool regular = true;  // a regular file (not standard input, a pipe or a device)
  int fd = -1;          // a stream's descriptor, owned here
  std::unique_ptr<stats_partial> leading;  // a stream's first line when it was a record
};

// What is wrong with a record, its column named where a field is not a number:
// `column 3 ("price"): 'n/a' is not a number`.
std::string describe(const csv_plan& p, const csv::bad_record& bad) {
  if (!bad.not_a_number) return bad.reason;
  const auto it = std::find(p.layout.pick.begin(), p.layout.pick.end(), bad.field);
  const std::string number = std::to_string(bad.field + 1);
  const std::string& name = p.names[static_cast<std::size_t>(it - p.layout.pick.begin())];
  return "column " + (name == number ? number : number + " (\"" + name + "\")") + ": " + bad.reason;
}

// A chunk's result, or an input's running total. A lane parses its chunk as if it began outside any
// quoted field; whether it did is known only when the chunks before it have been merged, in order:
// when the one before ended inside a quoted field (an open record), the chunk is parsed again at
// its merge, joined to that record's text. So a bad record is kept here, not thrown, until the
// merge knows the chunk's parse was the right one: the error is then also the first in the file.
struct csv_partial final : stats_partial {
  std::size_t input = 0;
  std::uint64_t offset = 0;  // the chunk's, in the input's data region
  std::size_t size = 0;
  std::optional<csv::bad_record> bad;  // `at` in the data region
  std::string bad_text;                // describe(bad)
  // The text of a last record still inside a quoted field, from `open_at` on (empty: none).
  std::string open;
  std::uint64_t open_at = 0;
  std::string copy;  // a stream's chunk: its bytes, which cannot be read again
  // Where the parse from the chunk's start met a bad record, the lane tries the other start too:
  // inside a quoted field, which then ends at the first line break after an odd number of quotes.
  // `head` is the text before that line break (the end of the record the chunk before left
  // open), `inside` the rest's result. The merge takes it when the chunk before did end open.
  std::string head;
  std::unique_ptr<csv_partial> inside;

  // This chunk's outcome becomes `other`'s (a parse of it from the right start).
  void take_outcome(csv_partial& other) {
    columns.swap(other.columns);
    text.swap(other.text);
    bad = std::move(other.bad);
    bad_text = std::move(other.bad_text);
    open = std::move(other.open);
    open_at = other.open_at;
  }
};

// The records of data[0..size), at `offset` in input `input`'s data region, as csv_partial says;
// with `both_starts`, the other start too where this one met a bad record.
std::unique_ptr<csv_partial> parse_text(const csv_plan& p, std::size_t input, std::uint64_t offset,
                                        const char* data, std::size_t size,
                                        bool both_starts = false) {
  auto out = std::make_unique<csv_partial>();
  out->input = input;
  out->columns.resize(p.layout.pick.size());
  out->text.resize(p.layout.pick.size());
  out->offset = offset;
  out->size = size;
  std::size_t open_at = size;
  if (auto bad =
          csv::accumulate(data, size, p.layout, out->columns.data(), out->text.data(), &open_at)) {
    out->bad_text = describe(p, *bad);
    bad->at += offset;
    out->bad = std::move(bad);
  } else if (open_at < size && size - open_at > max_line) {
    // Not thrown here either: a chunk parsed from a wrong start may see one.
    out->bad = csv::bad_record{
        offset + open_at, 0, false,
        "a record longer than " + std::to_string(max_line) + " bytes (a quoted field not closed?)"};
    out->bad_text = out->bad->reason;
  } else if (open_at < size) {
    out->open.assign(data + open_at, size - open_at);
    out->open_at = offset + open_at;
  }
  if (both_starts && out->bad) {
    std::size_t quotes = 0;
    for (std::size_t i = 0; i < size; ++i) {
      quotes += data[i] == '"';
      if (data[i] == '\n' && quotes % 2 != 0) {
        out->head.assign(data, i);
        out->inside = parse_text(p, input, offset + i + 1, data + i + 1, size - i - 1);
        break;
      }
    }
  }
  return out;
}

// Bytes [offset, offset + size) of a regular file's data region, read again.
void read_again(const csv_plan& p, std::uint64_t offset, char* to, std::size_t size) {
  const int fd = ::open(p.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error(p.file, errno_reason(errno), -errno);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got =
        ::pread(fd, to + done, size - done, static_cast<off_t>(p.data_offset + offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int err = got < 0 ? errno : 0;
      ::close(fd);
      throw io_error(p.file, err ? errno_reason(err) : "file shrank while reading", -err);
    }
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
}

// Per input: chunks GPU lanes took, and those they handed back to the host.
struct gpu_counts {
  explicit gpu_counts(std::size_t inputs) : parsed(inputs), on_host(inputs) {}
  std::vector<std::atomic<std::uint64_t>> parsed, on_host;
};

class csv_op final : public reduce_op {
 public:
  csv_op(const std::vector<csv_plan>& plans, gpu_counts& counts) : plans_(plans), counts_(counts) {}
  framing frame(std::size_t) const override { return framing::lines(max_line); }
  std::unique_ptr<partial> identity(std::size_t i) const override {
    auto p = std::make_unique<csv_partial>();
    p->columns.resize(plans_[i].layout.pick.size());
    p->text.resize(plans_[i].layout.pick.size());
    p->fresh = true;
    p->input = i;
    return p;
  }
  std::unique_ptr<partial> host(const chunk_info& info,
                                std::span<const std::byte> data) const override {
    const csv_plan& p = plans_[info.input];
    const auto* text = reinterpret_cast<const char*>(data.data());
    auto out = parse_text(p, info.input, info.offset, text, data.size(), true);
    if (!p.regular) out->copy.assign(text, data.size());
    return out;
  }
  void merge(partial& total, partial& next) const override {
    auto& t = static_cast<csv_partial&>(total);
    auto& n = static_cast<csv_partial&>(next);
    if (!t.open.empty() && n.inside) {
      // The chunk began inside the quoted field of the record `t` left open, and its lane parsed
      // it from there too: that record, ended by the chunk's head, and then the lane's rest.
      const csv_plan& p = plans_[t.input];
      const std::string record = std::move(t.open) + n.head + "\n";
      t.open.clear();
      auto joined = parse_text(p, t.input, t.open_at, record.data(), record.size());
      if (joined->bad) throw csv_record_error(p.file, t.input, joined->bad->at, joined->bad_text);
      merge_stats(t, *joined);
      std::unique_ptr<csv_partial> rest = std::move(n.inside);
      n.take_outcome(*rest);
    } else if (!t.open.empty()) {
      // The chunk began inside the quoted field of the record `t` left open: its own parse
      // assumed otherwise. The record's text and the chunk's bytes, parsed again.
      const csv_plan& p = plans_[t.input];
      std::string joined = std::move(t.open);
      t.open.clear();
      if (!p.regular) {
        joined += n.copy;
      } else {
        const std::size_t start = joined.size();
        joined.resize(start + n.size);
        read_again(p, n.offset, joined.data() + start, n.size);
      }
      n.take_outcome(*parse_text(p, t.input, t.open_at, joined.data(), joined.size()));
    }
    if (n.bad) throw csv_record_error(plans_[t.input].file, t.input, n.bad->at, n.bad_text);
    merge_stats(t, n);
    t.open = std::move(n.open);
    t.open_at = n.open_at;
  }
  std::unique_ptr<device_reducer> make_device_reducer(int device, std::size_t max_chunk,
                                                      unsigned buffers) const override;

 private:
  const std::vector<csv_plan>& plans_;
  gpu_counts& counts_;
};

#if HETPIPE_WITH_CUDA
// A GPU lane's half: the chunk's records parsed into a rows x columns array of doubles
// (cuda/csv_kernels.hpp) and reduced by the stats kernel into the exact bins the CPU lanes' sums
// equal. A chunk the device hands back (a bad record, a number it cannot decide, a quoted line
// break) is copied back and parsed here, by the CPU lanes' code: the same values, or the same
// error.
class csv_device final : public device_reducer {
 public:
  csv_device(const std::vector<csv_plan>& plans, gpu_counts& counts, int device,
             std::size_t max_chunk, unsigned buffers)
      : plans_(plans), counts_(counts), side_(device) {
    std::size_t values = 8, cols = 1, columns = 1;
    for (const csv_plan& p : plans) {
      const std::size_t c = p.layout.pick.size();
      values = std::max(values, cuda::csv_max_records(max_chunk, p.layout.fields) * c * 8);
      cols = std::max(cols, c);
      columns = std::max(columns, p.layout.fields + c);
    }
    const auto table = cuda::decimal::make_pow10_table();
    const std::size_t table_bytes = table.size() * sizeof table[0];
    h_pow10_ = cuda::pinned_buffer(table_bytes);
    std::memcpy(h_pow10_.get(), table.data(), table_bytes);
    d_pow10_ = cuda::device_buffer(table_bytes);
    scratch_bytes_ = cuda::csv_scratch_bytes(max_chunk);
    for (unsigned b = 0; b < buffers; ++b) {
      slot s;
      s.d_scratch = cuda::device_buffer(scratch_bytes_);
      s.d_values = cuda::device_buffer(values);
      s.d_columns = cuda::device_buffer(columns * sizeof(std::int32_t));
      s.h_columns = cuda::pinned_buffer(columns * sizeof(std::int32_t));
      s.d_words = cuda::device_buffer(cuda::csv_words(cols) * 8);
      s.h_words = cuda::pinned_buffer(cuda::csv_words(cols) * 8);
      s.d_result = cuda::device_buffer(cuda::stats_result_bytes(f64, cols));
      s.h_result = cuda::pinned_buffer(cuda::stats_result_bytes(f64, cols));
      slots_.push_back(std::move(s));
    }
  }

  void launch(const chunk_info& info, const std::byte* d_data, stream_ref stream,
              unsigned buffer) override {
    slot& s = slots_[buffer];
    const csv_plan& p = plans_[info.input];
    const auto cols = static_cast<std::uint32_t>(p.layout.pick.size());
    const auto fields = static_cast<std::uint32_t>(p.layout.fields);
    s.d_data = d_data;
    // A layout of no fields has every record malformed: the host says which.
    s.host_only = cols == 0 || fields == 0;
    if (s.host_only) return;
    if (!pow10_loaded_) {  // launches queue in order on the lane's one stream
      cuda::copy_h2d_async(d_pow10_.get(), h_pow10_.get(), h_pow10_.size(), stream.handle);
      pow10_loaded_ = true;
    }
    if (s.loaded_input != info.input) {  // its previous copy finished before its collect
      const std::vector<std::int32_t> columns = cuda::csv_columns(fields, p.layout.pick);
      std::memcpy(s.h_columns.get(), columns.data(), columns.size() * sizeof columns[0]);
      cuda::copy_h2d_async(s.d_columns.get(), s.h_columns.get(), columns.size() * sizeof columns[0],
                           stream.handle);
      s.loaded_input = info.input;
    }
    cuda::csv_parse_args a;
    a.d_text = reinterpret_cast<const char*>(d_data);
    a.size = info.size;
    a.delim = p.layout.delim;
    a.fields = fields;
    a.cols = cols;
    a.strict = p.layout.strict;
    a.d_pow10 = static_cast<const cuda::decimal::pow10_entry*>(d_pow10_.get());
    a.d_columns = static_cast<const std::int32_t*>(s.d_columns.get());
    a.d_scratch = s.d_scratch.get();
    a.scratch_bytes = scratch_bytes_;
    a.d_values = static_cast<double*>(s.d_values.get());
    a.max_records = cuda::csv_max_records(info.size, fields);
    a.d_words = static_cast<std::uint64_t*>(s.d_words.get());
    cuda::csv_parse(a, stream.handle);
    cuda::stats_init(f64, cols, s.d_result.get(), stream.handle);
    cuda::stats_accumulate_counted(f64, a.d_values, a.max_records, a.d_words + cuda::csv_rows, cols,
                                   s.d_result.get(), stream.handle);
    mark_copy_back(stream);
    cuda::copy_d2h_async(s.h_words.get(), a.d_words, cuda::csv_words(cols) * 8, stream.handle);
    cuda::copy_d2h_async(s.h_result.get(), s.d_result.get(), cuda::stats_result_bytes(f64, cols),
                         stream.handle);
  }

  std::unique_ptr<partial> collect(const chunk_info& info, unsigned buffer) override {
    slot& s = slots_[buffer];
    const csv_plan& p = plans_[info.input];
    const auto* words = static_cast<const std::uint64_t*>(s.h_words.get());
    ++counts_.parsed[info.input];
    const bool back = s.host_only || words[cuda::csv_status] != 0;
    // The chunk's bytes, for the host to parse, or (a stream's) to keep for a parse again at the
    // merge. The chunk is still in the lane's device buffer: the engine overwrites it only after
    // this collect.
    std::string text;
    if (back || !p.regular) {
      text.resize(info.size);
      cuda::copy_d2h_async(text.data(), s.d_data, info.size, side_.handle());
      side_.synchronize();
    }
    if (back) {
      ++counts_.on_host[info.input];
      auto out = parse_text(p, info.input, info.offset, text.data(), text.size(), true);
      if (!p.regular) out->copy = std::move(text);
      return out;
    }
    const std::size_t cols = p.layout.pick.size();
    auto out = std::make_unique<csv_partial>();
    out->input = info.input;
    out->offset = info.offset;
    out->size = info.size;
    out->copy = std::move(text);
    out->columns.resize(cols);
    out->text.resize(cols);
    cuda::stats_fold(f64, s.h_result.get(), cols, out->columns.data());
    for (std::size_t c = 0; c < cols; ++c) out->text[c] = words[cuda::csv_flags + c] != 0;
    return out;
  }

 private:
  static constexpr int f64 = static_cast<int>(dtype::f64);
  struct slot {
    cuda::device_buffer d_scratch, d_values, d_columns, d_words, d_result;
    cuda::pinned_buffer h_columns, h_words, h_result;
    const std::byte* d_data = nullptr;
    std::size_t loaded_input = ~std::size_t{0};  // whose columns d_columns holds
    bool host_only = false;
  };
  const std::vector<csv_plan>& plans_;
  gpu_counts& counts_;
  cuda::stream side_;  // copies a handed-back chunk
  cuda::pinned_buffer h_pow10_;
  cuda::device_buffer d_pow10_;
  bool pow10_loaded_ = false;
  std::size_t scratch_bytes_ = 0;
  std::vector<slot> slots_;
};
#endif

std::unique_ptr<device_reducer> csv_op::make_device_reducer(int device, std::size_t max_chunk,
                                                            unsigned buffers) const {
#if HETPIPE_WITH_CUDA
  return std::make_unique<csv_device>(plans_, counts_, device, max_chunk, buffers);
#else
  (void)device, (void)max_chunk, (void)buffers;
  return nullptr;
#endif
}

[[noreturn]] void throw_errno(const std::string& file, int err) {
  throw io_error(file, errno_reason(err), -err);
}

// A stream's next line without its '\n', read a byte at a time (what follows is the job's);
// nullopt at its end.
std::optional<std::string> read_line(int fd, const std::string& file, std::uint64_t number) {
  std::string line;
  while (true) {
    char c;
    const ssize_t got = ::read(fd, &c, 1);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno(file, errno);
    }
    if (got == 0) return line.empty() ? std::nullopt : std::optional(line);
    if (c == '\n') return line;
    if (line.size() == max_line)
      throw input_error(file, "line " + std::to_string(number) + " is longer than " +
                                  std::to_string(max_line) + " bytes");
    line += c;
  }
}

std::vector<std::string> field_names(const std::vector<csv::field>& fields) {
  std::vector<std::string> names;
  for (const auto& f : fields) {
    std::string name = csv::unquote(f);
    const auto keep = [](char c) { return c != ' ' && c != '\t' && c != '\r'; };
    name.erase(name.begin(), std::find_if(name.begin(), name.end(), keep));
    name.erase(std::find_if(name.rbegin(), name.rend(), keep).base(), name.end());
    names.push_back(std::move(name));
  }
  return names;
}

// Which fields --columns names: a header name, else a number from 1.
std::vector<std::uint32_t> pick_fields(const std::string& file,
                                       const std::vector<std::string>& asked,
                                       const std::vector<std::string>& header, std::size_t fields) {
  std::vector<std::uint32_t> pick;
  if (asked.empty()) {
    for (std::size_t f = 0; f < fields; ++f) pick.push_back(static_cast<std::uint32_t>(f));
    return pick;
  }
  for (const std::string& a : asked) {
    const auto it = std::find(header.begin(), header.end(), a);
    if (it != header.end()) {
      pick.push_back(static_cast<std::uint32_t>(it - header.begin()));
      continue;
    }
    std::size_t n = 0;
    const bool digits = !a.empty() && a.size() < 10 && std::all_of(a.begin(), a.end(), [](char c) {
      return c >= '0' && c <= '9';
    });
    if (digits) n = std::stoul(a);
    if (!digits || n == 0 || n > fields)
      throw usage_error(file, "no column '" + a + "' (" +
                                  (header.empty() ? std::string("no header line")
                                                  : "the header names " + std::to_string(fields)) +
                                  "; numbers go from 1 to " + std::to_string(fields) + ")");
    pick.push_back(static_cast<std::uint32_t>(n - 1));
  }
  return pick;
}

// The plan of one input: its first line decides the fields and whether it is a header.
csv_plan plan_file(const std::string& file, const csv_spec& spec, input& in) {
  csv_plan p;
  p.file = file;
  p.layout.delim = spec.delimiter                            ? spec.delimiter
                   : detail::lower_extension(file) == ".tsv" ? '\t'
                                                             : ',';
  // Columns named by the caller must hold numbers; the others may turn out to be text.
  p.layout.strict = !spec.columns.empty();
  p.regular = file != "-";
  if (p.regular) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) throw_errno(file, errno);
    if (S_ISDIR(st.st_mode)) throw io_error(file, "is a directory", -EISDIR);
    p.regular = S_ISREG(st.st_mode);
  }
  p.fd = file == "-" ? ::dup(STDIN_FILENO) : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (p.fd < 0) throw_errno(file, errno);

  // The first line that is not empty (blank lines before it are passed over), without a UTF-8
  // byte-order mark at the start of the input, and its number.
  std::string first;
  std::uint64_t first_line = 1;
  std::uint64_t first_at = 0;  // a regular file's offset of that line
  const auto blank = [](std::string_view l) { return l.empty() || l == "\r"; };
  const std::string_view bom = "\xEF\xBB\xBF";
  if (p.regular) {
    std::vector<char> head(max_line + 1);
    std::uint64_t at = 0;  // file offset of head[0]
    while (true) {
      ssize_t got;
      do got = ::pread(p.fd, head.data(), head.size(), static_cast<off_t>(at));
      while (got < 0 && errno == EINTR);
      if (got < 0) {
        const int err = errno;
        ::close(std::exchange(p.fd, -1));
        throw_errno(file, err);
      }
      const auto n = static_cast<std::size_t>(got);
      const std::string_view buf(head.data(), n);
      std::size_t k = at == 0 && buf.substr(0, 3) == bom ? 3 : 0;
      bool found = false;
      std::size_t nl;
      while ((nl = buf.find('\n', k)) != std::string_view::npos) {
        if (!blank(buf.substr(k, nl - k))) {
          // The record may go on past its line, in a quoted field.
          bool open = false;
          const std::size_t end = csv::record_end(buf.data(), n, k, nl, &open);
          if (end < n) {
            first.assign(buf.substr(k, end - k));
            first_at = at + k;
            p.data_offset = at + end + 1;
            found = true;
          }
          break;  // else it runs to the end of what was read: as a last line without its '\n'
        }
        k = nl + 1;
        ++first_line;
      }
      if (found) break;
      if (n < head.size()) {  // the end: a last line without its '\n', or nothing
        if (!blank(buf.substr(k))) first.assign(buf.substr(k));
        first_at = at + k;
        p.data_offset = at + n;
        break;
      }
      if (k == 0)
        throw input_error(file, "line " + std::to_string(first_line) + " is longer than " +
                                    std::to_string(max_line) + " bytes");
      at += k;  // read again from the start of the line the buffer cut
    }
    ::close(std::exchange(p.fd, -1));
  } else {
    std::optional<std::string> l = read_line(p.fd, file, 1);
    if (l && l->substr(0, 3) == bom) l->erase(0, 3);
    while (l && blank(*l)) l = read_line(p.fd, file, ++first_line);
    first = l.value_or("");
    // A quoted field holding line breaks: the record's next lines.
    std::uint64_t more = first_line;
    while (std::count(first.begin(), first.end(), '"') % 2 != 0) {
      const std::optional<std::string> next = read_line(p.fd, file, ++more);
      if (!next) break;  // the end inside the field: split() says so
      if (first.size() + next->size() >= max_line)
        throw input_error(file, "line " + std::to_string(first_line) + ": a record longer than " +
                                    std::to_string(max_line) +
                                    " bytes (a quoted field not closed?)");
      first += '\n' + *next;
    }
  }
  std::string_view line(first);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::string where = "line " + std::to_string(first_line) + ": ";

  std::vector<csv::field> fields;
  if (!line.empty())
    if (const char* why = csv::split(line, p.layout.delim, fields))
      throw input_error(file, where + why);
  p.layout.fields = fields.size();
  bool header = spec.header == csv_spec::header_mode::present;
  if (spec.header == csv_spec::header_mode::automatic)
    header = std::any_of(fields.begin(), fields.end(), [](const csv::field& f) {
      double v;
      return !csv::number(f.text, v) || (f.quoted && f.text.find('"') != std::string_view::npos);
    });
  std::vector<std::string> names;
  if (header) names = field_names(fields);
  p.layout.pick = pick_fields(file, spec.columns, names, fields.size());
  for (const auto f : p.layout.pick) p.names.push_back(header ? names[f] : std::to_string(f + 1));

  if (p.regular) {
    if (!header) p.data_offset = first_at;  // the first record, after any mark and blank lines
    in = {file, p.data_offset, std::nullopt};
  } else {
    in = {file, 0, std::nullopt, p.fd};
    if (!header && !line.empty()) {  // the first record is read: its values count here
      p.leading = std::make_unique<stats_partial>();
      p.leading->columns.resize(p.layout.pick.size());
      p.leading->text.resize(p.layout.pick.size());
      const std::string record = std::string(line) + "\n";
      if (auto bad = csv::accumulate(record.data(), record.size(), p.layout,
                                     p.leading->columns.data(), p.leading->text.data()))
        throw input_error(file, where + describe(p, *bad));
    }
  }
  return p;
}

// The line of byte `offset` of a regular file, counted from 1.
std::optional<std::uint64_t> line_of(const std::string& file, std::uint64_t offset) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::vector<char> buf(1 << 20);
  std::uint64_t line = 1, at = 0;
  while (at < offset) {
    const ssize_t got =
        ::pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), offset - at), at);
    if (got <= 0) break;
    line += static_cast<std::uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
    at += static_cast<std::uint64_t>(got);
  }
  ::close(fd);
  if (at < offset) return std::nullopt;
  return line;
}

}  // namespace

std::vector<stats_result> csv_stats(const std::vector<std::string>& files, const csv_spec& spec,
                                    const options& opt, job_report* report) {
  if (spec.delimiter == '"' || spec.delimiter == '\n' || spec.delimiter == '\r')
    throw usage_error("the CSV delimiter cannot be a quote or a line break");
  std::vector<csv_plan> plans;
  std::vector<input> inputs(files.size());
  struct closer {
    std::vector<csv_plan>& plans;
    ~closer() {
      for (auto& p : plans)
        if (p.fd >= 0) ::close(p.fd);
    }
  } close_fds{plans};
  plans.reserve(files.size());
  for (std::size_t i = 0; i < files.size(); ++i)
    plans.push_back(plan_file(files[i], spec, inputs[i]));

  std::vector<std::unique_ptr<partial>> totals;
  gpu_counts counts(files.size());
  csv_op op(plans, counts);
  try {
    totals = run(op, inputs, opt, report);
    // An input that ends inside a quoted field.
    for (std::size_t i = 0; i < files.size(); ++i)
      if (const auto& t = static_cast<const csv_partial&>(*totals[i]); !t.open.empty())
        throw csv_record_error(files[i], i, t.open_at, csv::unclosed_quote);
  } catch (const csv_record_error& e) {
    const csv_plan& p = plans[e.input];
    const std::uint64_t at = p.data_offset + e.offset;
    const auto line = p.regular ? line_of(p.file, at) : std::nullopt;  // not a stream
    throw input_error(p.file, (line ? "line " + std::to_string(*line)
                                    : "the record at byte " + std::to_string(at)) +
                                  ": " + e.reason());
  }
  const int threads = static_cast<int>(resolve(opt).cpu_threads);
  std::vector<stats_result> results(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto& total = static_cast<stats_partial&>(*totals[i]);
    if (plans[i].leading) merge_stats(total, *plans[i].leading);  // exact: order does not matter
    stats_result& r = results[i];
    r.file = files[i];
    r.type = dtype::f64;
    r.gpu_chunks = counts.parsed[i].load();
    r.gpu_chunks_on_host = counts.on_host[i].load();
    if (opt.verbose > 0 && r.gpu_chunks > 0)
      std::fprintf(stderr,
                   "hetpipe: %s: GPU lanes took %llu chunks and handed %llu back to the host (a "
                   "bad record, a quoted line break, or a number the device does not round "
                   "alone)\n",
                   files[i].c_str(), static_cast<unsigned long long>(r.gpu_chunks),
                   static_cast<unsigned long long>(r.gpu_chunks_on_host));
    // Each record gives every column a value or a NaN (a text field counts as one).
    const std::uint64_t rows =
        total.columns.empty() ? 0 : total.columns[0].count + total.columns[0].nan_count;
    // Columns that met text are left out, named; the others are the results.
    std::size_t kept = 0;
    for (std::size_t c = 0; c < total.columns.size(); ++c) {
      if (total.text[c]) {
        r.skipped_columns.push_back(plans[i].names[c]);
        continue;
      }
      if (kept != c) total.columns[kept] = std::move(total.columns[c]);
      r.names.push_back(plans[i].names[c]);
      ++kept;
    }
    total.columns.resize(kept);
    finalize_stats(dtype::f64, total, r, threads);
    r.shape = {rows, r.columns.size()};
  }
  return results;
}

}  // namespace hetpipe::detail

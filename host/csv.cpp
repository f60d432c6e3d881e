#include "host/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace hetpipe::host::csv {

const char* const unclosed_quote = "a quoted field is not closed";

std::size_t record_end(const char* data, std::size_t size, std::size_t at, std::size_t line_end,
                       bool* open) {
  std::size_t quotes = static_cast<std::size_t>(std::count(data + at, data + line_end, '"'));
  std::size_t end = line_end;
  while (quotes % 2 != 0 && end < size) {
    const void* nl = std::memchr(data + end + 1, '\n', size - end - 1);
    const std::size_t next =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : size;
    quotes += static_cast<std::size_t>(std::count(data + end + 1, data + next, '"'));
    end = next;
  }
  *open = quotes % 2 != 0;
  return end;
}

const char* split(std::string_view line, char delim, std::vector<field>& out) {
  out.clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (true) {
    // Spaces before an opening quote belong to no field's text.
    std::size_t j = i;
    while (j < n && (line[j] == ' ' || (line[j] == '\t' && delim != '\t'))) ++j;
    if (j < n && line[j] == '"') {
      const std::size_t start = ++j;
      while (true) {
        const void* q = std::memchr(line.data() + j, '"', n - j);
        if (!q) return unclosed_quote;
        j = static_cast<std::size_t>(static_cast<const char*>(q) - line.data());
        if (j + 1 < n && line[j + 1] == '"') {
          j += 2;
          continue;
        }
        break;
      }
      out.push_back({line.substr(start, j - start), true});
      ++j;
      while (j < n && (line[j] == ' ' || (line[j] == '\t' && delim != '\t') || line[j] == '\r'))
        ++j;
      if (j == n) return nullptr;
      if (line[j] != delim) return "text after a closing quote";
      i = j + 1;
      continue;
    }
    // Fields are short: one pass byte by byte finds the delimiter and any quote (a call of memchr
    // per field, and a second scan for quotes, cost more).
    std::size_t end = i;
    while (end < n && line[end] != delim) {
      if (line[end] == '"') return "a quote inside an unquoted field";
      ++end;
    }
    out.push_back({line.substr(i, end - i), false});
    if (end == n) return nullptr;
    i = end + 1;
  }
}

std::string unquote(const field& f) {
  std::string s;
  s.reserve(f.text.size());
  for (std::size_t i = 0; i < f.text.size(); ++i) {
    s += f.text[i];
    if (f.quoted && f.text[i] == '"') ++i;  // the second of a "" pair
  }
  return s;
}

namespace {

// The power of ten of the first non-zero digit of a decimal from_chars read as out of range
// ("0.00012e-400": -404): below 0, the value is too small for a double; else too large.
long long magnitude(std::string_view d) {
  const std::size_t e = std::min(d.find_first_of("eE"), d.size());
  const std::size_t point = std::min(d.find('.'), e);
  const std::size_t first = d.find_first_of("123456789");
  // Only a non-zero value is out of range, so `first` lies before the exponent.
  long long m = first < point ? static_cast<long long>(point - first) - 1
                              : -static_cast<long long>(first - point);
  long long exp = 0;
  bool negative = false;
  std::size_t i = e + 1;
  if (i < d.size() && (d[i] == '+' || d[i] == '-')) negative = d[i++] == '-';
  for (; i < d.size(); ++i) exp = std::min(exp * 10 + (d[i] - '0'), 1'000'000'000'000LL);
  return m + (negative ? -exp : exp);
}

}  // namespace

bool number(std::string_view text, double& v) {
  std::size_t a = 0, b = text.size();
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (a < b && blank(text[a])) ++a;
  while (b > a && blank(text[b - 1])) --b;
  if (a == b) {
    v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  bool negative = false;
  if (text[a] == '+' || text[a] == '-') {
    negative = text[a] == '-';
    if (++a == b || text[a] == '+' || text[a] == '-') return false;
  }
  // from_chars takes no sign of '+' and reads "nan(...)"; NaN's sign is kept by std::copysign.
  double x = 0;
  const auto [p, ec] =
      std::from_chars(text.data() + a, text.data() + b, x, std::chars_format::general);
  if (p != text.data() + b) return false;
  if (ec == std::errc::result_out_of_range) {
    // libstdc++ leaves x unchanged here: the value's magnitude decides, from its exponent.
    x = magnitude(text.substr(a, b - a)) < 0 ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc()) {
    return false;
  }
  v = negative ? -x : x;
  return true;
}

namespace {

constexpr std::size_t block_rows = 2048;

}  // namespace

std::optional<bad_record> accumulate(const char* data, std::size_t size, const layout& l,
                                     column_acc* acc, std::uint8_t* text, std::size_t* open_at) {
  if (open_at) *open_at = size;
  const std::size_t cols = l.pick.size();
  std::vector<double> values;
  values.reserve(block_rows * cols);
  std::vector<field> fields;
  fields.reserve(l.fields);
  std::size_t rows = 0;
  const auto flush = [&] {
    if (rows)
      host::accumulate(dtype::f64, reinterpret_cast<const std::byte*>(values.data()), rows, cols,
                       acc);
    values.clear();
    rows = 0;
  };
  std::size_t at = 0;
  while (at < size) {
    const void* nl = std::memchr(data + at, '\n', size - at);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : size;
    std::size_t stop = end;
    if (stop > at && data[stop - 1] == '\r') --stop;
    const std::size_t line_at = at;
    at = end + 1;
    if (stop == line_at) continue;  // an empty line
    std::string_view line(data + line_at, stop - line_at);
    const char* why = split(line, l.delim, fields);
    if (why == unclosed_quote) {  // a quoted field holds a line break: the record goes on
      bool open = false;
      end = record_end(data, size, line_at, end, &open);
      if (open && open_at) {
        flush();
        *open_at = line_at;
        return std::nullopt;
      }
      stop = end;
      if (stop > line_at && data[stop - 1] == '\r') --stop;
      at = end + 1;
      line = std::string_view(data + line_at, stop - line_at);
      why = split(line, l.delim, fields);
    }
    if (why) {
      flush();
      return bad_record{line_at, 0, false, why};
    }
    if (fields.size() != l.fields) {
      flush();
      return bad_record{line_at, 0, false,
                        "has " + std::to_string(fields.size()) + " field" +
                            (fields.size() == 1 ? "" : "s") + " where the first record has " +
                            std::to_string(l.fields)};
    }
    for (std::size_t c = 0; c < cols; ++c) {
      const field& f = fields[l.pick[c]];
      double v = 0;
      if ((f.quoted && f.text.find('"') != std::string_view::npos) || !number(f.text, v)) {
        if (!l.strict && text) {
          text[c] = 1;
          values.push_back(std::numeric_limits<double>::quiet_NaN());
          continue;
        }
        values.resize(rows * cols);  // this record's values so far are not kept
        flush();
        return bad_record{line_at, l.pick[c], true, "'" + unquote(f) + "' is not a number"};
      }
      values.push_back(v);
    }
    if (++rows == block_rows) flush();
  }
  flush();
  return std::nullopt;
}

std::uint64_t count_records(const char* data, std::size_t size) {
  std::uint64_t records = 0;
  std::size_t at = 0;
  while (at < size) {
    const void* nl = std::memchr(data + at, '\n', size - at);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : size;
    const std::size_t len = end - at - (end > at && data[end - 1] == '\r' ? 1 : 0);
    if (len > 0) {
      bool open = false;
      end = record_end(data, size, at, end, &open);
      ++records;
    }
    at = end + 1;
  }
  return records;
}

}  // namespace hetpipe::host::csv

#include "host/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    // Spaces and tabs before an opening quote belong to no field's text (unless one is the
    // delimiter).
    std::size_t j = i;
    while (j < n && (line[j] == ' ' || line[j] == '\t') && line[j] != delim) ++j;
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
      while (j < n && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r') && line[j] != delim)
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

// At most 17 characters of digits with at most one point, nothing else ("12", "-" already taken
// off "-3.25", "5.", ".5"), whose value is w / 10^k with w <= 2^53 (k <= 16): w and 10^k are exact
// doubles, so the one division is the correctly rounded value (Clinger), the double from_chars
// gives. False for any other text, which from_chars then reads.
bool plain_decimal(const char* p, const char* end, double& x) {
  static constexpr double pow10[] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7, 1e8,
                                     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};
  // Longer text (a double printed in full, as %.17g) is rarely exact here, and is not scanned
  // twice.
  if (end - p > 17) return false;
  std::uint64_t w = 0;
  int digits = 0, k = -1;  // k: digits after the point, -1 before it
  for (; p < end; ++p) {
    const unsigned d = static_cast<unsigned char>(*p) - '0';
    if (d < 10) {
      ++digits;
      w = w * 10 + d;  // below 10^17
      k += k >= 0;
    } else if (*p == '.' && k < 0) {
      k = 0;
    } else {
      return false;
    }
  }
  if (digits == 0 || w > (std::uint64_t{1} << 53)) return false;
  x = k > 0 ? static_cast<double>(w) / pow10[k] : static_cast<double>(w);
  return true;
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
  double x = 0;
  if (plain_decimal(text.data() + a, text.data() + b, x)) {
    v = negative ? -x : x;
    return true;
  }
  // from_chars takes no sign of '+' and reads "nan(...)"; NaN's sign is kept by std::copysign.
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

// The offsets of the bytes that can end a field or a record, or open a quote ('\n', '"' and the
// delimiter) in data[0..size), in order, found 64 at a time with SSE2 compares (baseline x86-64).
class specials {
 public:
  specials(const char* data, std::size_t size, char delim) : data_(data), size_(size), d_(delim) {}
  // Starts over at `at`.
  void seek(std::size_t at) {
    base_ = at;
    mask_ = at < size_ ? block(at) : 0;
  }
  // After an opening quote: the next quote when only delimiters come before it, else size.
  [[gnu::noinline]] std::size_t closing_quote() {
    std::size_t q = next();
    while (q < size_ && data_[q] == d_) q = next();
    return q < size_ && data_[q] == '"' ? q : size_;
  }
  // The next such offset, or size when there is none.
  std::size_t next() {
    while (mask_ == 0) {
      base_ += 64;
      if (base_ >= size_) return size_;
      mask_ = block(base_);
    }
    const std::size_t at = base_ + static_cast<std::size_t>(__builtin_ctzll(mask_));
    mask_ &= mask_ - 1;
    return at;
  }

 private:
  std::uint64_t block(std::size_t at) const {
    std::uint64_t m = 0;
    if (size_ - at < 64) {
      for (std::size_t i = 0; i < size_ - at; ++i) {
        const char c = data_[at + i];
        m |= std::uint64_t{c == '\n' || c == '"' || c == d_} << i;
      }
      return m;
    }
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n'), q = _mm_set1_epi8('"'), d = _mm_set1_epi8(d_);
    for (int k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data_ + at + 16 * k));
      const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, q)),
                                       _mm_cmpeq_epi8(v, d));
      m |= std::uint64_t{static_cast<std::uint16_t>(_mm_movemask_epi8(hit))} << (16 * k);
    }
#else
    for (std::size_t i = 0; i < 64; ++i) {
      const char c = data_[at + i];
      m |= std::uint64_t{c == '\n' || c == '"' || c == d_} << i;
    }
#endif
    return m;
  }

  const char* data_;
  std::size_t size_;
  char d_;
  std::size_t base_ = 0;
  std::uint64_t mask_ = 0;
};

std::string count_reason(std::size_t fields, std::size_t expected) {
  return "has " + std::to_string(fields) + " field" + (fields == 1 ? "" : "s") +
         " where the first record has " + std::to_string(expected);
}

// accumulate(); `fast`: a record without a quote is cut at the offsets `specials` finds, and only
// its picked fields are read, which gives what split() and the checks below give for it.
std::optional<bad_record> accumulate_records(const char* data, std::size_t size, const layout& l,
                                             column_acc* acc, std::uint8_t* text,
                                             std::size_t* open_at, bool fast) {
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
  // Column c of the record at line_at is not a number (its text: `shown`): a NaN in a text column
  // (not strict), or the bad record, the row's values so far dropped.
  const auto not_number = [&](std::size_t line_at, std::size_t c,
                              const std::string& shown) -> std::optional<bad_record> {
    if (!l.strict && text) {
      text[c] = 1;
      values.push_back(std::numeric_limits<double>::quiet_NaN());
      return std::nullopt;
    }
    values.resize(rows * cols);
    flush();
    return bad_record{line_at, l.pick[c], true, "'" + shown + "' is not a number"};
  };
  // The fast path's fields of one record: picked ones read as they are met.
  fast = fast && l.delim != '"' && l.delim != '\n' && l.delim != '\r';
  // picked[min(f, fields)]: whether field f is kept (picked[fields] = 0 for the fields past them).
  std::vector<std::uint8_t> picked(fast ? l.fields + 1 : 0), read_ok(picked.size());
  std::vector<double> read(picked.size());
  std::vector<std::string_view> read_text(picked.size());
  for (const std::uint32_t f : l.pick)
    if (f < l.fields && fast) picked[f] = 1;
  const std::uint8_t* const keep = picked.data();
  const std::size_t last = l.fields;
  const auto read_field = [&, keep, last](std::size_t f, std::size_t from, std::size_t to) {
    if (!keep[std::min(f, last)]) return;
    read_text[f] = std::string_view(data + from, to - from);
    read_ok[f] = number(read_text[f], read[f]);
  };
  const char delim = l.delim;  // a local: no store through the pointers below can change it
  specials sp(data, size, delim);
  if (fast) sp.seek(0);
  std::size_t at = 0;
  while (at < size) {
    if (fast) {
      // A field is the text between two delimiters, or a quoted field alone there (split() takes
      // anything else: spaces around the quotes, "" pairs, line breaks inside, text after them).
      std::size_t from = at, n = 0, p = 0;
      std::size_t q_from = 0, q_to = 0;  // the last field's text when it is quoted
      bool plain = true, last_quoted = false;
      while (true) {
        while (true) {  // the hot loop: unquoted fields
          p = sp.next();
          if (p == size || data[p] != delim) break;
          read_field(n++, from, p);
          from = p + 1;
        }
        if (p == size || data[p] == '\n') break;
        // An opening quote; it closes at the next quote, with only delimiters between.
        const std::size_t q = p == from ? sp.closing_quote() : size;
        if (q == size) {
          plain = false;
          break;
        }
        if (q + 1 < size && data[q + 1] == delim) {
          read_field(n++, p + 1, q);
          sp.next();  // that delimiter
          from = q + 2;
          continue;
        }
        std::size_t e = q + 1;  // else the record ends here, or after a '\r'
        if (e < size && data[e] == '\r') ++e;
        if (e < size && data[e] != '\n') {
          plain = false;
          break;
        }
        if (e < size) sp.next();  // that line break
        last_quoted = true, q_from = p + 1, q_to = q;
        p = e;
        break;
      }
      if (plain) {  // the record is read
        std::size_t stop = p;
        if (stop > at && data[stop - 1] == '\r') --stop;
        const std::size_t line_at = at;
        at = p + 1;
        if (stop == line_at) continue;  // an empty line (no delimiter in it)
        if (last_quoted)
          read_field(n++, q_from, q_to);
        else
          read_field(n++, from, stop);
        if (n != l.fields) {
          flush();
          return bad_record{line_at, 0, false, count_reason(n, l.fields)};
        }
        for (std::size_t c = 0; c < cols; ++c) {
          const std::uint32_t f = l.pick[c];
          if (read_ok[f]) {
            values.push_back(read[f]);
          } else if (auto bad = not_number(line_at, c, std::string(read_text[f]))) {
            return bad;
          }
        }
        if (++rows == block_rows) flush();
        continue;
      }
      // Quotes that split() must read: the record is read below, and the search goes on after it.
    }
    const void* nl = std::memchr(data + at, '\n', size - at);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : size;
    std::size_t stop = end;
    if (stop > at && data[stop - 1] == '\r') --stop;
    const std::size_t line_at = at;
    at = end + 1;
    if (fast) sp.seek(std::min(at, size));
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
      if (fast) sp.seek(std::min(at, size));
      line = std::string_view(data + line_at, stop - line_at);
      why = split(line, l.delim, fields);
    }
    if (why) {
      flush();
      return bad_record{line_at, 0, false, why};
    }
    if (fields.size() != l.fields) {
      flush();
      return bad_record{line_at, 0, false, count_reason(fields.size(), l.fields)};
    }
    for (std::size_t c = 0; c < cols; ++c) {
      const field& f = fields[l.pick[c]];
      double v = 0;
      // A quoted field holding a quote is text.
      if (!(f.quoted && f.text.find('"') != std::string_view::npos) && number(f.text, v)) {
        values.push_back(v);
      } else if (auto bad = not_number(line_at, c, unquote(f))) {
        return bad;
      }
    }
    if (++rows == block_rows) flush();
  }
  flush();
  return std::nullopt;
}

}  // namespace

std::optional<bad_record> accumulate(const char* data, std::size_t size, const layout& l,
                                     column_acc* acc, std::uint8_t* text, std::size_t* open_at) {
  return accumulate_records(data, size, l, acc, text, open_at, true);
}

std::optional<bad_record> accumulate_by_split(const char* data, std::size_t size, const layout& l,
                                              column_acc* acc, std::uint8_t* text,
                                              std::size_t* open_at) {
  return accumulate_records(data, size, l, acc, text, open_at, false);
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

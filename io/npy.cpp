// A strict .npy header reader. The header is parsed as a small subset of Python literal syntax
// (dicts, tuples, lists, strings, integers, True/False/None) into a tree, which is then checked key
// by key; nothing is evaluated and nesting is bounded.
#include "io/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "hetpipe/error.hpp"

namespace hetpipe::io {
namespace {

constexpr unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr int max_nesting = 32;

[[noreturn]] void reject(std::string_view name, std::string reason) {
  throw input_error(std::string(name), std::move(reason));
}

// Text from the file, made safe to put in a message: printable ASCII as is, other bytes as \xNN.
std::string printable(std::string_view s, std::size_t limit = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == limit) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

// ---- The literal tree ------------------------------------------------------------------------

struct literal {
  enum class kind { string, integer, boolean, none, tuple, list, dict };
  kind k = kind::none;
  std::string text;             // string: its value; integer: its digits as written (for messages)
  bool negative = false;        // integer
  std::uint64_t magnitude = 0;  // integer
  bool too_big = false;         // integer: the magnitude does not fit in 64 bits
  bool flag = false;            // boolean
  std::vector<literal> items;   // tuple, list; dict: key, value, key, value...
};

class literal_parser {
 public:
  literal_parser(std::string_view name, std::string_view text) : name_(name), s_(text) {}

  literal parse_document() {
    skip_space();
    literal v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string_view shown = s_;  // without the padding
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.remove_suffix(1);
    reject(name_, "malformed header: " + what + " at byte " + std::to_string(pos_) +
                      " of the header text '" + printable(shown) + "'");
  }

  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
  }

  literal parse_value(int depth) {
    if (depth > max_nesting) fail("values nested too deeply");
    if (pos_ >= s_.size()) fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return parse_dict(depth);
    if (c == '(') return parse_paren(depth);
    if (c == '[') return parse_list(depth);
    if (c == '\'' || c == '"') return parse_string();
    if (c == '-' || is_digit(c)) return parse_integer();
    if (is_ident(c)) return parse_name();
    fail(std::string("unexpected character '") + printable(std::string_view(&s_[pos_], 1)) + "'");
  }

  literal parse_string() {
    const char quote = s_[pos_++];
    literal v;
    v.k = literal::kind::string;
    for (;;) {
      if (pos_ >= s_.size() || s_[pos_] == '\n') fail("unterminated string");
      const char c = s_[pos_++];
      if (c == quote) break;
      if (c == '\\') {
        if (pos_ >= s_.size()) fail("unterminated string");
        const char e = s_[pos_++];
        switch (e) {
          case '\\':
            v.text += '\\';
            break;
          case '\'':
            v.text += '\'';
            break;
          case '"':
            v.text += '"';
            break;
          case 'n':
            v.text += '\n';
            break;
          case 't':
            v.text += '\t';
            break;
          default:  // other escapes are kept as written, as Python keeps unknown ones
            v.text += '\\';
            v.text += e;
        }
        continue;
      }
      v.text += c;
    }
    return v;
  }

  literal parse_integer() {
    literal v;
    v.k = literal::kind::integer;
    if (at('-')) {
      v.negative = true;
      ++pos_;
      skip_space();
    }
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_digit(s_[pos_])) {
      const auto d = static_cast<std::uint64_t>(s_[pos_] - '0');
      if (v.magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) v.too_big = true;
      v.magnitude = v.magnitude * 10 + d;
      ++pos_;
    }
    if (pos_ == start) fail("expected a number");
    v.text = std::string(s_.substr(start, pos_ - start));
    if (v.text.size() > 1 && v.text[0] == '0') fail("number with a leading zero");
    if (at('L')) ++pos_;  // Python 2 long literal, as in headers written by Python 2 numpy
    if (pos_ < s_.size() && (is_ident(s_[pos_]) || s_[pos_] == '.')) fail("malformed number");
    if (v.negative) v.text.insert(0, "-");
    return v;
  }

  literal parse_name() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_ident(s_[pos_])) ++pos_;
    const std::string_view word = s_.substr(start, pos_ - start);
    literal v;
    if (word == "True" || word == "False") {
      v.k = literal::kind::boolean;
      v.flag = word == "True";
    } else if (word == "None") {
      v.k = literal::kind::none;
    } else {
      pos_ = start;
      fail("unexpected name '" + printable(word) + "'");
    }
    return v;
  }

  // A comma-separated sequence up to `close`, a trailing comma allowed; the opener is consumed.
  template <class Item>
  void parse_sequence(char close, Item item) {
    skip_space();
    if (at(close)) {
      ++pos_;
      return;
    }
    for (;;) {
      item();
      skip_space();
      if (at(close)) {
        ++pos_;
        return;
      }
      if (!at(',')) fail(std::string("expected ',' or '") + close + "'");
      ++pos_;
      skip_space();
      if (at(close)) {
        ++pos_;
        return;
      }
    }
  }

  literal parse_dict(int depth) {
    ++pos_;
    literal v;
    v.k = literal::kind::dict;
    parse_sequence('}', [&] {
      v.items.push_back(parse_value(depth + 1));
      skip_space();
      if (!at(':')) fail("expected ':'");
      ++pos_;
      skip_space();
      v.items.push_back(parse_value(depth + 1));
    });
    return v;
  }

  literal parse_list(int depth) {
    ++pos_;
    literal v;
    v.k = literal::kind::list;
    parse_sequence(']', [&] { v.items.push_back(parse_value(depth + 1)); });
    return v;
  }

  // "()" is the empty tuple, "(x)" is x itself, "(x,)" and "(x, y)" are tuples.
  literal parse_paren(int depth) {
    ++pos_;
    skip_space();
    literal v;
    v.k = literal::kind::tuple;
    if (at(')')) {
      ++pos_;
      return v;
    }
    literal first = parse_value(depth + 1);
    skip_space();
    if (at(')')) {
      ++pos_;
      return first;
    }
    if (!at(',')) fail("expected ',' or ')'");
    ++pos_;
    v.items.push_back(std::move(first));
    parse_sequence(')', [&] { v.items.push_back(parse_value(depth + 1)); });
    return v;
  }

  std::string_view name_;
  std::string_view s_;
  std::size_t pos_ = 0;
};

// ---- Checking the keys -----------------------------------------------------------------------

std::string describe_shape(const literal& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.items.size(); ++i) {
    if (i) out += ", ";
    out += shape.items[i].text;
  }
  if (shape.items.size() == 1) out += ",";
  return out + ")";
}

dtype parse_descr(std::string_view name, const literal& descr) {
  if (descr.k == literal::kind::list)
    reject(name, "structured dtypes (records with named fields) are not supported");
  if (descr.k != literal::kind::string)
    reject(name, "malformed header: 'descr' must be a string such as '<f8'");

  const std::string& s = descr.text;
  const std::string shown = printable(s);
  char order = 0;
  std::string_view code = s;
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code.remove_prefix(1);
  }
  struct entry {
    std::string_view code;
    dtype type;
  };
  constexpr entry table[] = {
      {"u1", dtype::u8},  {"i1", dtype::i8},  {"u2", dtype::u16}, {"i2", dtype::i16},
      {"u4", dtype::u32}, {"i4", dtype::i32}, {"u8", dtype::u64}, {"i8", dtype::i64},
      {"f4", dtype::f32}, {"f8", dtype::f64},
  };
  std::optional<dtype> type;
  for (const auto& e : table)
    if (e.code == code) type = e.type;
  if (!type) {
    if (!code.empty() && code[0] == 'O')
      reject(name, "unsupported dtype '" + shown + "': arrays of Python objects cannot be read");
    reject(name, "unsupported dtype '" + shown +
                     "' (hetpipe reads u1 i1 u2 i2 u4 i4 u8 i8 f4 f8, little-endian)");
  }
  if (dtype_size(*type) == 1) return *type;  // byte order means nothing for single bytes

  constexpr bool native_little = std::endian::native == std::endian::little;
  const bool big = order == '>' || (!native_little && (order == '=' || order == 0));
  if (big)
    reject(name, "big-endian arrays are not supported; convert with arr.astype('<" +
                     std::string(code) + "')");
  if (order == '|')
    reject(name, "unsupported dtype '" + shown + "': byte order '|' is only for 1-byte types");
  return *type;
}

}  // namespace

bool looks_like_npy(std::span<const std::byte> first_bytes) noexcept {
  if (first_bytes.size() < sizeof npy_magic) return false;
  return std::memcmp(first_bytes.data(), npy_magic, sizeof npy_magic) == 0;
}

npy_header parse_npy(std::string_view name, std::span<const std::byte> bytes,
                     std::uint64_t file_size) {
  if (bytes.size() > file_size)
    throw std::invalid_argument("parse_npy: more bytes given than file_size");
  // The first `n` bytes must be there: missing from the file is the file's fault, missing from
  // `bytes` (when the file has them) is the caller's.
  auto need = [&](std::uint64_t n, const char* what) {
    if (n > file_size)
      reject(name, std::string("truncated header: ") + what + " needs " + std::to_string(n) +
                       " bytes, the file has " + std::to_string(file_size));
    if (n > bytes.size())
      throw std::invalid_argument("parse_npy: give at least " + std::to_string(n) +
                                  " bytes of the file");
  };
  auto byte_at = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };

  if (file_size < sizeof npy_magic) reject(name, "not a .npy file (too short for the magic)");
  need(sizeof npy_magic, "the magic");
  if (!looks_like_npy(bytes)) reject(name, "not a .npy file (no \\x93NUMPY magic)");

  need(8, "the version");
  const int major = byte_at(6);
  const int minor = byte_at(7);
  if (minor != 0 || major < 1 || major > 3)
    reject(name, "unsupported .npy format version " + std::to_string(major) + "." +
                     std::to_string(minor) + " (hetpipe reads 1.0, 2.0 and 3.0)");

  std::uint64_t header_len;
  std::uint64_t header_start;
  if (major == 1) {
    need(10, "the header length");
    header_len = byte_at(8) | (std::uint64_t{byte_at(9)} << 8);
    header_start = 10;
  } else {
    need(12, "the header length");
    header_len = byte_at(8) | (std::uint64_t{byte_at(9)} << 8) |
                 (std::uint64_t{byte_at(10)} << 16) | (std::uint64_t{byte_at(11)} << 24);
    header_start = 12;
  }
  const std::uint64_t data_offset = header_start + header_len;
  if (data_offset > file_size)
    reject(name, "truncated header: it is " + std::to_string(header_len) +
                     " bytes long but the file ends " + std::to_string(file_size - header_start) +
                     " bytes after its start");
  if (data_offset > npy_max_preamble)
    reject(name, "header too long (" + std::to_string(header_len) + " bytes; at most " +
                     std::to_string(npy_max_preamble - header_start) + " accepted)");
  need(data_offset, "the header");

  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + header_start,
                              static_cast<std::size_t>(header_len));
  if (major == 3 && !valid_utf8(text)) reject(name, "malformed header: not valid UTF-8");
  if (text.empty() || text.back() != '\n')
    reject(name, "malformed header: it does not end with a newline");

  const literal dict = literal_parser(name, text).parse_document();
  if (dict.k != literal::kind::dict) reject(name, "malformed header: it is not a dict");

  const literal* descr = nullptr;
  const literal* fortran = nullptr;
  const literal* shape = nullptr;
  for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const literal& key = dict.items[i];
    const literal* value = &dict.items[i + 1];
    const literal** slot = nullptr;
    if (key.k == literal::kind::string) {
      if (key.text == "descr") slot = &descr;
      if (key.text == "fortran_order") slot = &fortran;
      if (key.text == "shape") slot = &shape;
    }
    if (!slot) {
      const std::string shown =
          key.k == literal::kind::string ? "'" + printable(key.text) + "'" : "that is not a string";
      reject(name, "malformed header: unexpected key " + shown +
                       " (the keys are 'descr', 'fortran_order' and 'shape')");
    }
    if (*slot) reject(name, "malformed header: key '" + key.text + "' appears twice");
    *slot = value;
  }
  if (!descr) reject(name, "malformed header: missing key 'descr'");
  if (!fortran) reject(name, "malformed header: missing key 'fortran_order'");
  if (!shape) reject(name, "malformed header: missing key 'shape'");

  npy_header h;
  h.version_major = major;
  h.data_offset = data_offset;
  h.type = parse_descr(name, *descr);

  if (fortran->k != literal::kind::boolean)
    reject(name, "malformed header: 'fortran_order' must be True or False");
  if (fortran->flag)
    reject(name, "Fortran-order arrays are not supported; save np.ascontiguousarray(arr) instead");

  if (shape->k != literal::kind::tuple)
    reject(name, "malformed header: 'shape' must be a tuple of integers such as (5,)");
  for (const literal& d : shape->items) {
    if (d.k != literal::kind::integer)
      reject(name, "malformed header: 'shape' must be a tuple of integers such as (5,)");
    if (d.negative && (d.magnitude != 0 || d.too_big))
      reject(name, "malformed header: negative dimension " + d.text + " in shape");
  }
  if (shape->items.size() > 2)
    reject(name, "only 1-D and 2-D arrays are supported (and 0-D scalars); shape " +
                     describe_shape(*shape) + " has " + std::to_string(shape->items.size()) +
                     " dimensions");

  std::uint64_t bytes_total = dtype_size(h.type);
  bool overflow = false;
  for (const literal& d : shape->items) {
    h.shape.push_back(d.magnitude);
    overflow = overflow || d.too_big;
    if (__builtin_mul_overflow(bytes_total, d.magnitude, &bytes_total)) overflow = true;
  }
  // A zero dimension makes the array empty whatever the others say, but a dimension too large for
  // 64 bits is refused all the same.
  if (overflow)
    reject(name, "array too large: shape " + describe_shape(*shape) + " of " +
                     std::to_string(dtype_size(h.type)) + "-byte elements does not fit in 64 bits");
  h.data_bytes = bytes_total;

  const std::uint64_t available = file_size - data_offset;
  if (available < h.data_bytes)
    reject(name, "data truncated: header says " + std::to_string(h.data_bytes) +
                     " bytes, file has " + std::to_string(available));
  if (available > h.data_bytes)
    reject(name, "unexpected data after the array: header says " + std::to_string(h.data_bytes) +
                     " bytes, file has " + std::to_string(available));
  return h;
}

npy_header read_npy_header(const std::string& path) {
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw io_error(path, std::string("cannot open: ") + std::strerror(e), -e);
  }
  closer guard{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    throw io_error(path, std::string("cannot stat: ") + std::strerror(e), -e);
  }
  if (S_ISDIR(st.st_mode)) throw io_error(path, "cannot read: it is a directory", -EISDIR);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(file_size, npy_max_preamble));
  std::vector<std::byte> buf(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t n = ::read(fd, buf.data() + got, want - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw io_error(path, std::string("cannot read: ") + std::strerror(e), -e);
    }
    if (n == 0) throw io_error(path, "cannot read: the file shrank while being read", 0);
    got += static_cast<std::size_t>(n);
  }
  return parse_npy(path, buf, file_size);
}

}  // namespace hetpipe::io

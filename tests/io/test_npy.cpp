// The .npy header parser: accepted layouts and every refusal, with the reason it gives.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hetpipe/error.hpp"
#include "io/npy.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using hetpipe::dtype;
using hetpipe::input_error;
using hetpipe::io_error;
using hetpipe::io::looks_like_npy;
using hetpipe::io::npy_header;
using hetpipe::io::parse_npy;
using hetpipe::io::read_npy_header;

namespace {

using bytes = std::vector<std::byte>;

void append(bytes& out, std::string_view s) {
  for (char c : s) out.push_back(static_cast<std::byte>(c));
}

// The preamble as given: magic, version, the header length in the version's width, `header`.
bytes raw_preamble(std::string_view header, int major, int minor = 0) {
  bytes out;
  append(out, "\x93NUMPY");
  out.push_back(static_cast<std::byte>(major));
  out.push_back(static_cast<std::byte>(minor));
  const auto len = static_cast<std::uint32_t>(header.size());
  const int width = major == 1 ? 2 : 4;
  for (int i = 0; i < width; ++i) out.push_back(static_cast<std::byte>((len >> (8 * i)) & 0xff));
  append(out, header);
  return out;
}

// A preamble as numpy writes it: `dict` padded with spaces and a final '\n' so that the whole
// preamble is a multiple of `align` bytes.
bytes preamble(std::string_view dict, int major = 1, std::size_t align = 64) {
  const std::size_t fixed = major == 1 ? 10 : 12;
  std::string header(dict);
  while ((fixed + header.size() + 1) % align != 0) header += ' ';
  header += '\n';
  return raw_preamble(header, major);
}

// A whole file: `dict` as numpy would write it followed by `data_bytes` bytes of data.
bytes npy_file(std::string_view dict, std::size_t data_bytes, int major = 1) {
  bytes out = preamble(dict, major);
  out.resize(out.size() + data_bytes, std::byte{0x5a});
  return out;
}

std::string dict_of(std::string_view descr, std::string_view shape, bool fortran = false) {
  return "{'descr': '" + std::string(descr) +
         "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + std::string(shape) + ", }";
}

npy_header parse(const bytes& file) {
  return parse_npy("t.npy", file, file.size());
}

// The reason parse_npy refuses `file` with, or "<accepted>".
std::string rejection(const bytes& file) {
  try {
    parse(file);
  } catch (const input_error& e) {
    CHECK(e.file() == "t.npy");
    CHECK_THAT(std::string(e.what()), StartsWith("t.npy: "));
    return e.reason();
  }
  return "<accepted>";
}

std::string rejection_of_dict(std::string_view dict, std::size_t data_bytes = 0) {
  return rejection(npy_file(dict, data_bytes));
}

// A directory of its own under the system's temporary directory, removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("hetpipe_test_npy_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const bytes& content) const {
    const auto p = path / name;
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(content.data()),
            static_cast<std::streamsize>(content.size()));
    REQUIRE(f.good());
    return p.string();
  }
};

}  // namespace

TEST_CASE("npy: versions 1.0, 2.0 and 3.0", "[npy]") {
  for (int major : {1, 2, 3}) {
    INFO("version " << major);
    const bytes file = npy_file(dict_of("<f8", "(3,)"), 24, major);
    const npy_header h = parse(file);
    CHECK(h.version_major == major);
    CHECK(h.type == dtype::f64);
    CHECK(h.shape == std::vector<std::uint64_t>{3});
    CHECK(h.data_offset == 128);  // a 57-character dict, padded to 64-byte alignment
    CHECK(h.data_bytes == 24);
  }
}

TEST_CASE("npy: every accepted dtype", "[npy]") {
  struct row {
    const char* descr;
    dtype type;
  };
  const row rows[] = {
      {"<u1", dtype::u8},
      {"|u1", dtype::u8},
      {"=u1", dtype::u8},
      {"<i1", dtype::i8},
      {"|i1", dtype::i8},
      {"=i1", dtype::i8},
      {"<u2", dtype::u16},
      {"<i2", dtype::i16},
      {"<u4", dtype::u32},
      {"<i4", dtype::i32},
      {"<u8", dtype::u64},
      {"<i8", dtype::i64},
      {"<f4", dtype::f32},
      {"<f8", dtype::f64},
      {"=u2", dtype::u16},
      {"=i2", dtype::i16},
      {"=u4", dtype::u32},
      {"=i4", dtype::i32},
      {"=u8", dtype::u64},
      {"=i8", dtype::i64},
      {"=f4", dtype::f32},
      {"=f8", dtype::f64},
      // byte order means nothing for one byte; numpy itself reads '>u1' as '|u1'
      {">u1", dtype::u8},
      {">i1", dtype::i8},
      // no byte order character: native, as numpy.dtype('f8')
      {"f8", dtype::f64},
      {"u1", dtype::u8},
  };
  for (const row& r : rows) {
    INFO("descr " << r.descr);
    const std::size_t n = 7 * hetpipe::dtype_size(r.type);
    const npy_header h = parse(npy_file(dict_of(r.descr, "(7,)"), n));
    CHECK(h.type == r.type);
    CHECK(h.data_bytes == n);
  }
}

TEST_CASE("npy: 0-D, 1-D, 2-D and empty shapes", "[npy]") {
  SECTION("0-D scalar") {
    const npy_header h = parse(npy_file(dict_of("<i4", "()"), 4));
    CHECK(h.shape.empty());
    CHECK(h.data_bytes == 4);
  }
  SECTION("1-D") {
    const npy_header h = parse(npy_file(dict_of("<u2", "(5,)"), 10));
    CHECK(h.shape == std::vector<std::uint64_t>{5});
    CHECK(h.data_bytes == 10);
  }
  SECTION("2-D") {
    const npy_header h = parse(npy_file(dict_of("<f4", "(3, 4)"), 48));
    CHECK(h.shape == std::vector<std::uint64_t>{3, 4});
    CHECK(h.data_bytes == 48);
  }
  SECTION("2-D with a trailing comma and odd spacing") {
    const npy_header h = parse(npy_file(dict_of("<f4", "( 3 ,4 , )"), 48));
    CHECK(h.shape == std::vector<std::uint64_t>{3, 4});
  }
  SECTION("empty 1-D") {
    const npy_header h = parse(npy_file(dict_of("<f8", "(0,)"), 0));
    CHECK(h.shape == std::vector<std::uint64_t>{0});
    CHECK(h.data_bytes == 0);
    CHECK(h.data_offset == 128);
  }
  SECTION("empty 2-D") {
    CHECK(parse(npy_file(dict_of("<f8", "(0, 5)"), 0)).data_bytes == 0);
    CHECK(parse(npy_file(dict_of("<f8", "(5, 0)"), 0)).data_bytes == 0);
  }
  SECTION("Python 2 long literals") {
    const npy_header h = parse(npy_file(dict_of("<i8", "(2L, 3L)"), 48));
    CHECK(h.shape == std::vector<std::uint64_t>{2, 3});
  }
  SECTION("a large dimension") {
    const std::uint64_t n = std::uint64_t{1} << 40;
    const bytes pre = preamble(dict_of("<u1", "(" + std::to_string(n) + ",)"));
    const npy_header h = parse_npy("big.npy", pre, pre.size() + n);
    CHECK(h.data_bytes == n);
  }
}

TEST_CASE("npy: header spelling variations", "[npy]") {
  SECTION("keys in any order, double quotes, extra spaces") {
    const npy_header h =
        parse(npy_file(R"({ "shape" : (2,3) ,"fortran_order":False,   'descr' :"<i2"})", 12));
    CHECK(h.type == dtype::i16);
    CHECK(h.shape == std::vector<std::uint64_t>{2, 3});
  }
  SECTION("no trailing comma in the dict, tabs and newlines between tokens") {
    const npy_header h =
        parse(npy_file("{'descr':\t'<u4',\n 'fortran_order': False,\n 'shape': (1,)}", 4));
    CHECK(h.type == dtype::u32);
  }
  SECTION("16-byte alignment of old files, and none at all") {
    const std::string d = dict_of("<u1", "(3,)");
    for (std::size_t align : {16u, 1u}) {
      bytes file = preamble(d, 1, align);
      const std::size_t offset = file.size();
      file.resize(offset + 3);
      const npy_header h = parse(file);
      CHECK(h.data_offset == offset);
      CHECK(h.data_bytes == 3);
    }
  }
  SECTION("a compact header: a 64-byte preamble") {
    const bytes file = npy_file("{'descr':'<u1','fortran_order':False,'shape':(3,)}", 3);
    CHECK(file.size() == 67);
    CHECK(parse(file).data_offset == 64);
  }
}

TEST_CASE("npy: looks_like_npy", "[npy]") {
  const bytes file = npy_file(dict_of("<u1", "(3,)"), 3);
  CHECK(looks_like_npy(file));
  CHECK(looks_like_npy(std::span(file).first(6)));
  CHECK_FALSE(looks_like_npy(std::span(file).first(5)));
  CHECK_FALSE(looks_like_npy({}));
  bytes other = file;
  other[1] = std::byte{'n'};
  CHECK_FALSE(looks_like_npy(other));
}

TEST_CASE("npy: refuses what is not a .npy file or not a supported version", "[npy]") {
  SECTION("bad magic") {
    bytes file = npy_file(dict_of("<u1", "(3,)"), 3);
    file[0] = std::byte{'X'};
    CHECK_THAT(rejection(file), StartsWith("not a .npy file"));
  }
  SECTION("too short for the magic, or empty") {
    bytes file;
    CHECK_THAT(rejection(file), StartsWith("not a .npy file"));
    append(file, "\x93NUM");
    CHECK_THAT(rejection(file), StartsWith("not a .npy file"));
  }
  SECTION("unsupported versions") {
    const std::string header = dict_of("<u1", "(3,)") + "\n";
    CHECK_THAT(rejection(raw_preamble(header, 4)),
               StartsWith("unsupported .npy format version 4.0"));
    CHECK_THAT(rejection(raw_preamble(header, 0)),
               StartsWith("unsupported .npy format version 0.0"));
    CHECK_THAT(rejection(raw_preamble(header, 1, 1)),
               StartsWith("unsupported .npy format version 1.1"));
  }
  SECTION("the file ends inside the fixed preamble") {
    bytes file;
    append(file, "\x93NUMPY");
    CHECK_THAT(rejection(file), StartsWith("truncated header"));
    file.push_back(std::byte{1});
    file.push_back(std::byte{0});
    file.push_back(std::byte{0x40});
    CHECK_THAT(rejection(file), StartsWith("truncated header"));
    bytes v2 = raw_preamble("", 2);
    v2.resize(11);
    CHECK_THAT(rejection(v2), StartsWith("truncated header"));
  }
  SECTION("header length beyond the end of the file") {
    for (int major : {1, 2, 3}) {
      bytes file = npy_file(dict_of("<u1", "(3,)"), 3, major);
      file.resize(40);
      CHECK_THAT(rejection(file), StartsWith("truncated header"));
    }
  }
  SECTION("header longer than the maximum preamble") {
    std::string dict = dict_of("<u1", "(3,)");
    dict += std::string(hetpipe::io::npy_max_preamble, ' ');
    bytes file = npy_file(dict, 3, 2);
    CHECK_THAT(rejection(file), StartsWith("header too long"));
  }
}

TEST_CASE("npy: refuses malformed headers", "[npy]") {
  SECTION("header not ending with a newline") {
    const std::string header = dict_of("<u1", "(3,)") + "   ";
    CHECK_THAT(rejection(raw_preamble(header, 1)),
               Equals("malformed header: it does not end with a newline"));
    CHECK_THAT(rejection(raw_preamble("", 1)),
               Equals("malformed header: it does not end with a newline"));
  }
  SECTION("syntax errors") {
    const char* bad[] = {
        "{'descr' '<u1', 'fortran_order': False, 'shape': (3,)}",    // no ':'
        "{'descr': '<u1' 'fortran_order': False, 'shape': (3,)}",    // no ','
        "{'descr': '<u1, 'fortran_order': False, 'shape': (3,)}",    // quote left open
        "{'descr': '<u1\", 'fortran_order': False, 'shape': (3,)}",  // mismatched quotes
        "{'descr': '<u1', 'fortran_order': False, 'shape': (3,)",    // no '}'
        "{'descr': '<u1', 'fortran_order': False, 'shape': (3,)}}",  // text after the dict
        "{'descr': '<u1', 'fortran_order': false, 'shape': (3,)}",   // not a Python name
        "{'descr': '<u1', 'fortran_order': False, 'shape': (03,)}",  // leading zero
        "{'descr': '<u1', 'fortran_order': False, 'shape': (3.0,)}",
        "{'descr': '<u1', 'fortran_order': False, 'shape': (3,,)}",
        "{'descr': '<u1', 'fortran_order': False, 'shape': (,)}",
        "{,}",
        "",
    };
    for (const char* d : bad) {
      INFO("header " << d);
      CHECK_THAT(rejection_of_dict(d, 3), StartsWith("malformed header"));
    }
  }
  SECTION("a NUL byte in the padding") {
    std::string header = dict_of("<u1", "(3,)");
    header += '\0';
    header += '\n';
    bytes file = raw_preamble(header, 1);
    file.resize(file.size() + 3);
    CHECK_THAT(rejection(file), StartsWith("malformed header"));
  }
  SECTION("not a dict") {
    CHECK_THAT(rejection_of_dict("['descr', '<u1']"), Equals("malformed header: it is not a dict"));
    CHECK_THAT(rejection_of_dict("()"), Equals("malformed header: it is not a dict"));
  }
  SECTION("nested too deeply") {
    const std::string deep = "{'descr': " + std::string(200, '[') + std::string(200, ']') +
                             ", 'fortran_order': False, 'shape': (3,)}";
    CHECK_THAT(rejection_of_dict(deep, 3), Contains("nested too deeply"));
  }
  SECTION("missing keys") {
    CHECK_THAT(rejection_of_dict("{'fortran_order': False, 'shape': (3,)}", 3),
               Equals("malformed header: missing key 'descr'"));
    CHECK_THAT(rejection_of_dict("{'descr': '<u1', 'shape': (3,)}", 3),
               Equals("malformed header: missing key 'fortran_order'"));
    CHECK_THAT(rejection_of_dict("{'descr': '<u1', 'fortran_order': False}", 3),
               Equals("malformed header: missing key 'shape'"));
    CHECK_THAT(rejection_of_dict("{}", 3), Contains("missing key"));
  }
  SECTION("unexpected and repeated keys") {
    CHECK_THAT(
        rejection_of_dict("{'descr': '<u1', 'fortran_order': False, 'shape': (3,), 'extra': 1}", 3),
        StartsWith("malformed header: unexpected key 'extra'"));
    CHECK_THAT(
        rejection_of_dict("{'descr': '<u1', 'fortran_order': False, 'shape': (3,), 5: 1}", 3),
        StartsWith("malformed header: unexpected key that is not a string"));
    CHECK_THAT(rejection_of_dict(
                   "{'descr': '<u1', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}", 3),
               Equals("malformed header: key 'shape' appears twice"));
  }
  SECTION("values of the wrong kind") {
    CHECK_THAT(rejection_of_dict("{'descr': 8, 'fortran_order': False, 'shape': (3,)}", 3),
               StartsWith("malformed header: 'descr' must be a string"));
    CHECK_THAT(rejection_of_dict("{'descr': '<u1', 'fortran_order': 0, 'shape': (3,)}", 3),
               Equals("malformed header: 'fortran_order' must be True or False"));
    CHECK_THAT(rejection_of_dict("{'descr': '<u1', 'fortran_order': None, 'shape': (3,)}", 3),
               Equals("malformed header: 'fortran_order' must be True or False"));
    for (const char* shape : {"(3)", "[3]", "3", "('3',)", "(None,)", "((3,),)"}) {
      INFO("shape " << shape);
      CHECK_THAT(rejection_of_dict(dict_of("<u1", shape), 3),
                 StartsWith("malformed header: 'shape' must be a tuple of integers"));
    }
    CHECK_THAT(rejection_of_dict(dict_of("<u1", "(-3,)"), 3),
               Equals("malformed header: negative dimension -3 in shape"));
    CHECK_THAT(rejection_of_dict(dict_of("<u1", "(3, -1)"), 3),
               Equals("malformed header: negative dimension -1 in shape"));
  }
  SECTION("version 3.0 headers must be UTF-8") {
    std::string dict = dict_of("<u1", "(3,)");
    dict.replace(dict.find("<u1"), 3, "\xff\xfe");
    CHECK_THAT(rejection(npy_file(dict, 3, 3)), Equals("malformed header: not valid UTF-8"));
    // versions 1.0 and 2.0 are latin-1: the same bytes only make an unknown dtype there
    CHECK_THAT(rejection(npy_file(dict, 3, 2)), StartsWith("unsupported dtype '\\xff\\xfe'"));
    // well-formed UTF-8 passes the check and is judged as a dtype
    std::string utf8 = dict_of("<u1", "(3,)");
    utf8.replace(utf8.find("<u1"), 3, "\xc3\xa9");
    CHECK_THAT(rejection(npy_file(utf8, 3, 3)), StartsWith("unsupported dtype"));
  }
}

TEST_CASE("npy: refuses unsupported arrays", "[npy]") {
  SECTION("big-endian") {
    CHECK_THAT(rejection_of_dict(dict_of(">f8", "(3,)"), 24),
               Equals("big-endian arrays are not supported; convert with arr.astype('<f8')"));
    CHECK_THAT(rejection_of_dict(dict_of(">i2", "(3,)"), 6),
               Equals("big-endian arrays are not supported; convert with arr.astype('<i2')"));
    CHECK_THAT(rejection_of_dict(dict_of(">u4", "(3,)"), 12),
               Equals("big-endian arrays are not supported; convert with arr.astype('<u4')"));
  }
  SECTION("Fortran order") {
    CHECK_THAT(rejection_of_dict(dict_of("<f8", "(2, 3)", true), 48),
               StartsWith("Fortran-order arrays are not supported"));
  }
  SECTION("structured dtypes") {
    CHECK_THAT(
        rejection_of_dict(
            "{'descr': [('x', '<f8'), ('y', '<i4', (2,))], 'fortran_order': False, 'shape': (3,)}",
            48),
        StartsWith("structured dtypes"));
  }
  SECTION("object arrays") {
    CHECK_THAT(rejection_of_dict(dict_of("|O", "(3,)"), 24),
               Equals("unsupported dtype '|O': arrays of Python objects cannot be read"));
  }
  SECTION("other element types") {
    for (const char* descr :
         {"<f2", "<c8", "<c16", "<U5", "|S3", "|b1", "|V8", "<M8[ns]", "<f16", "<u3", "d", ""}) {
      INFO("descr " << descr);
      CHECK_THAT(rejection_of_dict(dict_of(descr, "(3,)"), 3),
                 StartsWith("unsupported dtype '" + std::string(descr) + "'"));
    }
    // a byte order mark that is wrong for the type is not read as big-endian
    CHECK_THAT(rejection_of_dict(dict_of(">f2", "(3,)"), 6), StartsWith("unsupported dtype '>f2'"));
    CHECK_THAT(rejection_of_dict(dict_of("|u2", "(3,)"), 6),
               StartsWith("unsupported dtype '|u2': byte order '|' is only for 1-byte types"));
  }
  SECTION("three or more dimensions") {
    CHECK_THAT(rejection_of_dict(dict_of("<f8", "(2, 3, 4)"), 192),
               StartsWith("only 1-D and 2-D arrays are supported"));
    CHECK_THAT(rejection_of_dict(dict_of("<f8", "(2, 3, 4)"), 192),
               Contains("shape (2, 3, 4) has 3 dimensions"));
    CHECK_THAT(rejection_of_dict(dict_of("<f8", "(1, 1, 1, 1)"), 8),
               StartsWith("only 1-D and 2-D arrays are supported"));
  }
  SECTION("sizes that overflow 64 bits") {
    // 2^61 elements of 8 bytes: exactly 2^64
    CHECK_THAT(rejection_of_dict(dict_of("<f8", "(2305843009213693952,)")),
               StartsWith("array too large: shape (2305843009213693952,)"));
    CHECK_THAT(rejection_of_dict(dict_of("<u1", "(4294967296, 4294967296)")),
               StartsWith("array too large"));
    // a dimension that does not fit in 64 bits at all, even beside a zero
    CHECK_THAT(rejection_of_dict(dict_of("<u1", "(0, 18446744073709551616)")),
               StartsWith("array too large"));
    // the largest that fits is only refused for want of data
    CHECK_THAT(rejection_of_dict(dict_of("<u1", "(18446744073709551615,)")),
               StartsWith("data truncated"));
  }
}

TEST_CASE("npy: the data must match the header exactly", "[npy]") {
  const std::string d = dict_of("<f8", "(10,)");
  CHECK_THAT(rejection_of_dict(d, 40), Equals("data truncated: header says 80 bytes, file has 40"));
  CHECK_THAT(rejection_of_dict(d, 0), Equals("data truncated: header says 80 bytes, file has 0"));
  CHECK_THAT(rejection_of_dict(d, 81),
             Equals("unexpected data after the array: header says 80 bytes, file has 81"));
  CHECK(rejection_of_dict(d, 80) == "<accepted>");
  CHECK_THAT(rejection_of_dict(dict_of("<f8", "(0,)"), 1),
             Equals("unexpected data after the array: header says 0 bytes, file has 1"));
}

TEST_CASE("npy: parse_npy needs the whole preamble", "[npy]") {
  const bytes file = npy_file(dict_of("<u1", "(3,)"), 3);
  CHECK_THROWS_AS(parse_npy("t.npy", std::span(file).first(40), file.size()),
                  std::invalid_argument);
  CHECK_THROWS_AS(parse_npy("t.npy", file, file.size() - 1), std::invalid_argument);
  // the preamble alone is enough
  CHECK(parse_npy("t.npy", std::span(file).first(128), file.size()).data_bytes == 3);
}

TEST_CASE("npy: read_npy_header on real files", "[npy]") {
  temp_dir dir;
  SECTION("round trip") {
    for (int major : {1, 2, 3}) {
      INFO("version " << major);
      const bytes file = npy_file(dict_of("<i4", "(6, 2)"), 48, major);
      const std::string path = dir.write("a" + std::to_string(major) + ".npy", file);
      const npy_header h = read_npy_header(path);
      CHECK(h.version_major == major);
      CHECK(h.type == dtype::i32);
      CHECK(h.shape == std::vector<std::uint64_t>{6, 2});
      CHECK(h.data_offset == 128);
      CHECK(h.data_bytes == 48);
    }
  }
  SECTION("a file larger than the preamble read") {
    const std::size_t n = 3 * hetpipe::io::npy_max_preamble;
    const std::string path =
        dir.write("big.npy", npy_file(dict_of("<u1", "(" + std::to_string(n) + ",)"), n));
    CHECK(read_npy_header(path).data_bytes == n);
  }
  SECTION("an empty array") {
    const std::string path = dir.write("empty.npy", npy_file(dict_of("<f4", "(0,)"), 0));
    const npy_header h = read_npy_header(path);
    CHECK(h.data_bytes == 0);
    CHECK(h.data_offset == 128);
  }
  SECTION("refusals name the file") {
    const std::string path = dir.write("short.npy", npy_file(dict_of("<f8", "(4,)"), 8));
    try {
      read_npy_header(path);
      FAIL("accepted a truncated file");
    } catch (const input_error& e) {
      CHECK(e.file() == path);
      CHECK_THAT(e.reason(), Equals("data truncated: header says 32 bytes, file has 8"));
    }
    const std::string empty = dir.write("empty", {});
    CHECK_THROWS_AS(read_npy_header(empty), input_error);
  }
  SECTION("a missing file is an io_error") {
    const std::string path = (dir.path / "missing.npy").string();
    try {
      read_npy_header(path);
      FAIL("opened a missing file");
    } catch (const io_error& e) {
      CHECK(e.file() == path);
      CHECK(e.code() == -ENOENT);
      CHECK_THAT(e.reason(), StartsWith("cannot open"));
    }
  }
  SECTION("a directory is an io_error") {
    CHECK_THROWS_AS(read_npy_header(dir.path.string()), io_error);
  }
}

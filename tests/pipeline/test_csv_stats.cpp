// hetpipe::stats of CSV inputs: the bits of the same doubles' stats as an f64 array, for every
// chunk size, thread count and way in (file or pipe); headers, column picks, delimiters; and the
// line of a bad record.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>

#include <hetpipe/hetpipe.hpp>

#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/pipe_feed.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

void write_string(const std::string& path, const std::string& s) {
  test::write_file(path, s.data(), s.size());
}

// A CSV of `rows` records of `cols` numbers in many spellings (integers, long decimals,
// exponents, signs, spaces, quotes, missing values, nan, inf), and each column's values as
// strtod reads them.
struct csv_data {
  std::string text;
  std::vector<std::vector<double>> columns;
};

csv_data make_csv(std::size_t rows, std::size_t cols, std::uint64_t seed, bool header,
                  char delim = ',') {
  std::mt19937_64 g(seed);
  csv_data d;
  d.columns.resize(cols);
  if (header)
    for (std::size_t c = 0; c < cols; ++c)
      d.text += (c ? std::string(1, delim) : "") + "col" + std::to_string(c);
  if (header) d.text += g() % 2 ? "\r\n" : "\n";
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      std::string v;
      switch (g() % 10) {
        case 0:
          v = std::to_string(static_cast<std::int64_t>(g() >> 20) - (std::int64_t{1} << 43));
          break;
        case 1:
          v = std::to_string(g() % 1000) + "." + std::to_string(g() % 100000000000000000ull);
          break;
        case 2:
          v = (g() % 2 ? "-" : "+") + std::to_string(g() % 10) + "." +
              std::to_string(g() % 1000000) + "e" +
              std::to_string(static_cast<int>(g() % 600) - 300);
          break;
        case 3:
          v = "";  // missing
          break;
        case 4:
          v = g() % 50 ? " " + std::to_string(g() % 100) + " " : (g() % 2 ? "nan" : "-inf");
          break;
        case 5:
          v = "\"" + std::to_string(g() % 7) + ".25\"";
          break;
        default: {
          char buf[40];
          std::snprintf(
              buf, sizeof buf, "%.17g",
              std::ldexp(static_cast<double>(g() >> 11), static_cast<int>(g() % 40) - 60));
          v = buf;
        }
      }
      std::string bare = v;
      if (!bare.empty() && bare.front() == '"') bare = bare.substr(1, bare.size() - 2);
      const bool blank = bare.find_first_not_of(' ') == std::string::npos;
      d.columns[c].push_back(blank ? std::nan("") : std::strtod(bare.c_str(), nullptr));
      d.text += (c ? std::string(1, delim) : "") + v;
    }
    d.text += r % 7 == 3 ? "\r\n" : "\n";
    if (r % 100 == 50) d.text += "\n";  // blank lines are skipped
  }
  return d;
}

std::vector<column_stats> reference(const test::temp_dir& dir, const csv_data& d) {
  std::vector<column_stats> out;
  for (std::size_t c = 0; c < d.columns.size(); ++c) {
    const std::string f = dir.file("ref" + std::to_string(c));
    test::write_vector(f, d.columns[c]);
    out.push_back(stats({f}, dtype::f64, test::cpu_options(0, 1))[0].columns[0]);
  }
  return out;
}

void check_columns(const stats_result& got, const std::vector<column_stats>& want) {
  REQUIRE(got.columns.size() == want.size());
  CHECK(got.type == dtype::f64);
  for (std::size_t c = 0; c < want.size(); ++c) {
    CAPTURE(c, got.columns[c].count, want[c].count, got.columns[c].sum, want[c].sum);
    CHECK(test::same_stats(got.columns[c], want[c]));
  }
}

}  // namespace

TEST_CASE("CSV stats equal the stats of the same doubles, for every chunk size and thread count",
          "[stats][csv]") {
  test::temp_dir dir;
  const csv_data d = make_csv(30000, 5, 1, true);
  const std::string f = dir.file("data.csv");
  write_string(f, d.text);
  const auto want = reference(dir, d);
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{100000}, std::size_t{16} << 20})
    for (unsigned threads : {1u, 2u, 5u}) {
      CAPTURE(chunk, threads);
      const auto got = stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, threads));
      check_columns(got[0], want);
      CHECK(got[0].names == std::vector<std::string>{"col0", "col1", "col2", "col3", "col4"});
      CHECK(got[0].shape == std::vector<std::uint64_t>{30000, 5});
    }
}

TEST_CASE("CSV stats of a pipe equal those of the file, with or without a header", "[stats][csv]") {
  test::temp_dir dir;
  for (bool header : {true, false}) {
    CAPTURE(header);
    const csv_data d = make_csv(5000, 3, 2 + header, header);
    const std::string f = dir.file(header ? "h.csv" : "n.csv");
    write_string(f, d.text);
    const auto want = reference(dir, d);
    csv_spec spec;
    spec.all = true;
    test::pipe_feed feed(std::as_bytes(std::span(d.text)), 777);
    const std::string pipe = "/dev/fd/" + std::to_string(feed.read_fd());
    const auto got = stats({pipe, f}, std::nullopt, spec, test::cpu_options(4096, 2));
    check_columns(got[0], want);
    check_columns(got[1], want);
    CHECK(got[0].names == got[1].names);
    CHECK(got[0].names[0] == (header ? "col0" : "1"));
  }
}

TEST_CASE("CSV headers, column picks and delimiters", "[stats][csv]") {
  test::temp_dir dir;
  const std::string f = dir.file("t.tsv");
  write_string(f,
               "\xEF\xBB\xBF"
               "a\t\"b c\"\tname\n1\t2\tx\n3\t4\ty\n");
  csv_spec spec;
  spec.columns = {"b c", "1"};
  auto r = stats({f}, std::nullopt, spec, test::cpu_options(0, 1));
  CHECK(r[0].names == std::vector<std::string>{"b c", "a"});
  CHECK(r[0].skipped_columns.empty());
  CHECK(r[0].columns[0].sum == 6);
  CHECK(r[0].columns[1].sum == 4);
  CHECK(r[0].shape == std::vector<std::uint64_t>{2, 2});

  // Without --columns, the text column is left out and named.
  r = stats({f}, std::nullopt, csv_spec{}, test::cpu_options(0, 1));
  CHECK(r[0].names == std::vector<std::string>{"a", "b c"});
  CHECK(r[0].skipped_columns == std::vector<std::string>{"name"});
  CHECK(r[0].shape == std::vector<std::uint64_t>{2, 2});

  // A numeric first line is a record unless --header says otherwise; names are then numbers.
  const std::string g = dir.file("n.csv");
  write_string(g, "10;20\n30;40\n");
  spec = {};
  spec.delimiter = ';';
  r = stats({g}, std::nullopt, spec, test::cpu_options(0, 1));
  CHECK(r[0].names == std::vector<std::string>{"1", "2"});
  CHECK(r[0].columns[0].sum == 40);
  spec.header = csv_spec::header_mode::present;
  r = stats({g}, std::nullopt, spec, test::cpu_options(0, 1));
  CHECK(r[0].names == std::vector<std::string>{"10", "20"});
  CHECK(r[0].columns[0].sum == 30);
  // Blank lines before the first line, and a byte-order mark on a file without a header, are
  // passed over, in a file and in a pipe; an error after them names its line in the file.
  const std::string b = dir.file("blank.csv");
  write_string(b, "\xEF\xBB\xBF\n\r\n\n7,8\n9,10\n");
  spec = {};
  spec.all = true;
  for (int k = 0; k < 2; ++k) {
    const std::string text = k ? "\n\n7,8\n9,10\n" : "\xEF\xBB\xBF\n\r\n\n7,8\n9,10\n";
    test::pipe_feed feed(std::as_bytes(std::span(text)));
    r = stats({b, "/dev/fd/" + std::to_string(feed.read_fd())}, std::nullopt, spec,
              test::cpu_options(0, 1));
    for (const auto& x : r) {
      CHECK(x.names == std::vector<std::string>{"1", "2"});
      CHECK(x.columns[0].sum == 16);
      CHECK(x.columns[1].sum == 18);
      CHECK(x.skipped_columns.empty());
    }
  }
  write_string(b,
               "\xEF\xBB\xBF"
               "7,8\n9,10\n");
  r = stats({b}, std::nullopt, spec, test::cpu_options(0, 1));
  CHECK(r[0].columns[0].sum == 16);
  CHECK(r[0].skipped_columns.empty());
  write_string(b, "\n\nx,y\n1,2\n3\n");
  CHECK_THROWS_MATCHES(stats({b}, std::nullopt, spec, test::cpu_options(0, 1)), input_error,
                       test::what(Catch::Matchers::Contains(b + ": line 5: has 1 field")));
  write_string(b, "\n\n\"x\n");
  CHECK_THROWS_MATCHES(stats({b}, std::nullopt, spec, test::cpu_options(0, 1)), input_error,
                       test::what(Catch::Matchers::Contains(b + ": line 3: a quoted field")));

  // A header line that is all there is: no records.
  const std::string h = dir.file("h.csv");
  write_string(h, "x,y");
  r = stats({h}, std::nullopt, csv_spec{}, test::cpu_options(0, 1));
  CHECK(r[0].columns.size() == 2);
  CHECK(r[0].columns[0].count == 0);
  CHECK(r[0].shape == std::vector<std::uint64_t>{0, 2});

  spec = {};
  spec.columns = {"nope"};
  CHECK_THROWS_MATCHES(stats({f}, std::nullopt, spec, test::cpu_options(0, 1)), usage_error,
                       test::what(Catch::Matchers::Contains("no column 'nope'")));
  spec.columns = {"4"};
  CHECK_THROWS_MATCHES(stats({f}, std::nullopt, spec, test::cpu_options(0, 1)), usage_error,
                       test::what(Catch::Matchers::Contains("numbers go from 1 to 3")));
}

TEST_CASE(
    "A bad CSV record is named by its line, whatever the chunk size; text columns are left "
    "out unless named",
    "[stats][csv]") {
  test::temp_dir dir;
  std::string text = "a,b\n";
  for (int i = 0; i < 20000; ++i) text += std::to_string(i) + "," + std::to_string(i % 13) + "\n";
  const auto with_line = [&](int line, const std::string& record) {
    std::string t = text;
    std::size_t at = 0;
    for (int l = 1; l < line; ++l) at = t.find('\n', at) + 1;
    t.insert(at, record + "\n");
    return t;
  };
  const std::string f = dir.file("bad.csv");
  struct row {
    int line;
    std::string record, message;
    const char* text_column;  // left out unless named (nullptr: an error either way)
  };
  const row rows[] = {
      {2, "1,abc", "line 2: column 2 (\"b\"): 'abc' is not a number", "b"},
      {15001, "7,8,9", "line 15001: has 3 fields where the first record has 2", nullptr},
      {20002, "\"1,2", "line 20002: a quoted field is not closed", nullptr},
      {9999, "0x1f,2", "line 9999: column 1 (\"a\"): '0x1f' is not a number", "a"},
  };
  csv_spec named;
  named.columns = {"a", "b"};
  for (const row& r : rows) {
    write_string(f, with_line(r.line, r.record));
    for (std::size_t chunk : {std::size_t{4096}, std::size_t{1} << 20}) {
      CAPTURE(r.line, chunk);
      CHECK_THROWS_MATCHES(stats({f}, std::nullopt, named, test::cpu_options(chunk, 2)),
                           input_error,
                           test::what(Catch::Matchers::Contains(f + ": " + r.message)));
      if (!r.text_column) {
        CHECK_THROWS_MATCHES(stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, 2)),
                             input_error,
                             test::what(Catch::Matchers::Contains(f + ": " + r.message)));
        continue;
      }
      // Not named, the column with text is left out, whichever chunk met it; the other is whole.
      const auto got = stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, 2));
      CHECK(got[0].skipped_columns == std::vector<std::string>{r.text_column});
      REQUIRE(got[0].columns.size() == 1);
      CHECK(got[0].names[0] == (std::string(r.text_column) == "a" ? "b" : "a"));
      CHECK(got[0].columns[0].count == 20001);
      CHECK(got[0].shape == std::vector<std::uint64_t>{20001, 1});
    }
  }
  // --device gpu: GPU lanes where a GPU is usable (tests/gpu/test_gpu_csv.cpp compares them),
  // else the job's one reason.
  write_string(f, text);
  options o = test::cpu_options(0, 1);
  o.device = device_mode::gpu;
  if (gpu_count() == 0)
    CHECK_THROWS_MATCHES(stats({f}, std::nullopt, csv_spec{}, o), error,
                         test::what(Catch::Matchers::Contains("--device gpu: ")));
}

TEST_CASE("CSV and binary inputs in one call keep their order", "[stats][csv]") {
  test::temp_dir dir;
  const std::string c = dir.file("x.csv"), b = dir.file("y.f64");
  write_string(c, "v\n1\n2\n");
  test::write_vector(b, std::vector<double>{5, 6, 7});
  job_report rep;
  const auto r = stats({b, c, b}, dtype::f64, csv_spec{}, test::cpu_options(0, 1), &rep);
  REQUIRE(r.size() == 3);
  CHECK(r[0].columns[0].sum == 18);
  CHECK(r[1].columns[0].sum == 3);
  CHECK(r[1].names == std::vector<std::string>{"v"});
  CHECK(r[2].file == b);
  CHECK(rep.bytes == 2 * 24 + 4);  // both jobs' bytes (the CSV's after its header)
}

TEST_CASE("CSV quoted fields may hold line breaks, wherever the chunks are cut", "[stats][csv]") {
  test::temp_dir dir;
  std::mt19937_64 g(8);
  // The same records twice: with notes that hold line breaks (quoted), and with the breaks made
  // spaces. The numbers' statistics must not tell them apart.
  std::string multi = "v,note,w\r\n", flat = "v,note,w\r\n";
  const char* notes[] = {"\"one\ntwo\"", "\"\"", "plain", "\"a, \"\"b\"\"\n\nc\"", "\"\n\""};
  for (int i = 0; i < 20000; ++i) {
    std::string note = notes[g() % 5];
    if (g() % 50 == 0)
      note = "\"" + std::string(g() % 9000, 'z') + "\n" + std::string(50, 'q') + "\"";
    std::string flat_note = note;
    std::replace(flat_note.begin(), flat_note.end(), '\n', ' ');
    const std::string v =
        std::to_string(static_cast<int>(g() % 2001) - 1000) + "." + std::to_string(g() % 100);
    const std::string w = std::to_string(g() % 7);
    multi += v + "," + note + "," + w + "\r\n";
    flat += v + "," + flat_note + "," + w + "\r\n";
  }
  const std::string m = dir.file("multi.csv"), f = dir.file("flat.csv");
  write_string(m, multi);
  write_string(f, flat);
  const auto want = stats({f}, std::nullopt, csv_spec{}, test::cpu_options(1 << 20, 2));
  REQUIRE(want[0].skipped_columns == std::vector<std::string>{"note"});
  REQUIRE(want[0].shape == std::vector<std::uint64_t>{20000, 2});
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{65536}, std::size_t{1} << 20})
    for (unsigned threads : {1u, 2u}) {
      CAPTURE(chunk, threads);
      const auto got = stats({m}, std::nullopt, csv_spec{}, test::cpu_options(chunk, threads));
      CHECK(test::same_results(want, got));
      CHECK(got[0].shape == want[0].shape);
      CHECK(got[0].skipped_columns == want[0].skipped_columns);
    }
  // A pipe cannot be read again: its chunks keep their bytes for the parse at the merge.
  csv_spec spec;
  spec.all = true;
  test::pipe_feed feed(std::as_bytes(std::span(multi)), 1001);
  const std::string pipe = "/dev/fd/" + std::to_string(feed.read_fd());
  const auto piped = stats({pipe}, std::nullopt, spec, test::cpu_options(4096, 2));
  CHECK(test::same_results(want, piped));
  // The first line may be a record that goes on over lines too (no header).
  write_string(m, "\"1\n\",2\n3,4\n");
  csv_spec no_header;
  no_header.header = csv_spec::header_mode::absent;
  no_header.columns = {"2"};
  const auto first = stats({m}, std::nullopt, no_header, test::cpu_options(0, 1));
  CHECK(first[0].columns[0].sum == 6);
}

TEST_CASE("The bad CSV record named is the first in the file, whichever lane met it",
          "[stats][csv]") {
  test::temp_dir dir;
  std::string text = "a,b\n";
  for (int i = 0; i < 30000; ++i)
    text += (i == 4000 ? "x" : i == 25000 ? "1,2,3" : std::to_string(i) + ",1") + std::string("\n");
  const std::string f = dir.file("two_bad.csv");
  write_string(f, text);
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{65536}})
    for (unsigned threads : {1u, 2u}) {
      CAPTURE(chunk, threads);
      CHECK_THROWS_MATCHES(stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, threads)),
                           input_error,
                           test::what(Catch::Matchers::Contains(
                               f + ": line 4002: has 1 field where the first record has 2")));
    }
}

TEST_CASE("A chunk cut inside a quoted field is parsed again, however long its wrong parse ran",
          "[stats][csv]") {
  // The second chunk begins inside a note's line breaks; parsed alone, from its note's closing
  // quote on it looks like one open record of megabytes, which is no error of the file's.
  test::temp_dir dir;
  const std::size_t chunk = std::size_t{2} << 20;
  std::string text = "a,note,b\n", flat = text;
  std::string rows;
  while (rows.size() < chunk - 12) rows += "1,plain,2\n";  // the note straddles the cut
  text += rows, flat += rows;
  // Its lines read alone are records, then a quote opened and never closed.
  text += "3,\"one\n7,8,9\n7,8,9\n7,8,9\n8,\",4\n";
  flat += "3,\"one 7,8,9 7,8,9 7,8,9 8,\",4\n";
  std::string more;
  while (more.size() < (std::size_t{3} << 20)) more += "5,x,6\n";
  text += more, flat += more;
  const std::string m = dir.file("m.csv"), f = dir.file("f.csv");
  write_string(m, text);
  write_string(f, flat);
  const auto want = stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, 1));
  for (unsigned threads : {1u, 2u}) {
    CAPTURE(threads);
    const auto got = stats({m}, std::nullopt, csv_spec{}, test::cpu_options(chunk, threads));
    CHECK(test::same_results(want, got));
  }
}

TEST_CASE("A bad record that spans lines is named by its first line, wherever the cut falls",
          "[stats][csv]") {
  test::temp_dir dir;
  std::string text = "a,note,b\n";
  int line = 2, bad_line = 0;
  for (int i = 0; i < 6000; ++i) {
    if (i == 4321) {  // text after the note's closing quote, two lines down
      bad_line = line;
      text += "1,\"x\ny\nz\"!,2\n";
      line += 3;
      continue;
    }
    text += i % 3 ? "1,\"p\nq\",2\n" : "1,plain,2\n";
    line += i % 3 ? 2 : 1;
  }
  const std::string f = dir.file("bad_multi.csv");
  write_string(f, text);
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{5000}, std::size_t{65536}})
    for (unsigned threads : {1u, 2u}) {
      CAPTURE(chunk, threads);
      CHECK_THROWS_MATCHES(
          stats({f}, std::nullopt, csv_spec{}, test::cpu_options(chunk, threads)), input_error,
          test::what(Catch::Matchers::Contains(f + ": line " + std::to_string(bad_line) +
                                               ": text after a closing quote")));
    }
}

TEST_CASE("Random CSV with quoted line breaks: the cut changes neither the bits nor the error",
          "[stats][csv]") {
  // Each file parsed in one chunk is the reference; cut at many places, on one lane or two, from a
  // file or a pipe, it must give the same statistics, or the same error.
  test::temp_dir dir;
  std::mt19937_64 g(2029);
  const char* pieces[] = {"1",        "-2.5", "",           "\"3\"", "\"x\ny\"", "\"a,\"\"b\"\"\"",
                          "\"\r\n\"", "text", "\"\n\n\n\"", "7e3"};
  const char* bad_records[] = {"1,2\n", "1,\"x\"y,2\n", "1,2,3,4\n", "1,\"open\n"};
  int errors = 0, good = 0;
  for (int file = 0; file < 24; ++file) {
    const bool crlf = g() % 2;
    std::string text = crlf ? "a,b,c\r\n" : "a,b,c\n";
    const int records = 4000 + static_cast<int>(g() % 4000);
    const int bad_at = g() % 3 == 0 ? static_cast<int>(g() % records) : -1;
    for (int r = 0; r < records; ++r) {
      if (g() % 40 == 0) text += crlf ? "\r\n" : "\n";
      if (r == bad_at) {
        text += bad_records[g() % 4];
        continue;
      }
      for (int f = 0; f < 3; ++f) {
        if (f) text += ',';
        // The first and last columns hold numbers (some quoted); the middle one anything.
        if (f == 1 && g() % 700 == 0) {  // a note longer than a chunk, of lines like records
          text += '"';
          for (int k = 0; k < 2000; ++k) text += "1,2,3\n";
          text += '"';
          continue;
        }
        text += f == 1 ? pieces[g() % 10] : pieces[g() % 4 == 0 ? 3 : g() % 3];
      }
      text += crlf ? "\r\n" : "\n";
    }
    const std::string path = dir.file("r" + std::to_string(file) + ".csv");
    write_string(path, text);
    std::string want_error;
    std::vector<stats_result> want;
    try {
      want = stats({path}, std::nullopt, csv_spec{}, test::cpu_options(std::size_t{1} << 20, 1));
      ++good;
    } catch (const input_error& e) {
      want_error = e.what();
      ++errors;
    }
    CAPTURE(file, want_error);
    const auto same = [&](const std::string& in, const options& o, const csv_spec& spec) {
      try {
        const auto got = stats({in}, std::nullopt, spec, o);
        CHECK(want_error.empty());
        if (want_error.empty()) {
          CHECK(test::same_results(want, got));
          CHECK(got[0].shape == want[0].shape);
          CHECK(got[0].skipped_columns == want[0].skipped_columns);
        }
      } catch (const input_error& e) {
        if (in == path)
          CHECK(std::string(e.what()) == want_error);
        else  // a stream names the byte, not the line
          CHECK_FALSE(want_error.empty());
      }
    };
    for (std::size_t chunk : {std::size_t{4096}, std::size_t{4099}, std::size_t{12345}})
      for (unsigned threads : {1u, 2u}) {
        CAPTURE(chunk, threads);
        same(path, test::cpu_options(chunk, threads), csv_spec{});
      }
    csv_spec spec;
    spec.all = true;
    test::pipe_feed feed(std::as_bytes(std::span(text)), 333);
    same("/dev/fd/" + std::to_string(feed.read_fd()), test::cpu_options(4096, 2), spec);
  }
  CHECK(good > 8);
  CHECK(errors > 3);
}

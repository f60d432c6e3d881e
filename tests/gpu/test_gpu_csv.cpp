// GPU and hybrid CSV stats against CPU lanes, bit for bit, through the public API: numbers of
// every form, text columns, blank lines and CRLF, chunks the device hands back to the host, and
// bad records named by the same line.
#include <catch2/catch.hpp>

#include <cstdio>
#include <random>
#include <string>

#include <hetpipe/hetpipe.hpp>

#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

// A number as people write them: integers, fixed and scientific notation at every precision,
// signs, spaces, quotes, missing values, infinities and NaN.
std::string number(std::mt19937_64& g) {
  std::uniform_real_distribution<double> u(-1e6, 1e6);
  char buf[64];
  switch (g() % 12) {
    case 0:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(g() % 2000001) - 1000000);
      break;
    case 1:
      std::snprintf(buf, sizeof buf, "%.2f", u(g));
      break;
    case 2:
      std::snprintf(buf, sizeof buf, "%.17g", u(g));
      break;
    case 3:
      std::snprintf(buf, sizeof buf, "%.6e", std::ldexp(u(g), static_cast<int>(g() % 400) - 200));
      break;
    case 4:
      std::snprintf(buf, sizeof buf, "%.17g",
                    std::bit_cast<double>((g() & 0x3fffffffffffffffull) | 0x3000000000000000ull));
      break;
    case 5:
      std::snprintf(buf, sizeof buf, "%.9g", u(g) * 1e-9);
      break;
    case 6:
      return "";
    case 7:
      std::snprintf(buf, sizeof buf, " %.3f ", u(g));
      break;
    case 8:
      std::snprintf(buf, sizeof buf, "\"%.4f\"", u(g));
      break;
    case 9:
      return g() % 2 ? "-0" : "+.5";
    case 10:
      return g() % 3 == 0 ? "inf" : g() % 2 ? "-Infinity" : "nan";
    default:
      std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(g() % 1000));
      break;
  }
  return buf;
}

// `rows` records of `fields` fields; text in the fields listed in `text_fields`.
std::string csv_text(std::size_t rows, std::size_t fields, std::mt19937_64& g, bool crlf,
                     const std::vector<std::size_t>& text_fields = {}) {
  std::string s;
  for (std::size_t f = 0; f < fields; ++f) s += (f ? ",c" : "c") + std::to_string(f);
  s += crlf ? "\r\n" : "\n";
  for (std::size_t r = 0; r < rows; ++r) {
    if (g() % 50 == 0) s += crlf ? "\r\n" : "\n";  // blank lines are passed over
    for (std::size_t f = 0; f < fields; ++f) {
      if (f) s += ',';
      const bool text = std::find(text_fields.begin(), text_fields.end(), f) != text_fields.end();
      s += text && g() % 3 == 0
               ? (g() % 2 ? "\"say \"\"hi\"\", ok\"" : "station-" + std::to_string(g() % 90))
               : number(g);
    }
    s += crlf ? "\r\n" : "\n";
  }
  return s;
}

void check_same(const std::vector<stats_result>& want, const std::vector<stats_result>& got) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(want[i].file);
    CHECK(got[i].names == want[i].names);
    CHECK(got[i].skipped_columns == want[i].skipped_columns);
    CHECK(got[i].shape == want[i].shape);
  }
  CHECK(test::same_results(want, got));
}

}  // namespace

TEST_CASE("GPU and hybrid CSV stats equal the CPU bit for bit for every chunk size", "[gpu][csv]") {
  test::temp_dir dir;
  std::mt19937_64 g(73);
  std::vector<std::string> files;
  const auto add = [&](const std::string& name, const std::string& text) {
    files.push_back(dir.file(name));
    test::write_file(files.back(), text.data(), text.size());
  };
  add("wide.csv", csv_text(3000, 9, g, false, {2, 7}));
  add("crlf.csv", csv_text(20000, 3, g, true));
  add("one.csv", csv_text(50000, 1, g, false));
  add("tiny.csv", "x,y\n1,2\n");
  add("header_only.csv", "x,y\n");
  add("empty.csv", "");
  add("last_line.csv", "a;b\n1;2\n3;4");  // one field: ';' is not the delimiter
  // Quoted fields holding line breaks: the device hands their chunks back, and a chunk it took
  // that began inside one is parsed again at its merge.
  std::string notes = "x,note,y\n";
  for (int r = 0; r < 6000; ++r)
    notes +=
        number(g) + "," + (g() % 4 ? "\"a\nb, \"\"c\"\"\n\"" : "plain") + "," + number(g) + "\n";
  add("notes.csv", notes);
  const auto want = stats(files, std::nullopt, csv_spec{}, test::cpu_options(1u << 20, 2));
  for (std::size_t chunk : {4096u, 65536u, 1u << 20})
    for (auto mode : {device_mode::gpu, device_mode::automatic}) {
      CAPTURE(chunk, static_cast<int>(mode));
      job_report rep;
      const auto got =
          stats(files, std::nullopt, csv_spec{}, test::device_options(mode, chunk), &rep);
      check_same(want, got);
      if (mode == device_mode::gpu) {
        CHECK(rep.gpu_lanes > 0);
        CHECK(rep.cpu_lanes == 0);
        // The device took these chunks itself: nothing in them needs the host.
        for (std::size_t i : {0u, 1u, 2u}) {
          CAPTURE(files[i]);
          CHECK(got[i].gpu_chunks > 0);
          CHECK(got[i].gpu_chunks_on_host == 0);
        }
      }
    }
}

TEST_CASE("GPU CSV lanes hand back numbers they cannot round, and get the host's bits",
          "[gpu][csv]") {
  test::temp_dir dir;
  std::mt19937_64 g(5);
  std::string text = "a,b\n";
  // Long digit strings (more than 19 significant digits), exact ties between two doubles, and
  // values beyond the normal range: the device gives up on some of them, never rounds them wrong.
  for (int r = 0; r < 4000; ++r) {
    const double x = std::ldexp(static_cast<double>(g() >> 11), static_cast<int>(g() % 60) - 30);
    char buf[96];
    switch (r % 4) {
      case 0:
        std::snprintf(buf, sizeof buf, "%.30e", x);
        break;
      case 1:  // odd integers between 2^53 and 2^54: ties between two doubles
        std::snprintf(buf, sizeof buf, "%llu",
                      static_cast<unsigned long long>((1ull << 53) | (g() >> 11) | 1));
        break;
      case 2:  // subnormal
        std::snprintf(buf, sizeof buf, "%.17fe-310",
                      1 + std::ldexp(static_cast<double>(g() >> 11), -53) * 8);
        break;
      default:
        std::snprintf(buf, sizeof buf, "%.17g", x);
    }
    text += std::string(buf) + "," + std::to_string(r) + "\n";
  }
  const std::string file = dir.file("hard.csv");
  test::write_file(file, text.data(), text.size());
  const auto want = stats({file}, std::nullopt, csv_spec{}, test::cpu_options(1u << 20, 2));
  for (std::size_t chunk : {4096u, 1u << 20}) {
    CAPTURE(chunk);
    const auto got =
        stats({file}, std::nullopt, csv_spec{}, test::device_options(device_mode::gpu, chunk));
    check_same(want, got);
    CHECK(got[0].gpu_chunks > 0);
    CHECK(got[0].gpu_chunks_on_host > 0);
  }
}

TEST_CASE("GPU CSV lanes name the bad record's line as the CPU lanes do", "[gpu][csv]") {
  test::temp_dir dir;
  std::mt19937_64 g(9);
  std::string body = csv_text(5000, 3, g, false);
  const auto line_start = [&](std::size_t line) {  // 1-based
    std::size_t at = 0;
    for (std::size_t l = 1; l < line; ++l) at = body.find('\n', at) + 1;
    return at;
  };
  struct bad_case {
    std::string name, replacement;
    csv_spec spec;
    std::string message;
  };
  csv_spec strict;
  strict.columns = {"c0", "c1"};
  const std::vector<bad_case> cases = {
      {"fields", "1,2\n", {}, "line 4001: has 2 fields where the first record has 3"},
      {"quote", "1,\"2,3\n", {}, "line 4001: a quoted field is not closed"},
      {"text", "1,n/a,3\n", strict, "line 4001: column 2 (\"c1\"): 'n/a' is not a number"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    std::string text = body;
    const std::size_t at = line_start(4001);
    text.replace(at, text.find('\n', at) + 1 - at, c.replacement);
    const std::string file = dir.file(c.name + ".csv");
    test::write_file(file, text.data(), text.size());
    for (auto mode : {device_mode::cpu, device_mode::gpu, device_mode::automatic})
      for (std::size_t chunk : {4096u, 1u << 20}) {
        CAPTURE(static_cast<int>(mode), chunk);
        CHECK_THROWS_MATCHES(stats({file}, std::nullopt, c.spec, test::device_options(mode, chunk)),
                             input_error, test::what(Catch::Contains(c.message)));
      }
  }
}

TEST_CASE("GPU CSV lanes keep a field named twice and text columns", "[gpu][csv]") {
  test::temp_dir dir;
  std::mt19937_64 g(11);
  const std::string text = csv_text(8000, 4, g, false, {1});
  const std::string file = dir.file("twice.csv");
  test::write_file(file, text.data(), text.size());
  csv_spec spec;
  spec.columns = {"c3", "c0", "c3"};
  const auto want = stats({file}, std::nullopt, spec, test::cpu_options(1u << 16, 2));
  REQUIRE(want[0].columns.size() == 3);
  const auto got =
      stats({file}, std::nullopt, spec, test::device_options(device_mode::gpu, 1u << 16));
  check_same(want, got);
  CHECK(got[0].gpu_chunks_on_host == 0);
  // Without --columns the text column is left out, by the device's flag.
  const auto all_cpu = stats({file}, std::nullopt, csv_spec{}, test::cpu_options(1u << 16, 2));
  const auto all_gpu =
      stats({file}, std::nullopt, csv_spec{}, test::device_options(device_mode::gpu, 1u << 16));
  REQUIRE(all_cpu[0].skipped_columns == std::vector<std::string>{"c1"});
  check_same(all_cpu, all_gpu);
  CHECK(all_gpu[0].gpu_chunks_on_host == 0);
}

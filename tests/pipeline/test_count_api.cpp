// hetpipe::count_text through the engine: the same counts for any chunk size, lane count and read
// mode, standard input included; unreadable inputs named.
#include <catch2/catch.hpp>

#include <random>

#include <hetpipe/hetpipe.hpp>

#include "support/options.hpp"
#include "support/pipe_feed.hpp"
#include "support/temp_dir.hpp"
#include "support/text.hpp"

using namespace hetpipe;

TEST_CASE("count_text gives the same counts for every chunk size, lane count and read mode",
          "[pipeline][count]") {
  test::temp_dir dir;
  std::mt19937_64 g(21);
  std::vector<std::string> files;
  std::vector<text_counts> want;
  for (std::size_t n : {0u, 1u, 4095u, 4096u, 4097u, 100000u, (5u << 20) + 3u}) {
    auto v = test::random_text(n, g);
    // A word across every other 4 KiB boundary: the cut between chunks must count it once.
    for (std::size_t at = 8192; at + 1 < n; at += 8192) v[at - 1] = v[at] = 'w';
    files.push_back(dir.file("t" + std::to_string(n)));
    test::write_file(files.back(), v.data(), v.size());
    want.push_back(test::reference_counts(v.data(), v.size()));
  }
  for (std::size_t chunk : {4096u, 65536u, 1u << 20, 64u << 20})
    for (unsigned threads : {1u, 2u, 4u})
      for (read_mode reads : {read_mode::map, read_mode::lane, read_mode::pool}) {
        CAPTURE(chunk, threads, static_cast<int>(reads));
        options o = test::cpu_options(chunk, threads);
        o.reads = reads;
        count_spec spec;
        spec.chars = reads != read_mode::pool;  // without characters in one read mode
        const auto got = count_text(files, spec, o);
        REQUIRE(got.size() == files.size());
        for (std::size_t i = 0; i < files.size(); ++i) {
          CAPTURE(files[i]);
          CHECK(got[i].file == files[i]);
          CHECK(got[i].counts.lines == want[i].lines);
          CHECK(got[i].counts.words == want[i].words);
          CHECK(got[i].counts.chars == (spec.chars ? want[i].chars : 0));
          CHECK(got[i].counts.bytes == want[i].bytes);
        }
      }
}

TEST_CASE("count_text reads a pipe in order", "[pipeline][count]") {
  std::mt19937_64 g(22);
  auto v = test::random_text((3u << 20) + 11, g);
  const text_counts want = test::reference_counts(v.data(), v.size());
  test::pipe_feed feed(std::as_bytes(std::span(v)));
  const auto got =
      count_text({"/dev/fd/" + std::to_string(feed.read_fd())}, test::cpu_options(4096, 2));
  CHECK(got[0].counts.lines == want.lines);
  CHECK(got[0].counts.words == want.words);
  CHECK(got[0].counts.chars == want.chars);
  CHECK(got[0].counts.bytes == want.bytes);
}

TEST_CASE("count_text names a file it cannot read", "[pipeline][count]") {
  test::temp_dir dir;
  const std::string missing = dir.file("missing.txt");
  try {
    (void)count_text({missing}, test::cpu_options(0, 1));
    FAIL("no error");
  } catch (const io_error& e) {
    CHECK(e.file() == missing);
  }
}

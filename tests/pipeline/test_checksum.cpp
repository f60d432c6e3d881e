// hetpipe::checksum end to end on CPU lanes: the official BLAKE3 vectors and the CRC check values
// through the chunk-parallel pipeline, for every chunk size and thread count; paths and errors.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <hetpipe/hetpipe.hpp>
#include <nlohmann/json.hpp>

#include "host/crc.hpp"
#include "pipeline/src/engine.hpp"
#include "support/blake3_vectors.hpp"
#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
using test::random_bytes;

namespace {

const test::blake3_vectors& vectors() {
  static const auto v =
      test::load_blake3_vectors(std::string(HETPIPE_TEST_DATA) + "/blake3_test_vectors.json");
  return v;
}

std::vector<std::uint8_t> prefix(const std::vector<std::uint8_t>& v, std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

}  // namespace

TEST_CASE("checksum: the official BLAKE3 vectors for every chunk size and thread count",
          "[checksum]") {
  test::temp_dir dir;
  const auto& vec = vectors();
  std::vector<std::string> files;
  for (const auto& c : vec.cases) {
    const auto data = test::blake3_vector_input(c.input_len);
    files.push_back(dir.file("in" + std::to_string(c.input_len)));
    test::write_file(files.back(), data.data(), data.size());
  }
  std::array<std::uint8_t, 32> key{};
  std::copy(vec.key.begin(), vec.key.end(), key.begin());
  for (std::size_t chunk : {4096u, 8192u, 65536u, 1u << 20}) {
    for (unsigned threads : {1u, 3u}) {
      CAPTURE(chunk, threads);
      checksum_spec plain;
      plain.length = vec.cases[0].hash.size();  // the whole extended output
      checksum_spec keyed = plain;
      keyed.key = key;
      checksum_spec derived = plain;
      derived.derive_key_context = vec.context;
      const auto h = checksum(files, plain, test::cpu_options(chunk, threads));
      const auto k = checksum(files, keyed, test::cpu_options(chunk, threads));
      const auto dk = checksum(files, derived, test::cpu_options(chunk, threads));
      for (std::size_t i = 0; i < files.size(); ++i) {
        CAPTURE(vec.cases[i].input_len);
        CHECK(h[i].digest == vec.cases[i].hash);
        CHECK(k[i].digest == vec.cases[i].keyed_hash);
        CHECK(dk[i].digest == vec.cases[i].derive_key);
        CHECK(h[i].bytes == vec.cases[i].input_len);
      }
    }
  }
  // Default length: the first 32 bytes.
  const auto d = checksum({files.back()}, checksum_spec{}, test::cpu_options(4096, 2));
  CHECK(d[0].digest == prefix(vec.cases.back().hash, 32));
}

TEST_CASE("checksum: CRC check values and chunk-size independence", "[checksum]") {
  test::temp_dir dir;
  test::write_file(dir.file("nine"), "123456789", 9);
  checksum_spec crc32{checksum_algo::crc32};
  checksum_spec crc32c{checksum_algo::crc32c};
  CHECK(to_hex(checksum({dir.file("nine")}, crc32, test::cpu_options(4096, 1))[0].digest) ==
        "cbf43926");
  CHECK(to_hex(checksum({dir.file("nine")}, crc32c, test::cpu_options(4096, 1))[0].digest) ==
        "e3069283");
  // Lengths around chunk boundaries; the reference is one pass over the whole buffer.
  for (std::size_t n : {0u, 1u, 4095u, 4096u, 4097u, 3u * 65536u + 7u, 5u << 20}) {
    const auto data = random_bytes(n, n + 1);
    test::write_file(dir.file("r"), data.data(), data.size());
    for (auto kind : {host::crc_kind::crc32, host::crc_kind::crc32c}) {
      const std::uint32_t want = host::crc_update(kind, 0, data.data(), data.size());
      const std::vector<std::uint8_t> want_bytes{std::uint8_t(want >> 24), std::uint8_t(want >> 16),
                                                 std::uint8_t(want >> 8), std::uint8_t(want)};
      const checksum_spec& spec = kind == host::crc_kind::crc32 ? crc32 : crc32c;
      for (std::size_t chunk : {4096u, 65536u, 8u << 20})
        for (unsigned threads : {1u, 2u}) {
          CAPTURE(n, chunk, threads);
          CHECK(checksum({dir.file("r")}, spec, test::cpu_options(chunk, threads))[0].digest ==
                want_bytes);
        }
    }
  }
}

TEST_CASE("checksum_each hands every file's result once, empty files after the job", "[checksum]") {
  test::temp_dir dir;
  const auto x = random_bytes(1000003, 8), y = random_bytes(3000, 9);
  test::write_file(dir.file("x"), x.data(), x.size());
  test::write_file(dir.file("empty"), "", 0);
  test::write_file(dir.file("y"), y.data(), y.size());
  const std::vector<std::string> files = {dir.file("x"), dir.file("empty"), dir.file("y"),
                                          dir.file("x")};
  checksum_spec spec;
  spec.length = 100;
  const auto want = checksum(files, spec, test::cpu_options(65536, 2));
  std::vector<int> calls(files.size(), 0);
  checksum_each(files, spec, test::cpu_options(4096, 2), [&](std::size_t i, checksum_result&& r) {
    REQUIRE(i < files.size());
    ++calls[i];
    CHECK(r.file == files[i]);
    CHECK(r.digest == want[i].digest);
    CHECK(r.bytes == want[i].bytes);
  });
  CHECK(calls == std::vector<int>{1, 1, 1, 1});
  CHECK(to_hex(want[1].digest).substr(0, 64) ==
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");  // BLAKE3 of nothing
}

// checksum_files goes on past what cannot be read, as sha256sum does, and one trace holds every
// job: a FIFO among the files is a job of its own (the CLI's trace once held the last job alone).
TEST_CASE("checksum_files reports each file once, goes on past failures, and traces every job",
          "[checksum]") {
  test::temp_dir dir;
  const auto x = random_bytes(300001, 11), y = random_bytes(70000, 12), f = random_bytes(5000, 13);
  test::write_file(dir.file("x"), x.data(), x.size());
  test::write_file(dir.file("y"), y.data(), y.size());
  std::filesystem::create_directory(dir.file("sub"));
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  const auto feed_fifo = [&] {
    return std::thread([&] {
      std::ofstream(dir.file("fifo"), std::ios::binary)
          .write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
    });
  };
  const auto crc = [](const auto& b) {
    const std::uint32_t c = host::crc_update(host::crc_kind::crc32c, 0, b.data(), b.size());
    return std::vector<std::uint8_t>{
        static_cast<std::uint8_t>(c >> 24), static_cast<std::uint8_t>(c >> 16),
        static_cast<std::uint8_t>(c >> 8), static_cast<std::uint8_t>(c)};
  };
  checksum_spec spec;
  spec.algo = checksum_algo::crc32c;
  auto o = test::cpu_options(4096, 2);
  struct outcome {
    int calls = 0;
    std::vector<std::uint8_t> digest;
    std::string reason;
  };
  const auto run = [&](const std::vector<std::string>& files) {
    std::vector<outcome> out(files.size());
    // Joined however checksum_files ends: a writer still waiting for a reader (the FIFO never
    // opened) is let go by a reader that opens and closes it, so a failure is no hang.
    struct joined {
      std::thread t;
      std::string fifo;
      ~joined() {
        const int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        t.join();
        if (fd >= 0) ::close(fd);
      }
    } writer{feed_fifo(), dir.file("fifo")};
    checksum_files(files, spec, o,
                   [&](std::size_t i, std::optional<checksum_result>&& r, const std::string& why) {
                     CHECK(i < files.size());
                     if (i >= files.size()) return;
                     ++out[i].calls;
                     if (r)
                       out[i].digest = r->digest;
                     else
                       out[i].reason = why;
                   });
    for (const auto& r : out) CHECK(r.calls == 1);
    return out;
  };
  {
    const auto out = run({dir.file("x"), dir.file("missing"), dir.file("fifo"), dir.file("sub"),
                          "/proc/self/mem", dir.file("y")});
    CHECK(out[0].digest == crc(x));
    CHECK(out[1].reason == "no such file or directory");
    CHECK(out[2].digest == crc(f));
    CHECK_THAT(out[3].reason, Catch::Matchers::Contains("directory"));
    CHECK_FALSE(out[4].reason.empty());
    CHECK(out[5].digest == crc(y));
  }
  // Three jobs (x; the FIFO; y) in one trace: every byte hashed once, each row named once.
  o.trace_path = dir.file("trace.json");
  const auto out = run({dir.file("x"), dir.file("fifo"), dir.file("y")});
  CHECK(out[1].digest == crc(f));
  const auto trace = nlohmann::json::parse(std::ifstream(dir.file("trace.json")));
  std::uint64_t hashed = 0;
  std::vector<std::string> rows;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "X" && e["name"] == "host") hashed += e["args"]["bytes"].get<std::uint64_t>();
    if (e["ph"] == "M") rows.push_back(e["args"]["name"]);
  }
  CHECK(hashed == x.size() + f.size() + y.size());
  std::sort(rows.begin(), rows.end());
  CHECK(std::adjacent_find(rows.begin(), rows.end()) == rows.end());
}

// A trace naming a file of a later job is refused before any job runs (its rename would have
// replaced that file).
TEST_CASE("checksum_files refuses a trace that names one of the files", "[checksum]") {
  test::temp_dir dir;
  test::write_file(dir.file("a"), "a", 1);
  test::write_file(dir.file("keep"), "keep", 4);
  auto o = test::cpu_options(4096, 1);
  o.trace_path = dir.file("keep");
  int calls = 0;
  CHECK_THROWS_AS(checksum_files({dir.file("a"), dir.file("keep")}, checksum_spec{}, o,
                                 [&](std::size_t, std::optional<checksum_result>&&,
                                     const std::string&) { ++calls; }),
                  usage_error);
  CHECK(calls == 0);
  std::string kept;
  std::getline(std::ifstream(dir.file("keep")), kept);
  CHECK(kept == "keep");
}

TEST_CASE("checksum: a chunk size that is not a power of two gives the same digest", "[checksum]") {
  test::temp_dir dir;
  const auto data = random_bytes(1000003, 7);
  test::write_file(dir.file("x"), data.data(), data.size());
  const auto a = checksum({dir.file("x")}, checksum_spec{}, test::cpu_options(5000, 2));
  const auto b = checksum({dir.file("x")}, checksum_spec{}, test::cpu_options(1u << 20, 1));
  CHECK(a[0].digest == b[0].digest);
}

TEST_CASE("checksum: files of one chunk are read, or mapped from 4 MiB, with the same digests",
          "[checksum]") {
  test::temp_dir dir;
  // Delivered unopened (one chunk each): 100 KiB read by the lane, 9 MiB mapped by it.
  const auto small = random_bytes(100 << 10, 41), big = random_bytes((9 << 20) + 3, 42);
  test::write_file(dir.file("small"), small.data(), small.size());
  test::write_file(dir.file("big"), big.data(), big.size());
  const std::vector<std::string> files{dir.file("small"), dir.file("big")};
  for (auto algo : {checksum_algo::blake3, checksum_algo::crc32c}) {
    checksum_spec spec{algo};
    const auto ref = checksum(files, spec, test::cpu_options(4096, 1));
    for (read_mode reads : {read_mode::map, read_mode::lane, read_mode::pool}) {
      INFO(read_mode_name(reads));
      options o = test::cpu_options(16 << 20, 2);
      o.reads = reads;
      job_report rep;
      const auto got = checksum(files, spec, o, &rep);
      CHECK(got[0].digest == ref[0].digest);
      CHECK(got[1].digest == ref[1].digest);
      std::uint64_t mapped = 0;
      for (const auto& l : rep.lanes) mapped += l.mapped;
      CHECK(mapped == (reads == read_mode::map ? 1u : 0u));
      CHECK(detail::windows_left_at_end == 0);  // the mapped file's window was retired
    }
  }
}

TEST_CASE("checksum: a CPU lane that gives a mapped block's pages back shows it in the trace",
          "[checksum]") {
  // 96 MiB in tmpfs (4 KiB pages), mapped in 4 MiB chunks: the first 64 MiB block's pages go
  // back when its last chunk is done (MADV_DONTNEED), the rest with the window; each far above
  // the span's 50 us (3.5 ms per 64 MiB on the 2-core box). In a disk file's large folios it can
  // be a few microseconds: no span then.
  if (!std::filesystem::is_directory("/dev/shm")) {
    WARN("no /dev/shm: the release spans are not checked");
    return;
  }
  struct shm_file {
    std::string path = "/dev/shm/hetpipe-release-test-" + std::to_string(::getpid());
    ~shm_file() { ::unlink(path.c_str()); }
  } file;
  test::temp_dir dir;
  const auto data = random_bytes(std::size_t{96} << 20, 43);
  test::write_file(file.path, data.data(), data.size());
  options o = test::cpu_options(4 << 20, 1);
  o.reads = read_mode::map;
  o.trace_path = dir.file("trace.json");
  job_report rep;
  const auto got = checksum({file.path}, checksum_spec{checksum_algo::crc32c}, o, &rep);
  REQUIRE(rep.lanes.size() == 1);
  CHECK(rep.lanes[0].mapped == 24);
  const auto trace = nlohmann::json::parse(std::ifstream(dir.file("trace.json")));
  std::map<int, std::string> track;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "M") track[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
  int releases = 0;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["name"] == "release") {
      ++releases;
      CHECK(track[e["tid"].get<int>()].rfind("cpu lane", 0) == 0);
    }
  CHECK(releases >= 1);
}

TEST_CASE("checksum: folders, missing files and bad specs", "[checksum]") {
  namespace fs = std::filesystem;
  test::temp_dir dir;
  fs::create_directories(dir.path() / "d" / "z");
  fs::create_directories(dir.path() / "d" / "a");
  for (const char* f : {"d/z/1", "d/a/2", "d/b", "d/a/1"}) test::write_file(dir.file(f), "x", 1);
  fs::create_directory_symlink(dir.path() / "d", dir.path() / "d" / "loop");
  // Like find(1): links to files are followed, links to folders are not, dangling links and
  // FIFOs are left out.
  fs::create_symlink(dir.path() / "d" / "b", dir.path() / "d" / "c");
  fs::create_symlink(dir.path() / "none", dir.path() / "d" / "dangling");
  REQUIRE(::mkfifo(dir.file("d/fifo").c_str(), 0600) == 0);
  const std::vector<std::string> walked{dir.file("d/a/1"), dir.file("d/a/2"), dir.file("d/b"),
                                        dir.file("d/c"), dir.file("d/z/1")};
  CHECK(expand_paths({dir.file("d")}, true) == walked);
  CHECK(expand_paths({dir.file("d") + "/"}, true) == walked);  // no double slash
  CHECK(expand_paths({"-", dir.file("d/b")}, false) ==
        std::vector<std::string>{"-", dir.file("d/b")});
  // once: what can be read only once (standard input, a FIFO; /dev/null, a character device),
  // which the CLI keeps out of a job it may run again.
  const auto each = expand_paths_each(
      {"-", dir.file("d/b"), dir.file("d/fifo"), "/dev/null", dir.file("d/c"), dir.file("d")},
      true);
  std::vector<bool> once;
  for (const auto& e : each) once.push_back(e.once);
  CHECK(once ==
        std::vector<bool>{true, false, true, true, false, false, false, false, false, false});
  REQUIRE_THROWS_MATCHES(expand_paths({dir.file("d")}, false), io_error,
                         test::what(Catch::Matchers::Contains("d: is a directory")));
  REQUIRE_THROWS_MATCHES(expand_paths({dir.file("none")}, true), io_error,
                         test::what(Catch::Matchers::EndsWith("none: no such file or directory")));
  REQUIRE_THROWS_MATCHES(checksum({dir.file("none")}, checksum_spec{}, test::cpu_options(4096, 1)),
                         io_error, test::what(Catch::Matchers::Contains("none")));
  checksum_spec bad{checksum_algo::crc32};
  bad.length = 8;
  CHECK_THROWS_AS(checksum({dir.file("d/b")}, bad, test::cpu_options(4096, 1)), usage_error);
  checksum_spec zero;
  zero.length = 0;
  CHECK_THROWS_AS(checksum({dir.file("d/b")}, zero, test::cpu_options(4096, 1)), usage_error);
  // derive_key is a BLAKE3 mode, and the other mode besides hash is keyed_hash: one of them.
  checksum_spec crc_derived{checksum_algo::crc32c};
  crc_derived.derive_key_context = "ctx";
  REQUIRE_THROWS_MATCHES(checksum({dir.file("d/b")}, crc_derived, test::cpu_options(4096, 1)),
                         usage_error, test::what(Catch::Matchers::Contains("BLAKE3 only")));
  checksum_spec two_modes;
  two_modes.key = std::array<std::uint8_t, 32>{};
  two_modes.derive_key_context = "ctx";
  REQUIRE_THROWS_MATCHES(checksum({dir.file("d/b")}, two_modes, test::cpu_options(4096, 1)),
                         usage_error, test::what(Catch::Matchers::Contains("give one")));
}

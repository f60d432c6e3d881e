// Transforms through the engine: ordered output, atomic rename, nothing left behind on failure.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include <hetpipe/hetpipe.hpp>

#include "pipeline/src/buffer_pool.hpp"
#include "pipeline/src/committer.hpp"
#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

// Output of a chunk: its bytes reversed, then its chunk index as 8 bytes. Order-sensitive and
// size-changing, so misplaced or missing pieces show.
class reverse_op final : public transform_op {
 public:
  std::function<void(const chunk_info&)> hook;
  bool alone = false;  // outputs_fail_alone
  framing frame(std::size_t) const override { return framing::records(1); }
  bool outputs_fail_alone() const override { return alone; }
  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    if (hook) hook(info);
    out.assign(data.rbegin(), data.rend());
    const std::uint64_t idx = info.index;
    const auto* p = reinterpret_cast<const std::byte*>(&idx);
    out.insert(out.end(), p, p + sizeof idx);
  }
};

std::vector<std::byte> expected(const std::vector<std::byte>& in, std::size_t chunk) {
  std::vector<std::byte> out;
  for (std::size_t off = 0, i = 0; off < in.size(); off += chunk, ++i) {
    const std::size_t n = std::min(chunk, in.size() - off);
    out.insert(out.end(), std::make_reverse_iterator(in.begin() + off + n),
               std::make_reverse_iterator(in.begin() + off));
    const auto* p = reinterpret_cast<const std::byte*>(&i);
    out.insert(out.end(), p, p + 8);
  }
  return out;
}

std::vector<std::byte> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return {reinterpret_cast<std::byte*>(v.data()),
          reinterpret_cast<std::byte*>(v.data()) + v.size()};
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

std::size_t entries(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir),
                                                std::filesystem::directory_iterator()));
}

}  // namespace

TEST_CASE("a transform writes every input's output in chunk order", "[pipeline][transform]") {
  test::temp_dir dir;
  const auto a = random_bytes(1'000'001, 1), b = random_bytes(4096, 2);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("b"), b.data(), b.size());
  test::write_file(dir.file("e"), "", 0);
  reverse_op op;
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{1} << 20})
    for (unsigned threads : {1u, 3u}) {
      INFO("chunk " << chunk << " threads " << threads);
      run(op, {{dir.file("a")}, {dir.file("b")}, {dir.file("e")}},
          {dir.file("a.out"), dir.file("b.out"), dir.file("e.out")},
          test::cpu_options(chunk, threads, 2));
      CHECK(read_all(dir.file("a.out")) == expected(a, chunk));
      CHECK(read_all(dir.file("b.out")) == expected(b, chunk));
      CHECK(std::filesystem::exists(dir.file("e.out")));
      CHECK(std::filesystem::file_size(dir.file("e.out")) == 0);
      CHECK(entries(dir.path()) == 6);  // no temporary file left
    }
}

namespace {

// A header before the first chunk, and a trailer standing for an empty input.
class framed_op final : public transform_op {
 public:
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info&, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    out.assign(data.begin(), data.end());
  }
  void prologue(std::size_t input, std::vector<std::byte>& out) const override {
    const std::string h = "HEAD" + std::to_string(input) + ":";
    for (char c : h) out.push_back(static_cast<std::byte>(c));
  }
  void empty_output(std::size_t, std::vector<std::byte>& out) const override {
    for (char c : std::string("EMPTY")) out.push_back(static_cast<std::byte>(c));
  }
};

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v;
  for (char c : s) v.push_back(static_cast<std::byte>(c));
  return v;
}

}  // namespace

TEST_CASE("a transform's prologue comes first, and an empty input gets empty_output",
          "[pipeline][transform]") {
  test::temp_dir dir;
  const auto a = random_bytes(300'001, 4);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("e"), "", 0);
  framed_op op;
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{1} << 20}) {
    run(op, {{dir.file("e")}, {dir.file("a")}}, {dir.file("e.out"), dir.file("a.out")},
        test::cpu_options(chunk, 2, 3));
    auto want = bytes_of("HEAD1:");
    want.insert(want.end(), a.begin(), a.end());
    CHECK(read_all(dir.file("a.out")) == want);
    CHECK(read_all(dir.file("e.out")) == bytes_of("HEAD0:EMPTY"));
  }
}

namespace {

// Refuses inputs whose first byte is 'B' (in their first chunk), copies the others.
class picky_op final : public transform_op {
 public:
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    if (info.index == 0 && !data.empty() && data[0] == std::byte{'B'})
      throw input_skipped("", "starts with B");
    out.assign(data.begin(), data.end());
  }
};

}  // namespace

TEST_CASE("an input the operator skips gets no output, and the others go on",
          "[pipeline][transform]") {
  test::temp_dir dir;
  auto good = random_bytes(100'000, 5), bad = random_bytes(100'000, 6);
  good[0] = std::byte{'G'};
  bad[0] = std::byte{'B'};
  test::write_file(dir.file("good"), good.data(), good.size());
  test::write_file(dir.file("bad"), bad.data(), bad.size());
  picky_op op;
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{1} << 20}) {
    job_report rep;
    run(op, {{dir.file("good")}, {dir.file("bad")}, {dir.file("good")}},
        {dir.file("g1.out"), dir.file("b.out"), dir.file("g2.out")}, test::cpu_options(chunk, 2, 3),
        &rep);
    CHECK(read_all(dir.file("g1.out")) == good);
    CHECK(read_all(dir.file("g2.out")) == good);
    CHECK_FALSE(std::filesystem::exists(dir.file("b.out")));
    REQUIRE(rep.skipped.size() == 1);
    CHECK(rep.skipped[0].input == 1);
    CHECK(rep.skipped[0].file == dir.file("bad"));
    CHECK(rep.skipped[0].reason == "starts with B");
    CHECK(entries(dir.path()) == 4);  // no temporary file left
    std::filesystem::remove(dir.file("g1.out"));
    std::filesystem::remove(dir.file("g2.out"));
  }
  // Without a report the skipped input is an error after the job (the good output is written).
  REQUIRE_THROWS_MATCHES(
      run(op, {{dir.file("good")}, {dir.file("bad")}}, {dir.file("g1.out"), dir.file("b.out")},
          test::cpu_options(4096, 2, 3)),
      input_error, test::what(Catch::Matchers::EndsWith("bad: starts with B")));
  CHECK(std::filesystem::exists(dir.file("g1.out")));
  CHECK_FALSE(std::filesystem::exists(dir.file("b.out")));
}

TEST_CASE("lanes that refuse many chunks of one input at once skip it once, without a hang",
          "[pipeline][transform]") {
  // Every chunk of "big" from index 20 on is refused, on 8 lanes: each refusal used to abort the
  // input's writer, several at once (7 lanes hung joining its loop's thread, or libuv aborted).
  test::temp_dir dir;
  const auto big = random_bytes(64 * 4096, 31), small = random_bytes(3 * 4096 + 5, 32);
  test::write_file(dir.file("big"), big.data(), big.size());
  test::write_file(dir.file("small"), small.data(), small.size());
  reverse_op op;
  op.hook = [](const chunk_info& info) {
    if (info.input == 0 && info.index >= 20) throw input_skipped("", "refused");
  };
  for (int round = 0; round < 10; ++round) {
    job_report rep;
    run(op, {{dir.file("big")}, {dir.file("small")}}, {dir.file("big.out"), dir.file("small.out")},
        test::cpu_options(4096, 8, 16), &rep);
    REQUIRE(rep.skipped.size() == 1);
    CHECK(rep.skipped[0].input == 0);
    CHECK(rep.skipped[0].reason == "refused");
    CHECK_FALSE(std::filesystem::exists(dir.file("big.out")));
    CHECK(read_all(dir.file("small.out")) == expected(small, 4096));
    CHECK(entries(dir.path()) == 3);  // no temporary file left
    std::filesystem::remove(dir.file("small.out"));
  }
}

TEST_CASE("a failing transform leaves no output and no temporary file", "[pipeline][transform]") {
  test::temp_dir dir;
  const auto a = random_bytes(2'000'000, 3);
  test::write_file(dir.file("a"), a.data(), a.size());
  reverse_op op;
  op.hook = [](const chunk_info& info) {
    if (info.index == 100) throw input_error("a", "corrupt chunk");
  };
  CHECK_THROWS_AS(run(op, {{dir.file("a")}}, {dir.file("a.out")}, test::cpu_options(4096, 2)),
                  input_error);
  CHECK_FALSE(std::filesystem::exists(dir.file("a.out")));
  CHECK(entries(dir.path()) == 1);
}

// As documented (pipeline.hpp): each output is in place once its input is complete, so a job that
// fails at its third input, once the first two are complete, keeps them (the header once said "only
// when the job succeeds"), and leaves nothing of the third.
TEST_CASE("a transform that fails keeps the outputs of the inputs completed before",
          "[pipeline][transform]") {
  test::temp_dir dir;
  std::vector<std::vector<std::byte>> data;
  for (int i = 0; i < 3; ++i) {
    data.push_back(random_bytes(40'000, 10 + i));
    test::write_file(dir.file("in" + std::to_string(i)), data.back().data(), data.back().size());
  }
  // Reads run ahead across inputs, so a chunk of in2 can reach a lane before in1 is complete:
  // the last chunk of in2 fails only once the first two outputs are in place (the other lane
  // finishes them meanwhile), or after 30 s, when the checks below fail.
  reverse_op op;
  op.hook = [&dir](const chunk_info& info) {
    if (info.input != 2 || !info.last) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (
        !(std::filesystem::exists(dir.file("out0")) && std::filesystem::exists(dir.file("out1"))) &&
        std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    throw input_error("in2", "corrupt chunk");
  };
  CHECK_THROWS_AS(
      run(op, {{dir.file("in0")}, {dir.file("in1")}, {dir.file("in2")}},
          {dir.file("out0"), dir.file("out1"), dir.file("out2")}, test::cpu_options(4096, 2)),
      input_error);
  CHECK(read_all(dir.file("out0")) == expected(data[0], 4096));
  CHECK(read_all(dir.file("out1")) == expected(data[1], 4096));
  CHECK_FALSE(std::filesystem::exists(dir.file("out2")));
  CHECK(entries(dir.path()) == 5);  // no temporary file
}

// Two inputs named one output file: refused before anything is written (the second commit
// replaced the first). Standard output and devices take several.
TEST_CASE("a transform refuses two inputs with one output file", "[pipeline][transform]") {
  test::temp_dir dir;
  const auto a = random_bytes(5000, 20);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("b"), a.data(), a.size());
  reverse_op op;
  try {
    run(op, {{dir.file("a")}, {dir.file("b")}}, {dir.file("o"), dir.file("o")},
        test::cpu_options(4096, 1));
    FAIL("no error");
  } catch (const usage_error& e) {
    CHECK(e.file() == dir.file("o"));
    CHECK_THAT(e.reason(), Catch::Matchers::Contains("is the output of inputs 0 and 1"));
  }
  CHECK(entries(dir.path()) == 2);
  run(op, {{dir.file("a")}, {dir.file("b")}}, {"/dev/null", "/dev/null"},
      test::cpu_options(4096, 1));
  // One file by two paths: through "." and "..", and through a link to its folder.
  std::filesystem::create_directory(dir.file("d"));
  std::filesystem::create_directory_symlink("d", dir.file("l"));
  for (const auto& second : {dir.file("d/./../d/o"), dir.file("l/o")}) {
    CHECK_THROWS_MATCHES(
        run(op, {{dir.file("a")}, {dir.file("b")}}, {dir.file("d/o"), second},
            test::cpu_options(4096, 1)),
        usage_error, Catch::Matchers::Predicate<usage_error>([&](const usage_error& e) {
          return e.file() == second &&
                 e.reason().find("is the output of inputs 0 and 1") != std::string::npos;
        }));
    CHECK(std::filesystem::is_empty(dir.file("d")));
  }
  // Names alike in two folders are two files.
  std::filesystem::create_directory(dir.file("e"));
  run(op, {{dir.file("a")}, {dir.file("b")}}, {dir.file("d/o"), dir.file("e/o")},
      test::cpu_options(4096, 1));
  CHECK(read_all(dir.file("d/o")) == read_all(dir.file("e/o")));
}

TEST_CASE("a cancelled transform leaves no output and no temporary file", "[pipeline][transform]") {
  test::temp_dir dir;
  const auto a = random_bytes(4'000'000, 4);
  test::write_file(dir.file("a"), a.data(), a.size());
  reverse_op op;
  op.hook = [](const chunk_info&) { std::this_thread::sleep_for(std::chrono::milliseconds(2)); };
  std::atomic<bool> stop{false};
  auto o = test::cpu_options(4096, 2);
  o.cancel = &stop;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  CHECK_THROWS_AS(run(op, {{dir.file("a")}}, {dir.file("a.out")}, o), cancelled);
  t.join();
  CHECK(entries(dir.path()) == 1);
}

TEST_CASE("a cancel that comes once every output is in place does not fail the job",
          "[pipeline][transform]") {
  // The signal came during the last output's commit (its fsync, say): the output was renamed into
  // place, and the job reported itself interrupted (exit 130 with the old file gone).
  test::temp_dir dir;
  const auto a = random_bytes(40'000, 5);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("a.out"), "old", 3);
  std::atomic<bool> stop{false};
  reverse_op op;
  // The chunk processed last (one lane, but chunks may come out of order: the last one is not
  // always the one with info.last) sets the flag and waits well past the monitor's 50 ms check (1
  // s: the monitor may be starved on a loaded machine), so that the job has failed as cancelled
  // before that chunk is delivered and its output committed.
  const std::size_t chunks = (a.size() + 4095) / 4096;
  std::size_t seen = 0;  // chunks of the first input processed
  op.hook = [&](const chunk_info& info) {
    if (info.input != 0 || ++seen != chunks) return;
    stop = true;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  };
  auto o = test::cpu_options(4096, 1);
  o.cancel = &stop;
  job_report rep;
  REQUIRE_NOTHROW(run(op, {{dir.file("a")}}, {dir.file("a.out")}, o, &rep));
  CHECK(read_all(dir.file("a.out")) == expected(a, 4096));
  CHECK(entries(dir.path()) == 2);
  // Two outputs, the cancel at the first one's last chunk to be processed: the second (a thousand
  // chunks, most not read yet: the reader reads ahead at most a window of them) is not made, so the
  // job is cancelled, and the first, whole, stays.
  const auto b = random_bytes(4'000'000, 6);
  test::write_file(dir.file("b"), b.data(), b.size());
  stop = false;
  seen = 0;
  CHECK_THROWS_AS(run(op, {{dir.file("a")}, {dir.file("b")}}, {dir.file("a2"), dir.file("b2")}, o),
                  cancelled);
  CHECK(read_all(dir.file("a2")) == expected(a, 4096));
  CHECK_FALSE(std::filesystem::exists(dir.file("b2")));
}

TEST_CASE("a transform into a missing folder is an error naming the output",
          "[pipeline][transform]") {
  test::temp_dir dir;
  test::write_file(dir.file("a"), "abc", 3);
  reverse_op op;
  CHECK_THROWS_MATCHES(
      run(op, {{dir.file("a")}}, {dir.file("no/such/out")}, test::cpu_options(4096, 1)), io_error,
      test::what(Catch::Matchers::Contains("no/such/out")));
}

TEST_CASE("outputs are committed off the lanes; one that cannot be committed fails the job",
          "[pipeline][transform]") {
  test::temp_dir dir;
  std::vector<input> in;
  std::vector<std::string> out;
  for (int i = 0; i < 200; ++i) {  // more than the committer's queue holds
    const std::string name = "in" + std::to_string(i);
    const auto bytes = random_bytes(9000 + i, 10 + i);
    test::write_file(dir.file(name), bytes.data(), bytes.size());
    in.push_back({dir.file(name)});
    out.push_back(dir.file("out" + std::to_string(i)));
  }
  reverse_op op;
  SECTION("every output is in place when run() returns") {
    // 16 KiB x 2 slots: the outputs waiting for a commit may hold 32 KiB, about three of them.
    const std::size_t chunk = GENERATE(std::size_t{1} << 20, std::size_t{16} << 10);
    run(op, in, out, test::cpu_options(chunk, 2, chunk == (1u << 20) ? 0 : 2));
    for (int i = 0; i < 200; ++i) {
      const auto want = expected(read_all(in[i].path), chunk);
      CHECK(read_all(out[i]) == want);
    }
  }
  SECTION("a directory put where an output goes: its rename fails, and so does the job") {
    // One lane, 4 KiB chunks (3 to an input): input 150's writer exists (made when its first
    // chunk's output was delivered) when its second chunk puts the directory in the way. Which
    // chunk comes first is the reads' completion order, not the index.
    int seen = 0;
    op.hook = [&](const chunk_info& info) {
      if (info.input == 150 && ++seen == 2)
        std::filesystem::create_directories(out[150] + "/blocker");
    };
    CHECK_THROWS_MATCHES(run(op, in, out, test::cpu_options(4096, 1)), io_error,
                         test::what(Catch::Matchers::Contains("out150") &&
                                    Catch::Matchers::Contains("cannot rename")));
    CHECK(std::filesystem::is_directory(out[150]));
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      CHECK(e.path().filename().string().find(".hetpipe-") == std::string::npos);
  }
}

TEST_CASE("with outputs_fail_alone, an output that cannot be written fails only its input",
          "[pipeline][transform]") {
  test::temp_dir dir;
  std::vector<input> in;
  std::vector<std::string> out;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "in" + std::to_string(i);
    const auto bytes = random_bytes(i == 5 ? 0 : 9000 + i, 40 + i);  // input 5 is empty
    test::write_file(dir.file(name), bytes.data(), bytes.size());
    in.push_back({dir.file(name)});
    out.push_back(dir.file("out" + std::to_string(i)));
  }
  // Output 2's temporary file cannot be created, nor empty input 5's (finish_empty); output 4's
  // rename fails (a directory put in its way once its writer exists, as above).
  out[2] = dir.file("no/such/out2");
  out[5] = dir.file("no/such/out5");
  reverse_op op;
  op.alone = true;
  int seen = 0;
  op.hook = [&](const chunk_info& info) {
    if (info.input == 4 && ++seen == 2) std::filesystem::create_directories(out[4] + "/blocker");
  };
  job_report rep;
  run(op, in, out, test::cpu_options(4096, 1), &rep);
  REQUIRE(rep.skipped.size() == 3);
  const std::size_t failed[] = {2, 4, 5};
  for (std::size_t k = 0; k < 3; ++k) {
    CAPTURE(k);
    CHECK(rep.skipped[k].input == failed[k]);
    CHECK(rep.skipped[k].file == in[failed[k]].path);  // the input, as for a refused one
    CHECK_THAT(rep.skipped[k].reason,
               Catch::Matchers::StartsWith("cannot write " + out[failed[k]] + ": "));
  }
  CHECK_THAT(rep.skipped[1].reason, Catch::Matchers::Contains("cannot rename"));
  for (const int i : {0, 1, 3}) CHECK(read_all(out[i]) == expected(read_all(in[i].path), 4096));
  CHECK(std::filesystem::is_directory(out[4]));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().find(".hetpipe-") == std::string::npos);
}

namespace {

// Runs op over dir's "in" into "out" on one lane that maps its chunks: the job fails with "file
// shrank while reading", naming the input, and leaves no output and no temporary file.
void expect_shrank(const transform_op& op, const test::temp_dir& dir, std::size_t chunk) {
  options o = test::cpu_options(chunk, 1);
  o.reads = read_mode::map;
  try {
    run(op, {{dir.file("in")}}, {dir.file("out")}, o);
    FAIL("no error");
  } catch (const io_error& e) {
    CHECK(e.file() == dir.file("in"));
    CHECK(e.reason() == "file shrank while reading");
  }
  CHECK(!std::filesystem::exists(dir.file("out")));
  CHECK(entries(dir.path()) == 1);  // the input alone
}

}  // namespace

TEST_CASE("a mapped input cut short under a transform's work fails the job and commits nothing",
          "[pipeline][transform]") {
  // The file shrinks while a lane works on its mapped chunk (here the operator cuts it itself,
  // the way another process could): the lost pages read as zeros, and the output made from them
  // must not reach the writer, whose last chunk would commit the file.
  test::temp_dir dir;
  // 12 MiB in chunks of 1 MiB: delivered unread, mapped in a window; 9 MiB in one chunk of 16
  // MiB: delivered unopened, mapped whole.
  for (auto [size, chunk] : {std::pair{std::size_t{12} << 20, std::size_t{1} << 20},
                             std::pair{std::size_t{9} << 20, std::size_t{16} << 20}}) {
    INFO("size " << size << " chunk " << chunk);
    const auto in = random_bytes(size, 9);
    test::write_file(dir.file("in"), in.data(), in.size());
    reverse_op op;
    std::atomic<bool> cut{false};
    op.hook = [&](const chunk_info&) {
      if (!cut.exchange(true)) REQUIRE(::truncate(dir.file("in").c_str(), 4096) == 0);
    };
    expect_shrank(op, dir, chunk);
  }
}

namespace {

// Cuts its input to 4 KiB once (as another process could), then reads the chunk: the lost pages
// read as zeros, and it refuses zeros, as an operator checking its data would.
class zero_refusing_op final : public transform_op {
 public:
  std::string file;
  mutable std::atomic<bool> cut{false};
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info&, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    if (!cut.exchange(true)) REQUIRE(::truncate(file.c_str(), 4096) == 0);
    std::size_t zeros = 0;
    for (std::byte b : data) zeros += b == std::byte{0};
    if (zeros > data.size() / 2) throw input_error("", "too many zeros");
    out.assign(data.begin(), data.end());
  }
};

}  // namespace

TEST_CASE("a mapped input cut short is that error, not the operator's over the lost pages",
          "[pipeline][transform]") {
  // The operator fails on the zeros put where the pages vanished: the job's error is the file's,
  // "file shrank while reading" (it used to be "too many zeros").
  test::temp_dir dir;
  const auto in = random_bytes(std::size_t{12} << 20, 19);
  test::write_file(dir.file("in"), in.data(), in.size());
  zero_refusing_op op;
  op.file = dir.file("in");
  expect_shrank(op, dir, std::size_t{4} << 20);
}

TEST_CASE("the output pool hands out the smallest kept buffer that fits, else the largest",
          "[pipeline][transform]") {
  detail::buffer_pool pool(std::size_t{16} << 20);
  const auto with_capacity = [](std::size_t n) {
    std::vector<std::byte> v(n);
    v.resize(n / 2);  // given back holding bytes: take() must hand it out empty
    return v;
  };
  const std::size_t mib = std::size_t{1} << 20;
  // Too small to keep: a file's empty prologue piece, a short header.
  pool.give({});
  pool.give(with_capacity(detail::buffer_pool::min_kept - 1));
  CHECK(pool.kept_bytes() == 0);
  CHECK(pool.take(0).capacity() == 0);

  std::vector<std::byte> one = with_capacity(mib), four = with_capacity(4 * mib),
                         two = with_capacity(2 * mib);
  const std::byte* at_two = two.data();
  pool.give(std::move(one));
  pool.give(std::move(four));
  pool.give(std::move(two));
  CHECK(pool.kept_bytes() == 7 * mib);

  std::vector<std::byte> got = pool.take(mib + 1);  // the 2 MiB one: its memory, empty
  CHECK(got.capacity() == 2 * mib);
  CHECK(got.data() == at_two);
  CHECK(got.empty());
  CHECK(pool.take(5 * mib).capacity() == 4 * mib);  // none holds 5 MiB: the largest
  CHECK(pool.take(0).capacity() == mib);
  CHECK(pool.take(0).capacity() == 0);  // none left: a new one
  CHECK(pool.kept_bytes() == 0);

  // At most `limit` bytes are kept; what does not fit is the caller's to free.
  for (int i = 0; i < 5; ++i) pool.give(with_capacity(4 * mib));
  CHECK(pool.kept_bytes() == 16 * mib);
}

TEST_CASE("a new large output buffer comes reserved for its chunk where huge pages pay",
          "[pipeline][transform]") {
  detail::buffer_pool pool(std::size_t{256} << 20);
  const std::size_t small = detail::buffer_pool::fresh_min - 1, large = std::size_t{64} << 20;
  CHECK(pool.take(small).capacity() == 0);  // malloc's to place, as any vector
  CHECK(pool.take(large).capacity() ==
        (io::huge_pages_pay() ? detail::buffer_pool::fresh(large).capacity() : 0));
  // Where huge pages do not pay (a balloon reports free memory), new buffers are plain.
  CHECK(detail::buffer_pool::fresh(large, false).capacity() == 0);
  CHECK(detail::buffer_pool::fresh(small, true).capacity() == 0);
  // Where they pay: room for the chunk and for age's 16 bytes per 64 KiB, so that the output's
  // first resize does not move it out of the advised memory (io::advise_huge_pages, tested in
  // test_io).
  std::vector<std::byte> v = detail::buffer_pool::fresh(large, true);
  CHECK(v.empty());
  CHECK(v.capacity() >= large + large / 4096);
  const std::byte* at = v.data();
  v.resize(large, std::byte{7});
  CHECK(v.data() == at);
  CHECK(v[large - 1] == std::byte{7});
}

TEST_CASE("the committer runs as many commits at once as it has threads, and no more",
          "[pipeline][transform]") {
  // Each commit waits (up to 5 s) until `threads` commits have started: with fewer threads than
  // asked for, the first ones wait in vain and say so.
  const unsigned threads = GENERATE(1u, 3u, 8u);
  std::mutex m;
  std::condition_variable cv;
  unsigned started = 0, running = 0, most = 0;
  int waited_in_vain = 0;
  std::vector<std::exception_ptr> errors;
  {
    detail::committer commits(threads, 64, std::uint64_t{1} << 30,
                              [&](std::exception_ptr e) { errors.push_back(e); });
    for (unsigned i = 0; i < 3 * threads; ++i)
      commits.submit(
          [&, wave = i / threads] {
            std::unique_lock lock(m);
            ++started;
            most = std::max(most, ++running);
            cv.notify_all();
            if (!cv.wait_for(lock, std::chrono::seconds(5),
                             [&] { return started >= (wave + 1) * threads; }))
              ++waited_in_vain;
            --running;
          },
          1);
    commits.finish();
  }
  CHECK(started == 3 * threads);
  CHECK(waited_in_vain == 0);
  CHECK(most == threads);
  CHECK(errors.empty());
}

TEST_CASE("the committer holds at most max_bytes of outputs, and rethrows the first failure",
          "[pipeline][transform]") {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> ran{0};
  std::vector<std::string> reported;
  const auto report = [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      reported.emplace_back(x.what());
    }
  };
  detail::committer commits(4, 64, 100, report);
  commits.submit(
      [&] {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return release; });
        ran++;
      },
      60);
  std::atomic<bool> second_queued{false};
  std::thread t([&] {
    commits.submit([&] { ran++; }, 60);  // 60 + 60 > 100: waits for the first to finish
    second_queued = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(second_queued.load());
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  t.join();
  CHECK(second_queued.load());
  CHECK_NOTHROW(commits.finish());
  CHECK(ran == 2);
  commits.submit([&] { ran++; }, 0);  // after finish(): committed here, at once
  CHECK(ran == 3);

  // One thread, so that "first" fails first: the job hears of both, and finish() rethrows the
  // first, once; the commits after a failure still run.
  detail::committer one(1, 64, 100, report);
  one.submit([] { throw std::runtime_error("first"); }, 0);
  one.submit([] { throw std::runtime_error("second"); }, 0);
  one.submit([&] { ran++; }, 0);
  CHECK_THROWS_WITH(one.finish(), "first");
  CHECK(ran == 4);
  CHECK(reported == std::vector<std::string>{"first", "second"});
  CHECK_NOTHROW(one.finish());
}

namespace {

// One chunk per file, copied through; counts the chunks whose output vector arrived with room
// for the output already (memory an earlier output used).
class copy_op final : public transform_op {
 public:
  mutable std::atomic<int> reused{0}, chunks{0};
  framing frame(std::size_t) const override { return framing::whole_file(); }
  void host(const chunk_info&, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    chunks++;
    if (out.capacity() >= data.size()) reused++;
    out.assign(data.begin(), data.end());
  }
};

}  // namespace

TEST_CASE("a transform's outputs reuse the memory of outputs already written",
          "[pipeline][transform]") {
  // Each file's prologue is an empty piece; given back first, it used to stand in for an output
  // buffer, so every image of a job had its output memory faulted in afresh.
  test::temp_dir dir;
  constexpr int files = 48;
  const auto job = test::write_numbered_files(dir, files, std::size_t{256} << 10, 100);
  for (unsigned threads : {1u, 2u}) {
    INFO("threads " << threads);
    copy_op op;
    // Two slots: the outputs held for commit are bounded (2 MiB, eight of them), so the lanes
    // cannot run far ahead of the writes whose memory comes back.
    run(op, job.inputs, job.outputs, test::cpu_options(std::size_t{1} << 20, threads, 2));
    CHECK(op.chunks == files);
    CHECK(op.reused >= files / 2);
    CHECK(test::file_bytes(job.outputs[files - 1]) ==
          test::random_bytes(std::size_t{256} << 10, 100 + files - 1));
  }
}

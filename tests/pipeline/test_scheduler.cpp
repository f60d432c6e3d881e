// The engine through its public API: ordering, errors, small pools, cancellation, empty inputs.
#include <catch2/catch.hpp>

#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <hetpipe/hetpipe.hpp>

#include "pipeline/src/engine.hpp"
#include "pipeline/src/stat_all.hpp"
#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/pipe_feed.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;

namespace {

// Order-sensitive on purpose: the list of chunk offsets and a running polynomial hash over the
// bytes in merge order. Any out-of-order merge changes the result.
struct trail final : partial {
  std::vector<std::uint64_t> offsets;
  std::uint64_t hash = 0;
  std::uint64_t bytes = 0;
  std::uint64_t pow = 1;  // 31^bytes mod 2^64
};

class trail_op : public reduce_op {
 public:
  std::size_t record = 1;
  std::function<void(const chunk_info&)> hook;
  framing frame(std::size_t) const override { return framing::records(record); }
  std::unique_ptr<partial> identity(std::size_t) const override {
    return std::make_unique<trail>();
  }
  std::unique_ptr<partial> host(const chunk_info& info,
                                std::span<const std::byte> data) const override {
    if (hook) hook(info);
    auto t = std::make_unique<trail>();
    t->offsets.push_back(info.offset);
    for (std::byte b : data) {
      t->hash = t->hash * 31 + static_cast<unsigned char>(b);
      t->pow *= 31;
    }
    t->bytes = data.size();
    return t;
  }
  void merge(partial& total, partial& next) const override {
    auto& a = static_cast<trail&>(total);
    auto& b = static_cast<trail&>(next);
    a.offsets.insert(a.offsets.end(), b.offsets.begin(), b.offsets.end());
    a.hash = a.hash * b.pow + b.hash;
    a.pow *= b.pow;
    a.bytes += b.bytes;
  }
};

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

std::uint64_t plain_hash(const std::vector<std::byte>& v) {
  std::uint64_t h = 0;
  for (std::byte b : v) h = h * 31 + static_cast<unsigned char>(b);
  return h;
}

}  // namespace

TEST_CASE("a reduction merges chunks in input order whatever the lanes and chunk size",
          "[pipeline]") {
  test::temp_dir dir;
  const auto data = random_bytes(1'000'003, 1);
  test::write_file(dir.file("a"), data.data(), data.size());
  trail_op op;
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{65536}, std::size_t{1} << 22})
    for (unsigned threads : {1u, 2u, 7u}) {
      INFO("chunk " << chunk << ", threads " << threads);
      job_report rep;
      auto out = run(op, {{dir.file("a")}}, test::cpu_options(chunk, threads), &rep);
      const auto& t = static_cast<trail&>(*out[0]);
      CHECK(t.bytes == data.size());
      CHECK(t.hash == plain_hash(data));
      REQUIRE(t.offsets.size() == (data.size() + chunk - 1) / chunk);
      for (std::size_t i = 0; i < t.offsets.size(); ++i) CHECK(t.offsets[i] == i * chunk);
      CHECK(rep.bytes == data.size());
      // No more lanes than chunks: a lane without one cost its thread and libgomp's spinning.
      CHECK(rep.cpu_lanes == std::min<std::size_t>(threads, t.offsets.size()));
      CHECK(rep.lanes.size() == rep.cpu_lanes);
    }
}

TEST_CASE(
    "a stream of unknown length starts on one lane, and the others join once reads outpace it",
    "[pipeline]") {
  // Bytes written into a pipe by a thread, `pause` between pieces of `piece` bytes.
  const auto through_pipe = [](const std::vector<std::byte>& data, std::size_t piece,
                               std::chrono::milliseconds pause, trail_op& op, unsigned threads) {
    test::pipe_feed feed(data, piece, pause);
    job_report rep;
    const auto out = run(op, {{"a pipe", 0, std::nullopt, feed.read_fd()}},
                         test::cpu_options(4096, threads), &rep);
    feed.finish();
    const auto& t = static_cast<trail&>(*out[0]);
    CHECK(t.bytes == data.size());
    CHECK(t.hash == plain_hash(data));
    std::uint64_t chunks = 0;
    for (const auto& l : rep.lanes) chunks += l.chunks;
    CHECK(chunks == t.offsets.size());
    CHECK(rep.cpu_lanes == threads);
    REQUIRE(rep.lanes.size() == threads);
    return rep;
  };
  trail_op op;
  // Whether each chunk's host() ran inside an OpenMP team: lane 0 alone runs outside one.
  std::mutex mutex;
  std::vector<bool> in_team;
  const auto record = [&](const chunk_info&) {
    std::lock_guard lock(mutex);
    in_team.push_back(omp_in_parallel() != 0);
  };
  // A slow stream: its first chunk is worked on before any other can wait, by lane 0 alone. (That
  // it keeps every chunk depends on its thread running within the writer's pauses: a loaded box
  // once let a second chunk arrive first, so that is not checked.)
  {
    op.hook = record;
    const auto data = random_bytes(3 * 4096, 11);
    (void)through_pipe(data, 4096, std::chrono::milliseconds(30), op, 2);
    REQUIRE(in_team.size() == 3);
    CHECK_FALSE(in_team[0]);
  }
  // A fast one and a slow lane (2 ms a chunk): the reads pile up, and the team shares them.
  {
    in_team.clear();
    op.hook = [&](const chunk_info& c) {
      record(c);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    };
    const auto data = random_bytes(200 * 4096 + 5, 12);
    const job_report rep = through_pipe(data, data.size(), std::chrono::milliseconds(0), op, 3);
    REQUIRE(in_team.size() == 201);
    CHECK_FALSE(in_team[0]);
    CHECK(std::count(in_team.begin(), in_team.end(), true) > 0);
    unsigned working = 0;
    for (const auto& l : rep.lanes) working += l.chunks > 0;
    CHECK(working >= 2);
  }
}

TEST_CASE("several inputs each get their own result, empty ones the identity", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(70'000, 2), b = random_bytes(5, 3);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("empty"), "", 0);
  test::write_file(dir.file("b"), b.data(), b.size());
  trail_op op;
  auto out =
      run(op, {{dir.file("a")}, {dir.file("empty")}, {dir.file("b")}}, test::cpu_options(4096, 2));
  REQUIRE(out.size() == 3);
  CHECK(static_cast<trail&>(*out[0]).hash == plain_hash(a));
  CHECK(static_cast<trail&>(*out[1]).bytes == 0);
  CHECK(static_cast<trail&>(*out[1]).offsets.empty());
  CHECK(static_cast<trail&>(*out[2]).hash == plain_hash(b));
  CHECK(run(op, {}, test::cpu_options(4096, 2)).empty());
}

TEST_CASE("on_final hands an input's total once its last chunk is merged, during the job",
          "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(70'000, 2), b = random_bytes(5, 3), c = random_bytes(200'000, 4);
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("empty"), "", 0);
  test::write_file(dir.file("b"), b.data(), b.size());
  test::write_file(dir.file("c"), c.data(), c.size());
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<std::size_t, std::uint64_t>> finals;  // input, hash
  bool a_final_before_c_ended = false;
  trail_op op;
  // c's last chunk waits (up to 10 s) for a's total: handed over at the end only, it never comes.
  op.hook = [&](const chunk_info& info) {
    if (info.input != 3 || !info.last) return;
    std::unique_lock lock(m);
    a_final_before_c_ended = cv.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::any_of(finals.begin(), finals.end(), [](auto& f) { return f.first == 0; });
    });
  };
  auto out = run(op, {{dir.file("a")}, {dir.file("empty")}, {dir.file("b")}, {dir.file("c")}},
                 test::cpu_options(4096, 2), nullptr, [&](std::size_t i, partial& total) {
                   std::lock_guard lock(m);
                   finals.emplace_back(i, static_cast<trail&>(total).hash);
                   cv.notify_all();
                 });
  CHECK(a_final_before_c_ended);
  REQUIRE(finals.size() == 4);
  CHECK(finals[0].first == 1);  // the empty file, before the first read
  std::sort(finals.begin(), finals.end());
  CHECK(finals[0] == std::pair<std::size_t, std::uint64_t>{0, plain_hash(a)});
  CHECK(finals[1] == std::pair<std::size_t, std::uint64_t>{1, 0});
  CHECK(finals[2] == std::pair<std::size_t, std::uint64_t>{2, plain_hash(b)});
  CHECK(finals[3] == std::pair<std::size_t, std::uint64_t>{3, plain_hash(c)});
  CHECK(static_cast<trail&>(*out[3]).hash == plain_hash(c));
}

TEST_CASE("a region of a file (offset and length) is all that is read", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(100'000, 4);
  test::write_file(dir.file("a"), a.data(), a.size());
  trail_op op;
  auto out = run(op, {{dir.file("a"), 1000, 50'000}}, test::cpu_options(4096, 2));
  const std::vector<std::byte> region(a.begin() + 1000, a.begin() + 51'000);
  CHECK(static_cast<trail&>(*out[0]).hash == plain_hash(region));
}

TEST_CASE("a pool of one slot does not deadlock", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(300'000, 5);
  test::write_file(dir.file("a"), a.data(), a.size());
  trail_op op;
  auto o = test::cpu_options(4096, 3, 1);
  o.io_threads = 1;
  auto out = run(op, {{dir.file("a")}, {dir.file("a")}}, o);
  CHECK(static_cast<trail&>(*out[0]).hash == plain_hash(a));
  CHECK(static_cast<trail&>(*out[1]).hash == plain_hash(a));
}

TEST_CASE("an error in one chunk stops the job promptly and surfaces the error", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(64 << 20, 6);
  test::write_file(dir.file("a"), a.data(), a.size());
  std::atomic<int> processed{0};
  trail_op op;
  // Each chunk costs 50 us or more: a lane that keeps going 4000 chunks has ignored the failure
  // for 0.2 s or more (at a few microseconds a chunk it was one time slice of the failing lane).
  op.hook = [&](const chunk_info& info) {
    processed++;
    if (info.index == 5) throw input_error("a", "bad record in chunk 5");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  };
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_MATCHES(run(op, {{dir.file("a")}}, test::cpu_options(4096, 2)), input_error,
                         test::what(Catch::Matchers::Equals("a: bad record in chunk 5")));
  // 16384 chunks in all: stopping promptly means far fewer were processed.
  CHECK(processed.load() < 4000);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  // The engine is reusable afterwards (nothing left half-open).
  op.hook = nullptr;
  auto out = run(op, {{dir.file("a")}}, test::cpu_options(1 << 20, 2));
  CHECK(static_cast<trail&>(*out[0]).hash == plain_hash(a));
}

TEST_CASE("cancellation stops a running job with hetpipe::cancelled", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(8 << 20, 7);
  test::write_file(dir.file("a"), a.data(), a.size());
  trail_op op;
  op.hook = [](const chunk_info&) { std::this_thread::sleep_for(std::chrono::milliseconds(5)); };
  std::atomic<bool> cancel{false};
  auto o = test::cpu_options(4096, 2);
  o.cancel = &cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run(op, {{dir.file("a")}}, o), cancelled);
  stopper.join();
  // 2048 chunks × 5 ms / 2 lanes would take 5 s.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("a missing input fails the job with the file named", "[pipeline]") {
  test::temp_dir dir;
  trail_op op;
  REQUIRE_THROWS_MATCHES(run(op, {{dir.file("nope")}}, test::cpu_options(4096, 2)), io_error,
                         test::what(Catch::Matchers::Contains(dir.file("nope"))));
}

TEST_CASE("the read-only pass reads every byte", "[pipeline]") {
  test::temp_dir dir;
  const auto a = random_bytes(1 << 20, 8);
  test::write_file(dir.file("a"), a.data(), a.size());
  job_report rep;
  CHECK(read_only({{dir.file("a")}, {dir.file("a")}}, test::cpu_options(65536, 2), &rep) ==
        2u << 20);
  CHECK(rep.chunks == 32);
  // Mapped chunks that nothing reads would touch no byte: the ceiling reads them, map or not.
  options o = test::cpu_options(256 << 10, 2);
  o.reads = read_mode::map;
  CHECK(read_only({{dir.file("a")}}, o, &rep) == 1u << 20);
  CHECK(rep.resolved.reads == read_mode::lane);
  for (const auto& l : rep.lanes) CHECK(l.mapped == 0);
}

TEST_CASE("a reduction over small files gets more slots and io threads, unless it set them",
          "[pipeline]") {
  test::temp_dir dir;
  std::vector<input> small, mixed;
  for (int i = 0; i < 50; ++i) {
    const auto b = random_bytes(40000 + std::size_t(i), 20 + std::uint64_t(i));
    test::write_file(dir.file("s" + std::to_string(i)), b.data(), b.size());
    small.push_back({dir.file("s" + std::to_string(i))});
  }
  const auto big = random_bytes(300000, 19);  // above what the reader batches (256 KiB)
  test::write_file(dir.file("big"), big.data(), big.size());
  mixed = small;
  mixed.push_back({dir.file("big")});
  const std::uint64_t small_bytes = 50 * 40000 + 49 * 50 / 2;
  const options d = resolve(test::cpu_options(1 << 20, 2));
  job_report rep;
  // Default slots and io threads: 40 KiB slots, as many as the default pool's bytes, at most 128
  // and at most one per file.
  CHECK(read_only(small, test::cpu_options(1 << 20, 2), &rep) == small_bytes);
  CHECK(rep.resolved.slots ==
        std::min<unsigned>({50, 128, std::max<unsigned>(d.slots, d.slots * (1u << 20) / 40960)}));
  CHECK(rep.resolved.io_threads == std::max(16u, d.io_threads));
  // Set by the caller: kept.
  options set = test::cpu_options(1 << 20, 2, 6);
  set.io_threads = 3;
  CHECK(read_only(small, set, &rep) == small_bytes);
  CHECK(rep.resolved.slots == 6);
  CHECK(rep.resolved.io_threads == 3);
  // One file too large to batch: defaults.
  CHECK(read_only(mixed, test::cpu_options(1 << 20, 2), &rep) == small_bytes + 300000);
  CHECK(rep.resolved.slots == d.slots);
  CHECK(rep.resolved.io_threads == d.io_threads);
}

TEST_CASE("a job gets no more slots than it has chunks", "[pipeline]") {
  // The pool is touched page by page when it is made: slots no chunk will use cost set-up time.
  test::temp_dir dir;
  const auto a = random_bytes((5u << 20) / 2, 3);  // 2.5 MiB: 3 chunks of 1 MiB
  test::write_file(dir.file("a"), a.data(), a.size());
  test::write_file(dir.file("empty"), a.data(), 0);
  job_report rep;
  CHECK(read_only({{dir.file("a")}}, test::cpu_options(1 << 20, 2, 40), &rep) == a.size());
  CHECK(rep.resolved.slots == 3);
  CHECK(rep.chunks == 3);
  CHECK(read_only({{dir.file("a")}, {dir.file("empty")}}, test::cpu_options(1 << 20, 2, 40),
                  &rep) == a.size());
  CHECK(rep.resolved.slots == 3);  // the reader makes no chunk of an empty input
  // A region of 1 MiB + 1 byte: 2 chunks.
  CHECK(read_only({{dir.file("a"), 0, (1u << 20) + 1}}, test::cpu_options(1 << 20, 2, 40), &rep) ==
        (1u << 20) + 1);
  CHECK(rep.resolved.slots == 2);
  // Fewer slots asked for than chunks: kept.
  CHECK(read_only({{dir.file("a")}}, test::cpu_options(1 << 20, 2, 2), &rep) == a.size());
  CHECK(rep.resolved.slots == 2);
}

TEST_CASE("CPU lanes that map their chunks keep a slot each, beyond 1 GiB of slots", "[pipeline]") {
  // 64 lanes and 72 chunks of 16 MiB (one 16 MiB file named 72 times): 1 GiB of slots holds 64.
  // Mapped, the pool is never touched: every lane's slot and the reads (72, resolve's default).
  // Read into the slots (--reads lane, or chunks that cannot be mapped), it stays within 1 GiB.
  struct count final : partial {
    std::uint64_t bytes = 0;
  };
  struct count_op final : reduce_op {
    std::size_t record = 1;
    framing frame(std::size_t) const override { return framing::records(record); }
    std::unique_ptr<partial> identity(std::size_t) const override {
      return std::make_unique<count>();
    }
    std::unique_ptr<partial> host(const chunk_info&,
                                  std::span<const std::byte> data) const override {
      auto c = std::make_unique<count>();
      c->bytes = data.size();
      return c;
    }
    void merge(partial& total, partial& next) const override {
      static_cast<count&>(total).bytes += static_cast<count&>(next).bytes;
    }
  };
  constexpr std::size_t chunk = std::size_t{16} << 20;
  test::temp_dir dir;
  const auto b = random_bytes(chunk, 5);
  test::write_file(dir.file("f"), b.data(), b.size());
  const std::vector<input> inputs(72, input{dir.file("f")});
  for (const read_mode m : {read_mode::map, read_mode::lane}) {
    CAPTURE(read_mode_name(m));
    options o = test::cpu_options(chunk, 64);
    o.io_threads = 4;
    o.reads = m;
    job_report rep;
    const auto out = run(count_op{}, inputs, o, &rep);
    REQUIRE(out.size() == inputs.size());
    for (const auto& p : out) CHECK(static_cast<const count&>(*p).bytes == chunk);
    // (72 where a quarter of the memory holds them, as on the machines CI runs on)
    const auto untouched =
        std::min<std::uint64_t>(72, hetpipe::detail::untouched_pool_budget() / chunk);
    CHECK(rep.resolved.slots ==
          (m == read_mode::map ? std::max<std::uint64_t>(64, untouched) : 64u));
  }
  // Records of 8 bytes in regions that start 4 bytes in: no chunk can be mapped (each is read into
  // its slot), so the pool stays within 1 GiB in map mode too.
  count_op eight;
  eight.record = 8;
  const std::vector<input> off(72, input{dir.file("f"), 4, chunk - 8});
  options o = test::cpu_options(chunk, 64);
  o.io_threads = 4;
  job_report rep;
  const auto out = run(eight, off, o, &rep);
  REQUIRE(out.size() == off.size());
  CHECK(static_cast<const count&>(*out.back()).bytes == chunk - 8);
  CHECK(rep.resolved.slots == 64u);
}

TEST_CASE("a GPU-only job without a usable GPU is a clear error", "[pipeline]") {
  if (gpu_count() > 0) return;  // covered by the [gpu] tests on a GPU machine
  test::temp_dir dir;
  const auto a = random_bytes(4096, 9);
  test::write_file(dir.file("a"), a.data(), a.size());
  options o;
  o.device = device_mode::gpu;
  REQUIRE_THROWS_MATCHES(stats({dir.file("a")}, dtype::u8, o), gpu_error,
                         test::what(Catch::Matchers::Contains("--device gpu")));
}

TEST_CASE("options: sizes parse with suffixes and bad values are refused", "[pipeline]") {
  CHECK(parse_size("4M") == 4u << 20);
  CHECK(parse_size("512K") == 512u << 10);
  CHECK(parse_size("1G") == 1u << 30);
  CHECK(parse_size("65536") == 65536);
  CHECK(parse_size("2MiB") == 2u << 20);
  CHECK_THROWS_AS(parse_size("4X"), usage_error);
  CHECK_THROWS_AS(parse_size(""), usage_error);
  CHECK_THROWS_AS(parse_size("-1"), usage_error);
  options o;
  o.chunk_size = 100;
  CHECK_THROWS_AS(resolve(o), usage_error);
  options modes;  // values no enumerator names (a cast from elsewhere) are refused
  modes.device = static_cast<device_mode>(9);
  CHECK_THROWS_MATCHES(resolve(modes), usage_error,
                       test::what(Catch::Matchers::Contains("options::device: no such mode (9)")));
  modes.device = device_mode::cpu;
  modes.reads = static_cast<read_mode>(5);
  CHECK_THROWS_MATCHES(resolve(modes), usage_error,
                       test::what(Catch::Matchers::Contains("options::reads: no such mode (5)")));
  const options d = resolve({});
  // 2 MiB chunks beside GPU lanes; for CPU lanes alone 4 MiB when they map their chunks (the
  // default), 1 MiB when they read them into slots.
  CHECK(d.reads == read_mode::map);
  CHECK(d.chunk_size == (d.gpu_lanes > 0 ? 2u << 20 : 4u << 20));
  options cpu;
  cpu.device = device_mode::cpu;
  CHECK(resolve(cpu).chunk_size == 4u << 20);
  for (read_mode m : {read_mode::lane, read_mode::pool}) {
    cpu.reads = m;
    CHECK(resolve(cpu).chunk_size == 1u << 20);
  }
  // CPU lanes: every hardware thread; half of them go on beside GPU lanes, unless the lanes were
  // given. Resolving twice changes nothing.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  CHECK(d.cpu_threads == hw);
  CHECK(d.cpu_threads_beside_gpu == (d.gpu_lanes > 0 ? std::max(1u, hw / 2) : hw));
  options given;
  given.cpu_threads = 3;
  CHECK(resolve(given).cpu_threads_beside_gpu == 3);
  given.cpu_threads_beside_gpu = 5;
  CHECK(resolve(given).cpu_threads_beside_gpu == 3);  // at most the lanes there are
  CHECK(resolve(resolve({})).cpu_threads_beside_gpu == d.cpu_threads_beside_gpu);
  CHECK(parse_read_mode("map") == read_mode::map);
  CHECK(parse_read_mode("lane") == read_mode::lane);
  CHECK(parse_read_mode("pool") == read_mode::pool);
  CHECK(!parse_read_mode("mmap"));
  CHECK(read_mode_name(read_mode::lane) == "lane");
  CHECK(d.slots >= 4);
  CHECK(d.io_threads >= 4);
}

TEST_CASE("large chunks bound the pool's reads in bytes and the pool to its budget", "[pipeline]") {
  using hetpipe::detail::large_chunk_slots;
  constexpr std::uint64_t M = 1 << 20, G = M << 10;
  // 16 io threads (the H200 box's); 8 CPU lanes + 2 GPU lanes (44 slots: what auto mode keeps
  // once its GPU lanes run), cpu 16 (48). Chunks of 4 MiB and less keep the default, and so do
  // many small files' slots.
  CHECK(large_chunk_slots(44, 2 * M, 16, 8, 2, G) == 44);
  CHECK(large_chunk_slots(48, 4 * M, 16, 16, 0, G) == 48);
  CHECK(large_chunk_slots(128, 64 << 10, 16, 16, 0, G) == 128);
  // 64 MiB images: 2 reads beside every lane's slot (8 + 2 x 2), within 1 GiB (cpu: 16).
  CHECK(large_chunk_slots(44, 64 * M, 16, 8, 2, G) == 14);
  CHECK(large_chunk_slots(48, 64 * M, 16, 16, 0, G) == 16);
  CHECK(large_chunk_slots(36, 64 * M, 16, 0, 2, G) == 6);  // --device gpu
  // HD photos (6 MiB): 21 reads; 2-core box (4 io threads, 2 lanes): the default (10) stays.
  CHECK(large_chunk_slots(44, 6 * M, 16, 8, 2, G) == 33);
  CHECK(large_chunk_slots(10, 6 * M, 4, 2, 0, G) == 10);
  CHECK(large_chunk_slots(10, 64 * M, 4, 2, 0, G) == 4);
  // At least 2 slots, however large (a 1.5 GiB image), and never more than given.
  CHECK(large_chunk_slots(44, 1536 * M, 16, 8, 2, G) == 2);
  CHECK(large_chunk_slots(3, 64 * M, 16, 8, 2, G) == 3);
  // A pool that stays untouched (CPU lanes mapping their chunks), within a quarter of the memory
  // of a 128 GiB machine: every lane's slot and the reads; 24 GiB: 10 slots of 600 MiB.
  CHECK(large_chunk_slots(48, 64 * M, 16, 16, 0, 32 * G) == 18);
  CHECK(large_chunk_slots(48, 600 * M, 16, 16, 0, 32 * G) == 17);
  CHECK(large_chunk_slots(48, 600 * M, 16, 16, 0, 6 * G) == 10);
  CHECK(large_chunk_slots(48, 4 * M, 16, 16, 0, 32 * G) == 48);
  CHECK(large_chunk_slots(10, 600 * M, 4, 2, 0, 32 * G) == 4);
  CHECK(large_chunk_slots(3, 600 * M, 16, 16, 0, 32 * G) == 3);
  // Auto mode on that machine: 16 CPU lanes map 8192^2 images (64 MiB and a page each) until the
  // GPU lanes join. 1 GiB holds 15 slots, one fewer than the lanes; an eighth of 128 GiB holds
  // every lane's, the GPU lanes' two each and a read (128 MiB).
  CHECK(large_chunk_slots(48, 64 * M + 4096, 16, 16, 2, G) == 15);
  CHECK(large_chunk_slots(48, 64 * M + 4096, 16, 16, 2, 16 * G) == 21);
  // A quarter of the memory the kernel reports, at least 1 GiB.
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  while (meminfo >> key >> kib && key != "MemTotal:") meminfo.ignore(256, '\n');
  REQUIRE(key == "MemTotal:");
  CHECK(hetpipe::detail::untouched_pool_budget() == std::max<std::uint64_t>(G, kib * 1024 / 4));
  CHECK(hetpipe::detail::mapping_pool_budget() == std::max<std::uint64_t>(G, kib * 1024 / 8));
}

TEST_CASE("auto mode starts its GPU lanes for a job projected long at its steady rate",
          "[pipeline]") {
  using hetpipe::detail::gpu_start_rule;
  constexpr std::uint64_t G = 1'000'000'000;
  SECTION("threshold 0, or an input of unknown length: at the first check") {
    CHECK(gpu_start_rule(0, 10 * G, true).at_once());
    CHECK_FALSE(gpu_start_rule(0.5, 10 * G, true).at_once());
    CHECK(gpu_start_rule(0, 10 * G, true).check(0.02, 0));
    CHECK(gpu_start_rule(0.5, 0, false).check(0.02, 123));
  }
  SECTION("a long job: the first check sets the base, the second projects") {
    gpu_start_rule r(0.5, 10 * G, true);
    CHECK_FALSE(r.check(0.02, G / 5));
    CHECK(r.projected() == -1);
    CHECK(r.check(0.04, 2 * G / 5));  // 9.6 GB left at 10 GB/s
    CHECK(r.projected() == Approx(0.96));
  }
  SECTION("a short job never") {
    gpu_start_rule r(0.5, G, true);
    CHECK_FALSE(r.check(0.02, G / 5));
    CHECK_FALSE(r.check(0.04, 2 * G / 5));
    CHECK(r.projected() == Approx(0.06));
    CHECK_FALSE(r.check(0.06, 3 * G / 5));
  }
  SECTION("a slow start is not the rate: 10 MB in the first 20 ms, then 12 GB/s") {
    // Projected from the start, 1.29 GB at 0.5 GB/s would be 2.6 s: the GPU lanes would start
    // for a job with 0.09 s left.
    gpu_start_rule r(0.5, 1'300'000'000, true);
    CHECK_FALSE(r.check(0.02, 10'000'000));
    CHECK_FALSE(r.check(0.04, 250'000'000));
    CHECK(r.projected() == Approx(0.0875));
  }
  SECTION("heavy chunks: nothing done for a quarter of the threshold is a long job") {
    gpu_start_rule r(0.5, G, true);
    for (double t = 0.02; t < 0.12; t += 0.02) CHECK_FALSE(r.check(t, 0));
    CHECK(r.check(0.14, 0));
    gpu_start_rule s(0.5, G, true);
    CHECK_FALSE(s.check(0.02, 100));  // one chunk, then none for a while
    CHECK_FALSE(s.check(0.08, 100));
    CHECK(s.check(0.14, 100));
  }
}

TEST_CASE("a chunk's progress counts in its job up to the chunk's size, from any thread",
          "[pipeline]") {
  using hetpipe::detail::chunk_progress;
  std::atomic<std::uint64_t> job{1000};  // other chunks' progress
  CHECK(chunk_progress::current() == nullptr);
  chunk_progress a(job, 5000);
  {
    const chunk_progress::scope in_a(&a);
    CHECK(chunk_progress::current() == &a);
    chunk_progress b(job, 10);
    {
      const chunk_progress::scope in_b(&b);
      CHECK(chunk_progress::current() == &b);
      b.add(7);
      b.add(7);  // 3 of these fit
      b.add(std::uint64_t(-1));
    }
    CHECK(chunk_progress::current() == &a);
    CHECK(b.told() == 10);
    // Four threads tell 400 x 4 bytes each: of the 6400 asked, the 5000 that fit count.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&a] {
        for (int i = 0; i < 400; ++i) a.add(4);
      });
    for (auto& t : threads) t.join();
  }
  CHECK(chunk_progress::current() == nullptr);
  CHECK(a.told() == 5000);
  CHECK(job == 1000 + 5000);  // b's 10 left with b
  a.take_back();
  CHECK(a.told() == 0);
  CHECK(job == 1000);
  a.add(5);
  CHECK(job == 1005);
  a.take_back();
  CHECK_FALSE(chunk_progress::in_parts(3));  // no chunk on this thread: nothing to tell

  // Work in parts (an image's rows): part k of 3 ends at byte floor(1000 k / 3).
  chunk_progress c(job, 1000);
  const chunk_progress::scope in_c(&c);
  const auto rows = chunk_progress::in_parts(3);
  REQUIRE(rows);
  rows(1);
  CHECK(c.told() == 333);
  std::thread([&rows] { rows(1); }).join();
  CHECK(c.told() == 666);
  rows(1);
  CHECK(c.told() == 1000);
  CHECK(job == 1000 + 1000);
}

TEST_CASE("a chunk's parts throw cancelled once its job is stopping", "[pipeline]") {
  using hetpipe::detail::chunk_progress;
  std::atomic<std::uint64_t> job{0};
  std::atomic<bool> stop{false};
  {
    chunk_progress c(job, 100, &stop);
    const chunk_progress::scope in_c(&c);
    const auto rows = chunk_progress::in_parts(10);
    CHECK_NOTHROW(rows(1));
    CHECK_FALSE(c.stopping());
    stop = true;
    CHECK(c.stopping());
    CHECK_THROWS_AS(rows(1), hetpipe::cancelled);
    CHECK(c.told() == 20);  // told, then stopped
    // From another thread (a band of an image's team) too.
    bool threw = false;
    std::thread([&] {
      try {
        rows(1);
      } catch (const hetpipe::cancelled&) {
        threw = true;
      }
    }).join();
    CHECK(threw);
  }
  CHECK(job == 0);  // the chunk's progress left with it
  // Without a stop flag nothing stops.
  chunk_progress d(job, 100);
  const chunk_progress::scope in_d(&d);
  CHECK_NOTHROW(chunk_progress::in_parts(10)(10));
}

TEST_CASE("CPU lanes beside GPU lanes take surplus chunks they accept, and leave the rest",
          "[pipeline][scheduler]") {
  using hetpipe::detail::ready_queue;
  const auto chunk = [](std::size_t size, std::uint64_t seq) {
    io::chunk c{};
    c.info.size = size;
    c.info.seq = seq;
    return c;
  };
  const auto small = [](const io::chunk& c) { return c.info.size < 100; };
  ready_queue q;
  q.set_reserve(1);
  q.push(chunk(1000, 0));  // refused by the helper lanes
  q.push(chunk(10, 1));
  q.push(chunk(10, 2));
  // A first-call lane (a GPU lane) takes the refused chunk a little later; meanwhile the helper
  // lane waits rather than take it.
  // (Catch2's assertions are for the test's own thread: the lane's chunk is checked after join.)
  std::optional<io::chunk> gpu_took;
  std::thread gpu([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    gpu_took = q.pop();
  });
  auto c = q.pop_surplus(small);
  REQUIRE(c);
  CHECK(c->info.seq == 1);
  gpu.join();
  REQUIRE(gpu_took);
  CHECK(gpu_took->info.seq == 0);
  // One chunk left, the reserve is 1: no surplus until the reader is done.
  q.close();
  c = q.pop_surplus(small);
  REQUIRE(c);
  CHECK(c->info.seq == 2);
  CHECK_FALSE(q.pop_surplus(small));
  CHECK_FALSE(q.pop());
  // A chunk pushed after the end (a read that raced a failed job) is refused, not queued where no
  // lane would take it (its slot would never go back).
  CHECK_FALSE(q.push(chunk(10, 3)));
  CHECK_FALSE(q.pop());
  ready_queue aborted;
  CHECK(aborted.push(chunk(10, 0)));
  CHECK(aborted.abort().size() == 1);
  CHECK_FALSE(aborted.push(chunk(10, 1)));
  CHECK_FALSE(aborted.pop());
}

TEST_CASE("A burst of chunks reaches every idle lane: each woken lane wakes the next",
          "[pipeline][scheduler]") {
  using hetpipe::detail::ready_queue;
  ready_queue q;
  constexpr int lanes = 4;
  std::mutex mu;
  std::condition_variable cv;
  int holding = 0;
  std::vector<int> got(lanes, -1);
  std::vector<bool> all_held(lanes, false);
  std::vector<std::thread> threads;
  for (int i = 0; i < lanes; ++i)
    threads.emplace_back([&, i] {
      auto c = q.pop();
      if (!c) return;
      got[i] = int(c->info.seq);
      // Hold the chunk until every lane holds one (or 10 s pass): a lane left asleep while chunks
      // wait makes this time out.
      std::unique_lock lock(mu);
      ++holding;
      cv.notify_all();
      all_held[i] = cv.wait_for(lock, std::chrono::seconds(10), [&] { return holding == lanes; });
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // every lane waits in pop()
  for (int k = 0; k < lanes; ++k) {
    io::chunk c{};
    c.info.seq = std::uint64_t(k);
    REQUIRE(q.push(c));
  }
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return holding == lanes; });
  }
  q.close();  // a lane still asleep wakes with nothing: the checks below fail, nothing hangs
  for (auto& t : threads) t.join();
  for (int i = 0; i < lanes; ++i) CHECK(all_held[i]);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{0, 1, 2, 3});
  CHECK_FALSE(q.pop());
}

TEST_CASE("Bursts of chunks from one thread to many lanes: every chunk taken once, none left",
          "[pipeline][scheduler]") {
  using hetpipe::detail::ready_queue;
  ready_queue q;
  constexpr int lanes = 8, total = 20000;
  std::vector<std::atomic<int>> seen(total);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < lanes; ++i)
    threads.emplace_back([&] {
      while (auto c = q.pop()) {
        seen[c->info.seq].fetch_add(1);
        taken.fetch_add(1);
      }
    });
  std::mt19937 gen(5);
  for (int k = 0; k < total;) {
    const int burst = 1 + int(gen() % 16);
    for (int j = 0; j < burst && k < total; ++j, ++k) {
      io::chunk c{};
      c.info.seq = std::uint64_t(k);
      REQUIRE(q.push(c));
    }
    if (gen() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(gen() % 200));
  }
  q.close();
  for (auto& t : threads) t.join();
  CHECK(taken == total);
  for (int k = 0; k < total; ++k) REQUIRE(seen[k] == 1);
}

TEST_CASE("stat_all gives every path the result stat gives it, on several threads",
          "[pipeline][scheduler]") {
  hetpipe::test::temp_dir dir;
  std::vector<std::string> paths;
  for (int i = 0; i < 3000; ++i) {
    const std::string p = (dir.path() / ("f" + std::to_string(i))).string();
    if (i % 7 != 3) std::ofstream(p) << std::string(std::size_t(i % 50), 'x');  // else missing
    paths.push_back(i % 500 == 0 ? dir.path().string() : p);  // and now and then the folder
  }
  paths.push_back("");
  const auto got = hetpipe::detail::stat_all(paths);
  REQUIRE(got.size() == paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    struct stat st {};
    const int err = ::stat(paths[i].c_str(), &st) == 0 ? 0 : errno;
    REQUIRE(got[i].error == err);
    if (err == 0) {
      REQUIRE(got[i].st.st_ino == st.st_ino);
      REQUIRE(got[i].st.st_size == st.st_size);
      REQUIRE(got[i].st.st_mode == st.st_mode);
    }
  }
  CHECK(got.back().error == ENOENT);
}

// An operator's mistakes are errors, not crashes or wrong reasons: a null partial (merged, it
// ended the process), lines of up to SIZE_MAX bytes (max_record + 1 wrapped to 0: every line was
// "longer than max_record"), a framing of no known kind (it ran as records).
TEST_CASE("a null partial and impossible framings are clear errors", "[pipeline]") {
  struct none final : partial {};
  struct odd_op final : reduce_op {
    framing f = framing::records(1);
    bool null_host = false;
    framing frame(std::size_t) const override { return f; }
    std::unique_ptr<partial> identity(std::size_t) const override {
      return std::make_unique<none>();
    }
    std::unique_ptr<partial> host(const chunk_info&, std::span<const std::byte>) const override {
      if (null_host) return nullptr;
      return std::make_unique<none>();
    }
    void merge(partial&, partial&) const override {}
  };
  test::temp_dir dir;
  test::write_file(dir.file("t"), "one\ntwo\n", 8);
  const std::vector<input> in{{dir.file("t")}};
  const options o = test::cpu_options(4096, 2);
  odd_op op;
  op.null_host = true;
  CHECK_THROWS_WITH(run(op, in, o),
                    Catch::Matchers::Contains("returned a null partial for chunk 0 of input 0"));
  op.null_host = false;
  op.f = framing::lines(SIZE_MAX);
  try {
    run(op, in, o);
    FAIL("no error");
  } catch (const usage_error& e) {
    CHECK(e.file() == dir.file("t"));
    CHECK_THAT(e.reason(), Catch::Matchers::Contains("at most 1 GiB"));
  }
  op.f.kind = static_cast<framing_kind>(7);
  CHECK_THROWS_MATCHES(run(op, in, o), usage_error,
                       test::what(Catch::Matchers::Contains("framing is of no known kind (7)")));
  op.f = framing::lines(1u << 30);  // the largest allowed
  CHECK(run(op, in, o).size() == 1);
}

// Hidden benchmark ([.bench]): read throughput of a hot 1 GiB file through io::reader, against a
// single-threaded pread loop over the same footprint, measured in the same run (the
// page-cache copy ceiling).
//   ./test_io "[.bench]"        (HETPIPE_BENCH_DIR chooses the folder; default: the temp folder)
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "io/reader.hpp"
#include "io_test_util.hpp"

using namespace hetpipe;
using namespace hetpipe::io;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("Reader throughput on a hot 1 GiB file", "[.bench][io][reader]") {
  const unsigned threads = set_io_threads(4);  // first libuv use when run alone
  const std::size_t file_bytes = std::size_t(1) << 30, chunk_bytes = 4 << 20;
  const char* where = std::getenv("HETPIPE_BENCH_DIR");
  std::string path = (where ? std::string(where) : test::fs::temp_directory_path().string()) +
                     "/hetpipe-bench-1g.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    std::mt19937_64 gen(1);
    std::vector<std::uint64_t> buf(chunk_bytes / 8);
    for (std::size_t done = 0; done < file_bytes; done += chunk_bytes) {
      for (auto& w : buf) w = gen();
      REQUIRE(std::fwrite(buf.data(), 1, chunk_bytes, f) == chunk_bytes);
    }
    std::fclose(f);
  }

  // buffers = 1: the same buffer again and again (cache-hot, like the reader's LIFO pool here,
  // whose consumer releases at once); 16: the pool's footprint, each buffer cold in turn.
  auto pread_pass = [&](std::size_t buffers) {
    int fd = ::open(path.c_str(), O_RDONLY);
    // 16 buffers in turn: the same memory footprint as the reader's pool (one buffer would stay
    // in the CPU cache and flatter the reference).
    std::vector<std::byte> buf(buffers * chunk_bytes);
    auto t0 = std::chrono::steady_clock::now();
    std::size_t total = 0;
    for (ssize_t n, k = 0; (n = ::pread(fd, buf.data() + (k++ % buffers) * chunk_bytes, chunk_bytes,
                                        off_t(total))) > 0;)
      total += std::size_t(n);
    double s = seconds_since(t0);
    ::close(fd);
    REQUIRE(total == file_bytes);
    return double(total) / s / 1e9;
  };
  auto reader_pass = [&] {
    slot_pool pool(16, chunk_bytes);
    reader_config cfg;
    cfg.chunk_size = chunk_bytes;
    cfg.max_inflight = 8;
    std::uint64_t bytes = 0;
    std::exception_ptr err;
    auto t0 = std::chrono::steady_clock::now();
    reader rd(
        {{path}}, [](std::size_t) { return framing::records(1); }, pool, cfg);
    rd.start(
        [&](chunk c) {  // a lane with nothing to do
          bytes += c.info.size;
          pool.release(c.slot);
          rd.retire();
        },
        [&](std::exception_ptr e) { err = e; });
    rd.wait();
    double s = seconds_since(t0);
    REQUIRE_FALSE(err);
    REQUIRE(bytes == file_bytes);
    return double(bytes) / s / 1e9;
  };

  pread_pass(1);  // make it hot
  double best_reader = 0, best_one = 0, best_rot = 0;
  for (int i = 0; i < 3; ++i) {
    best_reader = std::max(best_reader, reader_pass());
    best_one = std::max(best_one, pread_pass(1));
    best_rot = std::max(best_rot, pread_pass(16));
  }
  std::printf(
      "io::reader, hot 1 GiB, chunk 4 MiB, %u io threads, 8 in flight, 16 slots, %u CPU cores: "
      "%.2f GB/s\n  single-thread pread, one 4 MiB buffer: %.2f GB/s (ratio %.2f); 16 rotating "
      "4 MiB buffers: %.2f GB/s (ratio %.2f)\n",
      threads, std::thread::hardware_concurrency(), best_reader, best_one, best_reader / best_one,
      best_rot, best_reader / best_rot);
  ::unlink(path.c_str());
}

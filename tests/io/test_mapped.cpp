// io::mapped_reads: chunks delivered unread, worked on straight from the page cache.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <random>

#include "hetpipe/error.hpp"
#include "io/io_test_util.hpp"
#include "io/mapped.hpp"

using namespace hetpipe;
using namespace hetpipe::io;
using namespace hetpipe::io::test;

namespace {

// Input 0's chunk `index` as the reader delivers it unread: region from file offset `region`,
// chunks of `nominal` bytes, `total` bytes in the region.
chunk unread_chunk(const std::string& path, std::uint64_t region, std::uint64_t nominal,
                   std::uint64_t total, std::uint64_t index) {
  chunk c{};
  c.info.input = 0;
  c.info.seq = index;
  c.info.index = index;
  c.info.offset = index * nominal;
  c.info.size = std::size_t(std::min(nominal, total - c.info.offset));
  c.info.last = c.info.offset + c.info.size == total;
  c.read_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(c.read_fd >= 0);
  c.read_offset = region + c.info.offset;
  c.unread = true;
  return c;
}

std::string shrank_reason(const std::function<void()>& f) {
  try {
    f();
  } catch (const io_error& e) {
    return e.reason();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("mapped_reads: chunks come from the page cache, windows go when their chunks are retired",
          "[io][mapped]") {
  temp_dir dir;
  constexpr std::uint64_t M = 1 << 20;
  const auto bytes = random_bytes(5 * M + 24 + 128, 31);
  write_file(dir.file("f"), bytes);
  struct layout {
    std::uint64_t region, record;
    bool mapped;
  };
  // Regions from 0 and from 128 (an .npy header) map; 4 bytes in with 8-byte records would not
  // be aligned for them: read instead (and still counted down). 12-byte records want 4 bytes.
  for (auto [region, record, mapped] :
       {layout{0, 1, true}, layout{128, 8, true}, layout{4, 8, false}, layout{128, 12, true}}) {
    INFO("region " << region << " record " << record);
    const framing fr = framing::records(record);
    const std::uint64_t nominal = nominal_chunk(fr, M);
    const std::uint64_t total = (5 * M + 24) / record * record;
    const std::uint64_t n = (total + nominal - 1) / nominal;  // 6 chunks, 2 to a window
    mapped_reads maps([fr](std::size_t) { return fr; }, M, 2 * M);
    std::vector<std::uint64_t> order(n);
    for (std::uint64_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    for (std::uint64_t i : order) {
      chunk c = unread_chunk(dir.file("f"), region, nominal, total, i);
      const auto v = maps.map(c, dir.file("f"));
      REQUIRE((v.data != nullptr) == mapped);
      if (v.data) {
        drop_chunk(c);
        CHECK(std::memcmp(v.data, bytes.data() + c.read_offset, c.info.size) == 0);
        CHECK_NOTHROW(mapped_reads::check(v, dir.file("f")));
      } else {
        CHECK(c.read_fd >= 0);  // still the caller's to read
        drop_chunk(c);
      }
    }
    CHECK(maps.windows_live() == (mapped ? 3u : 0u));  // unaligned: counted at retire only
    CHECK(maps.windows_mapped() == (mapped ? 3u : 0u));
    // Retired in another order: a window goes with its last chunk, the input's short last
    // window with its two.
    for (std::uint64_t i : {5u, 0u, 2u, 1u}) {
      chunk c = unread_chunk(dir.file("f"), region, nominal, total, i);
      drop_chunk(c);
      maps.retire(c.info);
    }
    CHECK(maps.windows_live() == 2);  // windows 1 and 2 each wait for one chunk
    for (std::uint64_t i : {4u, 3u}) {
      chunk c = unread_chunk(dir.file("f"), region, nominal, total, i);
      drop_chunk(c);
      maps.retire(c.info);
    }
    CHECK(maps.windows_live() == 0);
  }
}

TEST_CASE("mapped_reads: a file cut while mapped is an error, not SIGBUS", "[io][mapped]") {
  temp_dir dir;
  constexpr std::uint64_t M = 1 << 20;
  const auto bytes = random_bytes(3 * M, 32);
  const std::string f = dir.file("f");
  const framing fr = framing::records(1);
  {
    write_file(f, bytes);
    mapped_reads maps([fr](std::size_t) { return fr; }, M, 4 * M);
    chunk c0 = unread_chunk(f, 0, M, 3 * M, 0);
    const auto v = maps.map(c0, f);
    REQUIRE(v.data);
    drop_chunk(c0);
    CHECK_NOTHROW(mapped_reads::check(v, f));
    // Cut under the mapping: the work on chunk 0 runs into pages that are gone. The handler puts
    // zeros there and marks the window; without it, this loop would end the process.
    REQUIRE(::truncate(f.c_str(), 64 << 10) == 0);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < c0.info.size; i += 512)
      sum += std::to_integer<unsigned>(static_cast<const volatile std::byte*>(v.data)[i]);
    (void)sum;
    CHECK(shrank_reason([&] { mapped_reads::check(v, f); }) == "file shrank while reading");
    // The next chunk of the same window: its pages are past the end now (populate says so).
    chunk c2 = unread_chunk(f, 0, M, 3 * M, 2);
    CHECK(shrank_reason([&] { maps.map(c2, f); }) == "file shrank while reading");
    drop_chunk(c2);
  }
  {
    // Already short when its window is made: the window stops at the end, the chunk past it.
    write_file(f, bytes);
    REQUIRE(::truncate(f.c_str(), M + 100) == 0);
    mapped_reads maps([fr](std::size_t) { return fr; }, M, 4 * M);
    chunk c1 = unread_chunk(f, 0, M, 3 * M, 1);
    CHECK(shrank_reason([&] { maps.map(c1, f); }) == "file shrank while reading");
    drop_chunk(c1);
  }
}

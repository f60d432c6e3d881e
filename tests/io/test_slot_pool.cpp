// io::slot_pool: its default memory, faulted in at set-up or left for the slots that are used.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "io/slot_pool.hpp"

using hetpipe::io::slot_pool;

namespace {

// Pages of [p, p + bytes) present in memory (mincore).
std::size_t resident_pages(const void* p, std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((bytes + page - 1) / page);
  REQUIRE(::mincore(const_cast<void*>(p), bytes, v.data()) == 0);
  std::size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

}  // namespace

TEST_CASE("slot_pool: the default memory is faulted in at set-up, or only where slots are used",
          "[io][slot_pool]") {
  constexpr std::size_t slot = 1 << 20;
  const std::size_t pages = 8 * slot / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  {
    slot_pool pool(8, slot);
    CHECK(resident_pages(pool.data(0), pool.bytes()) == pages);
  }
  slot_pool pool(8, slot, /*prefault=*/false);
  CHECK(resident_pages(pool.data(0), pool.bytes()) == 0);
  const unsigned s = pool.acquire();
  std::memset(pool.data(s), 0x5a, slot);
  const std::size_t used = resident_pages(pool.data(0), pool.bytes());
  CHECK(used >= slot / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
  CHECK(used < pages);
  CHECK(static_cast<unsigned char>(pool.data(s)[slot - 1]) == 0x5a);
  pool.release(s);
}

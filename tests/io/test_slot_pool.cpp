// io::slot_pool: its default memory, faulted in at set-up or left for the slots that are used.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/slot_pool.hpp"
#include "support/temp_dir.hpp"

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

// The VmFlags line of the mapping in /proc/self/smaps that holds address a ("" if none does).
std::string vm_flags_at(const void* a) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(a);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' '))
      inside = lo <= at && at < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return {};
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

TEST_CASE("huge pages are asked for unless a balloon reports free memory to the host",
          "[io][slot_pool]") {
  using hetpipe::io::free_pages_go_to_host;
  hetpipe::test::temp_dir sys;
  CHECK_FALSE(free_pages_go_to_host(sys.path()));  // no virtio balloon at all
  const auto drivers = sys.path() / "bus/virtio/drivers/virtio_balloon";
  std::filesystem::create_directories(drivers / "virtio3");
  std::filesystem::create_directories(drivers / "module");  // not a device: no features file
  const auto features = [&](const char* bits) {
    std::ofstream(drivers / "virtio3" / "features") << bits << "\n";
  };
  // A balloon without free page reporting (bits 0 and 1: size changes, stats).
  features("1100000000000000000000000000000010000000000000000000000000000000");
  CHECK_FALSE(free_pages_go_to_host(sys.path()));
  // The 2-core box's balloon: bit 5, VIRTIO_BALLOON_F_REPORTING, among others.
  features("0110010100000000000000000000000010000000000000000000000000000000");
  CHECK(free_pages_go_to_host(sys.path()));
  features("01100");  // too short to say: no reporting
  CHECK_FALSE(free_pages_go_to_host(sys.path()));
}

TEST_CASE("huge pages are advised over the aligned inside of new memory, when they pay",
          "[io][slot_pool]") {
  using hetpipe::io::advise_huge_pages;
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    WARN("this kernel has no transparent huge pages: the advice is not checked");
    return;
  }
  constexpr std::size_t mib = std::size_t{1} << 20;
  for (const bool pay : {true, false}) {
    CAPTURE(pay);
    // 9 MiB from 1 MiB past a 2 MiB boundary: the whole 2 MiB blocks inside run from p + 1 MiB
    // to p + 9 MiB.
    void* m = ::mmap(nullptr, 14 * mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    const auto base = (reinterpret_cast<std::uintptr_t>(m) + 2 * mib - 1) & ~(2 * mib - 1);
    auto* const p = reinterpret_cast<char*>(base + mib);
    advise_huge_pages(p, 9 * mib, pay);
    const auto huge_at = [&](std::size_t off) {
      return vm_flags_at(p + off).find(" hg") != std::string::npos;
    };
    CHECK(huge_at(mib) == pay);
    CHECK(huge_at(9 * mib - 1) == pay);
    CHECK_FALSE(huge_at(mib - 1));  // before the first whole block
    CHECK_FALSE(huge_at(9 * mib));  // past the last one, and past the memory given
    ::munmap(m, 14 * mib);
  }
}

// io::mapped_reads: chunks delivered unread, worked on straight from the page cache.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "hetpipe/error.hpp"
#include "io/io_test_util.hpp"
#include "io/mapped.hpp"

using namespace hetpipe;
using namespace hetpipe::io;
using namespace hetpipe::io::test;

namespace {

// Input 0's chunk `index` as the reader delivers it unread: region from file offset `region`,
// chunks of `nominal` bytes, `total` bytes in the region. No Catch assertions: lanes call it.
chunk unread_chunk(const std::string& path, std::uint64_t region, std::uint64_t nominal,
                   std::uint64_t total, std::uint64_t index) {
  chunk c{};
  c.info.input = 0;
  c.info.seq = index;
  c.info.index = index;
  c.info.offset = index * nominal;
  c.info.size = std::size_t(std::min(nominal, total - c.info.offset));
  c.info.last = c.info.offset + c.info.size == total;
  c.read_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // < 0: map() maps nothing
  c.read_offset = region + c.info.offset;
  c.windowed = true;
  return c;
}

// Resident kilobytes (pages in this process's page tables) of the mapping that holds `p`, from
// /proc/self/smaps; -1 if none does.
long mapping_rss_kb(const void* p) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  char line[512];
  bool inside = false;
  long rss = -1;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    // A mapping's header ("lo-hi perms ..."); its fields ("Rss:   12 kB") do not parse so.
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && std::sscanf(line, "Rss: %ld kB", &rss) == 1) break;
  }
  std::fclose(f);
  return inside ? rss : -1;
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

TEST_CASE("mapped_reads: a block's pages leave the page tables when its chunks are retired",
          "[io][mapped]") {
  temp_dir dir;
  constexpr std::uint64_t M = 1 << 20;
  const auto bytes = random_bytes(7 * M, 32);
  write_file(dir.file("f"), bytes);
  const framing fr = framing::records(1);
  // Windows of 4 chunks, released in blocks of 2: the second window has 3 chunks, its last
  // block one.
  mapped_reads maps([fr](std::size_t) { return fr; }, M, 4 * M, 2 * M);
  std::vector<chunk> cs;
  std::vector<mapped_reads::view> vs;
  for (std::uint64_t i = 0; i < 7; ++i) {
    cs.push_back(unread_chunk(dir.file("f"), 0, M, 7 * M, i));
    vs.push_back(maps.map(cs.back(), dir.file("f")));
    REQUIRE(vs.back().data);
    drop_chunk(cs.back());
  }
  REQUIRE(vs[3].data == vs[0].data + 3 * M);
  CHECK(mapping_rss_kb(vs[0].data) == 4096);  // every chunk populated
  maps.retire(cs[1].info);
  CHECK(mapping_rss_kb(vs[0].data) == 4096);  // block 0 still has chunk 0
  maps.retire(cs[3].info);
  CHECK(mapping_rss_kb(vs[0].data) == 4096);
  maps.retire(cs[0].info);
  // Block 0's pages are gone, while the window stays for chunk 2. (Where the page cache holds the
  // file in folios of 2 MiB mapped whole, as ext4 may, the kernel unmaps whole folios: a
  // neighbour's pages then fault in again when touched.)
  CHECK(mapping_rss_kb(vs[0].data) <= 2048);
  CHECK(std::memcmp(vs[2].data, bytes.data() + 2 * M, M) == 0);
  CHECK(maps.windows_live() == 2);
  // The second window: its last block has the input's last chunk alone.
  maps.retire(cs[6].info);
  const long rss = mapping_rss_kb(vs[4].data);
  CHECK(rss <= 2048);
  maps.retire(cs[4].info);
  CHECK(mapping_rss_kb(vs[4].data) == rss);  // its block waits for chunk 5
  maps.retire(cs[5].info);
  CHECK(maps.windows_live() == 1);
  maps.retire(cs[2].info);
  CHECK(maps.windows_live() == 0);
}

TEST_CASE("mapped_reads: lanes that map and retire at once see their bytes, and every window goes",
          "[io][mapped]") {
  // Four threads take the chunks of two inputs in an interleaved order, map each, check its bytes
  // and retire it: blocks are released while other threads populate and read their neighbours,
  // and a window's last retire may race a block's release (the window must outlive both).
  temp_dir dir;
  constexpr std::uint64_t K = 64 << 10;
  const std::uint64_t total = 97 * K + 300;  // 98 chunks, the last one short
  const auto a = random_bytes(total, 41), b = random_bytes(total + 128, 42);
  write_file(dir.file("a"), a);
  write_file(dir.file("b"), b);
  const framing fr = framing::records(4);
  // Windows of 8 chunks in blocks of 2 (the last window: 2 chunks, one block).
  mapped_reads maps([fr](std::size_t) { return fr; }, K, 8 * K, 2 * K);
  const std::uint64_t region = total / 4 * 4, n = (region + K - 1) / K;
  std::vector<std::pair<int, std::uint64_t>> order;
  for (std::uint64_t i = 0; i < n; ++i) order.emplace_back(0, i), order.emplace_back(1, i);
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  std::atomic<std::size_t> next{0};
  std::atomic<int> bad{0}, unmapped{0};
  const auto lane = [&] {
    for (std::size_t k; (k = next.fetch_add(1)) < order.size();) {
      const auto [in, i] = order[k];
      const std::string path = dir.file(in ? "b" : "a");
      const auto& bytes = in ? b : a;
      chunk c = unread_chunk(path, in ? 128 : 0, K, region, i);
      c.info.input = static_cast<std::size_t>(in);
      const auto v = maps.map(c, path);
      if (!v.data) ++unmapped;
      if (v.data && std::memcmp(v.data, bytes.data() + c.read_offset, c.info.size) != 0) ++bad;
      drop_chunk(c);
      maps.retire(c.info);
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(lane);
  for (auto& t : ts) t.join();
  CHECK(bad == 0);
  CHECK(unmapped == 0);
  CHECK(maps.windows_mapped() == 2 * ((n + 7) / 8));
  CHECK(maps.windows_live() == 0);
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

TEST_CASE("mapped_reads with a reader: every window goes, short last chunks read by the reader too",
          "[io][mapped]") {
  temp_dir dir;
  std::vector<source> inputs;
  std::vector<std::vector<std::byte>> data;
  // 1 MiB and 4 KiB: the first chunk comes unread (and is mapped), the short last one is read
  // by the reader (under lane_read_min); both are counted down in the file's one window.
  for (int i = 0; i < 20; ++i) {
    data.push_back(random_bytes((1 << 20) + 4096, 600 + i));
    write_file(dir.file("w" + std::to_string(i)), data.back());
    inputs.push_back({dir.file("w" + std::to_string(i))});
  }
  std::atomic<bool> on{true};
  reader_config cfg;
  cfg.chunk_size = 1 << 20;
  cfg.lane_reads = &on;
  const framing fr = framing::records(1);
  mapped_reads maps([fr](std::size_t) { return fr; }, cfg.chunk_size);
  std::atomic<int> mapped{0}, windowed{0};
  std::vector<std::string> paths;
  for (const auto& s : inputs) paths.push_back(s.path);
  auto r = run_reader(
      inputs, [fr](std::size_t) { return fr; }, 4, 1 << 20, cfg,
      [&](const chunk& c) {
        if (c.read_fd >= 0) {
          const auto v = maps.map(c, paths[c.info.input]);
          if (v.data &&
              std::memcmp(v.data, data[c.info.input].data() + c.info.offset, c.info.size) == 0)
            ++mapped;
        }
        if (c.windowed) {
          ++windowed;
          maps.retire(c.info);
        }
      });
  REQUIRE(r.error == nullptr);
  for (std::size_t i = 0; i < inputs.size(); ++i) CHECK(r.joined(i) == data[i]);
  CHECK(mapped == 20);
  CHECK(windowed == 40);
  CHECK(maps.windows_mapped() == 20);
  CHECK(maps.windows_live() == 0);  // not one left mapped until the job's end
}

// Run in a process of its own by the test below (hidden: [.]): SIGBUS was ignored before the
// handler was installed, and a fault outside every window must still end the process. The file
// (HETPIPE_TEST_SIGBUS_FILE, 8 KiB) is the parent's, which removes it: this process dies.
TEST_CASE("sigbus child: a fault outside the windows with SIGBUS ignored before",
          "[.sigbus_child]") {
  const char* path = std::getenv("HETPIPE_TEST_SIGBUS_FILE");
  REQUIRE(path);
  mapped_reads maps([](std::size_t) { return framing::records(1); }, 1 << 20);
  const int fd = ::open(path, O_RDWR);
  REQUIRE(fd >= 0);
  void* p = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  REQUIRE(::ftruncate(fd, 0) == 0);
  ::alarm(5);  // a hang ends by SIGALRM instead
  const volatile char* q = static_cast<const volatile char*>(p);
  (void)q[4096];  // past the end now: SIGBUS
  FAIL("the fault did not end the process");
}

TEST_CASE("mapped_reads: the SIGBUS handler lets faults outside its windows end the process",
          "[io][mapped]") {
  // With SIGBUS ignored (inherited across exec, e.g. `trap '' BUS`), a fault must still kill: the
  // kernel forces the default on an ignored fault, and so must the handler that replaced it.
  char self[4096] = {};
  REQUIRE(::readlink("/proc/self/exe", self, sizeof self - 1) > 0);
  temp_dir dir;
  write_file(dir.file("x"), random_bytes(8192, 5));
  const std::string env = "HETPIPE_TEST_SIGBUS_FILE=" + dir.file("x");
  char* const envp[] = {const_cast<char*>(env.c_str()), nullptr};  // the child's whole environment
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  REQUIRE(::sigaction(SIGBUS, &ign, &old) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execle(self, self, "[.sigbus_child]", static_cast<char*>(nullptr), envp);
    ::_exit(127);
  }
  ::sigaction(SIGBUS, &old, nullptr);
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGBUS);  // not SIGALRM (a hang), not an exit
}

// What the first touch of memory costs on this machine, and whether threads touching at once slow
// each other: anonymous memory (a fresh output buffer, a pool's slots) and new tmpfs pages (an
// output file written into /dev/shm). On a virtual machine the host may back a guest page only
// when the guest first touches it; a guest page freed and taken again is already backed. Each
// case runs twice in one process: round 1 gets memory no one here touched before, round 2 (after
// round 1 gave it back) most likely the same pages again; with one thread, round 3 comes after a
// pause of 3 s, in which a kernel with free page reporting (a virtio balloon: it prints the order
// reported) hands whole free blocks back to the host. On the 2-core box (order 9, 2 MiB blocks) a
// huge page's first touch ran at 0.5 GB/s after such a pause and 12 GB/s without; 4 KiB pages at
// 2.6 either way.
//   g++ -O2 -std=c++20 -pthread bench/touch.cpp -o /tmp/touch && /tmp/touch [MiB] [DIR]
// MiB per thread (default 256); DIR for the file case (default /dev/shm). Thread counts 1 and
// nproc. Prints one line per case and round: GB/s per thread (median thread) and in all.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

double since(clk::time_point t) {
  return std::chrono::duration<double>(clk::now() - t).count();
}

// Runs body(i) on n threads started together; returns each thread's seconds and the wall time.
template <class Body>
std::pair<std::vector<double>, double> on_threads(unsigned n, Body body) {
  std::vector<double> secs(n);
  std::vector<std::thread> ts;
  const auto t0 = clk::now();
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      const auto t = clk::now();
      body(i);
      secs[i] = since(t);
    });
  for (auto& t : ts) t.join();
  return {secs, since(t0)};
}

void report(const char* what, unsigned n, int round, std::size_t bytes,
            std::pair<std::vector<double>, double> r) {
  std::sort(r.first.begin(), r.first.end());
  const double med = r.first[r.first.size() / 2];
  std::printf("%-34s threads %2u round %d: %6.2f GB/s per thread (median), %7.2f GB/s in all\n",
              what, n, round, static_cast<double>(bytes) / med / 1e9,
              static_cast<double>(bytes) * n / r.second / 1e9);
}

void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const std::string dir = argc > 2 ? argv[2] : "/dev/shm";
  const std::size_t bytes = mib << 20, page = 4096;
  const unsigned all = std::max(1u, std::thread::hardware_concurrency());
  std::vector<unsigned> counts{1};
  if (all > 1) counts.push_back(all);

  // Anonymous memory: mmap, write one byte per page (the kernel zeroes each page), munmap; then
  // the same with transparent huge pages asked for (MADV_HUGEPAGE: one fault per 2 MiB where the
  // system's setting is "madvise" or "always").
  if (FILE* f = std::fopen("/sys/module/page_reporting/parameters/page_reporting_order", "r")) {
    int order = -1;
    if (std::fscanf(f, "%d", &order) == 1)
      std::printf("free page reporting: blocks of order %d (%zu KiB)\n", order,
                  std::size_t{4} << order);
    std::fclose(f);
  } else {
    std::printf("free page reporting: none\n");
  }
  for (bool huge : {false, true})
    for (unsigned n : counts)
      for (int round = 1; round <= (n == 1 ? 3 : 2); ++round) {
        if (round == 3) std::this_thread::sleep_for(std::chrono::seconds(3));
        auto r = on_threads(n, [&](unsigned) {
          void* p =
              ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
          if (p == MAP_FAILED) die("mmap");
          if (huge) (void)::madvise(p, bytes, MADV_HUGEPAGE);
          auto* b = static_cast<volatile char*>(p);
          for (std::size_t o = 0; o < bytes; o += page) b[o] = 1;
          ::munmap(p, bytes);
        });
        report(huge ? "anonymous, MADV_HUGEPAGE" : "anonymous, first write per page", n, round,
               bytes, r);
      }
  // Memory this thread touched before, written again (memset): what a reused buffer costs.
  for (unsigned n : counts) {
    std::vector<std::vector<char>> mem(n);
    for (auto& m : mem) m.assign(bytes, 1);
    auto r = on_threads(n, [&](unsigned i) { std::memset(mem[i].data(), 2, bytes); });
    report("anonymous, touched before (memset)", n, 1, bytes, r);
  }
  // New files: pwrite in 64 MiB pieces from a buffer touched beforehand, close, unlink.
  std::vector<std::vector<char>> src(all);
  for (auto& s : src) s.assign(std::min<std::size_t>(bytes, std::size_t{64} << 20), 7);
  for (unsigned n : counts)
    for (int round = 1; round <= 2; ++round) {
      auto r = on_threads(n, [&](unsigned i) {
        const std::string path =
            dir + "/hetpipe-touch-" + std::to_string(::getpid()) + "-" + std::to_string(i);
        const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) die(path.c_str());
        for (std::size_t o = 0; o < bytes; o += src[i].size()) {
          const std::size_t len = std::min(src[i].size(), bytes - o);
          if (::pwrite(fd, src[i].data(), len, static_cast<off_t>(o)) != static_cast<ssize_t>(len))
            die("pwrite");
        }
        ::close(fd);
        ::unlink(path.c_str());
      });
      report(("new file in " + dir).c_str(), n, round, bytes, r);
    }
}

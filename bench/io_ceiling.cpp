// io_ceiling: what the machine's page cache allows, outside hetpipe (no libuv, no engine), so the
// read-only and copy ceilings of `hetpipe bench` can be told apart from the machine's own limits.
//
//   io_ceiling read FILE THREADS CHUNK SLOTS [ALLOC]
//                                              THREADS threads pread CHUNK bytes at a time, each
//                                              into the next of SLOTS buffers of a shared pool
//                                              (SLOTS 0: one buffer per thread, reused: it stays
//                                              in the core's cache, as dd's does). ALLOC: anon
//                                              (mmap, huge pages advised, mlock), and with
//                                              -DWITH_CUDA hostalloc (cudaHostAlloc) or register
//                                              (anon, then cudaHostRegister)
//   io_ceiling write FILE BYTES THREADS MODE   writes BYTES to a new FILE with THREADS threads,
//                                              then fsync; MODE: pwrite (disjoint ranges),
//                                              falloc-pwrite (fallocate first), mmap (ftruncate,
//                                              then memcpy into a shared mapping), falloc-mmap
//
// Prints one line: what, GB/s (10^9 bytes per second). Build: g++ -O2 -pthread io_ceiling.cpp
// (CUDA allocators: add -DWITH_CUDA -I$CUDA/include -L$CUDA/lib64 -lcudart).
// Not part of the library: a measuring tool for bench/RESULTS.md.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#if WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

std::size_t size_arg(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  switch (*end) {
    case 'K':
      v *= 1024;
      break;
    case 'M':
      v *= 1024 * 1024;
      break;
    case 'G':
      v *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return static_cast<std::size_t>(v);
}

void* pool(std::size_t bytes, const std::string& alloc) {
#if WITH_CUDA
  if (alloc == "hostalloc") {
    void* p = nullptr;
    if (const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable); e != cudaSuccess) {
      std::fprintf(stderr, "cudaHostAlloc: %s\n", cudaGetErrorString(e));
      std::exit(1);
    }
    std::memset(p, 0, bytes);
    return p;
  }
#endif
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
#if WITH_CUDA
  if (alloc == "register") {
    if (const cudaError_t e = cudaHostRegister(p, bytes, cudaHostRegisterPortable);
        e != cudaSuccess) {
      std::fprintf(stderr, "cudaHostRegister: %s\n", cudaGetErrorString(e));
      std::exit(1);
    }
    return p;
  }
#endif
  if (alloc != "anon") {
    std::fprintf(stderr, "io_ceiling: unknown allocator %s\n", alloc.c_str());
    std::exit(2);
  }
  mlock(p, bytes);  // like pinned memory, where allowed
  return p;
}

int read_ceiling(const char* file, int threads, std::size_t chunk, std::size_t slots,
                 const std::string& alloc) {
  const int fd = open(file, O_RDONLY);
  if (fd < 0) die(file);
  struct stat st {};
  fstat(fd, &st);
  const std::size_t size = static_cast<std::size_t>(st.st_size);
  const std::size_t n = (size + chunk - 1) / chunk;
  const std::size_t buffers = slots ? slots : static_cast<std::size_t>(threads);
  auto* base = static_cast<char*>(pool(buffers * chunk, alloc));
  std::atomic<std::size_t> next{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) {
        char* dst = base + (slots ? i % slots : static_cast<std::size_t>(t)) * chunk;
        const std::size_t off = i * chunk, len = std::min(chunk, size - off);
        if (pread(fd, dst, len, static_cast<off_t>(off)) != static_cast<ssize_t>(len)) die("pread");
      }
    });
  }
  for (auto& t : ts) t.join();
  const double s = seconds_since(t0);
  std::printf("read %d threads, chunk %zu KiB, %s, %s: %.2f GB/s\n", threads, chunk >> 10,
              slots ? (std::to_string(slots) + " slots").c_str() : "a buffer per thread",
              alloc.c_str(), static_cast<double>(size) / s / 1e9);
  close(fd);
  return 0;
}

int write_ceiling(const char* file, std::size_t bytes, int threads, const std::string& mode) {
  if (mode != "pwrite" && mode != "falloc-pwrite" && mode != "mmap" && mode != "falloc-mmap") {
    std::fprintf(stderr, "io_ceiling: unknown write mode %s\n", mode.c_str());
    return 2;
  }
  constexpr std::size_t block = std::size_t{4} << 20;
  std::vector<char> src(block);
  for (std::size_t i = 0; i < block; ++i) src[i] = static_cast<char>(i * 2654435761u >> 13);
  unlink(file);
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(file);
  const bool falloc = mode == "falloc-pwrite" || mode == "falloc-mmap";
  const bool map = mode == "mmap" || mode == "falloc-mmap";
  if (falloc && fallocate(fd, 0, 0, static_cast<off_t>(bytes)) != 0) die("fallocate");
  if (!falloc && map && ftruncate(fd, static_cast<off_t>(bytes)) != 0) die("ftruncate");
  char* m = nullptr;
  if (map) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    m = static_cast<char*>(p);
  }
  const std::size_t blocks = (bytes + block - 1) / block;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < blocks;) {
        const std::size_t off = i * block, len = std::min(block, bytes - off);
        if (m) {
          std::memcpy(m + off, src.data(), len);
        } else if (pwrite(fd, src.data(), len, static_cast<off_t>(off)) !=
                   static_cast<ssize_t>(len)) {
          die("pwrite");
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  if (m && msync(m, bytes, MS_SYNC) != 0) die("msync");
  if (fsync(fd) != 0) die("fsync");
  if (m) munmap(m, bytes);
  close(fd);
  const double s = seconds_since(t0);
  std::printf("write %s, %d threads: %.2f GB/s\n", mode.c_str(), threads,
              static_cast<double>(bytes) / s / 1e9);
  unlink(file);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if ((argc == 6 || argc == 7) && std::strcmp(argv[1], "read") == 0)
    return read_ceiling(argv[2], std::atoi(argv[3]), size_arg(argv[4]), size_arg(argv[5]),
                        argc == 7 ? argv[6] : "anon");
  if (argc == 6 && std::strcmp(argv[1], "write") == 0)
    return write_ceiling(argv[2], size_arg(argv[3]), std::atoi(argv[4]), argv[5]);
  std::fprintf(
      stderr,
      "usage: io_ceiling read FILE THREADS CHUNK SLOTS [anon|hostalloc|register] | write FILE "
      "BYTES THREADS "
      "pwrite|falloc-pwrite|mmap|falloc-mmap\n");
  return 2;
}

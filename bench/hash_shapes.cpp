// hash_shapes: BLAKE3 of one file (hot page cache) in three shapes of reading and hashing, outside
// hetpipe's engine, to tell which shape a machine rewards before the engine is changed:
//
//   pool R W S   R threads pread CHUNK-byte pieces into S shared slots, W other threads hash
//                them (the engine's shape: libuv's threads read, CPU lanes hash)
//   local T      T threads each pread a piece into a buffer of their own, then hash it there
//                (the piece is still in the core's cache when it is hashed)
//   mmap T       T threads hash pieces straight from one shared mapping of the file (b3sum's
//                shape: no copy, but page faults)
//   window T W   as mmap, from windows of W bytes each mapped by the first thread that needs
//                it and unmapped after its last piece, every piece populated first
//                (MADV_POPULATE_READ): the engine's --reads map (io/mapped.hpp)
//   mapchunk T   each piece mapped, populated, hashed and unmapped on its own (a TLB shootdown
//                per piece); mapchunk-fault leaves the pages to faults
//
//   hash_shapes FILE CHUNK SHAPE ARGS...   e.g. hash_shapes big.bin 1M pool 16 8 44
//
// Prints one line: the shape, GB/s (10^9 bytes per second, best of 3) and the digest, which must
// equal `b3sum FILE`'s. Not part of the library: a measuring tool for bench/RESULTS.md. Build:
//   g++ -O2 -std=c++20 -pthread -I. bench/hash_shapes.cpp build/host/libhetpipe_host.a
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/blake3.hpp"

namespace b3 = hetpipe::host::blake3;

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

std::size_t size_arg(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  const double unit = *end == 'K'   ? 1024.0
                      : *end == 'M' ? 1048576.0
                      : *end == 'G' ? 1073741824.0
                                    : 1;
  return static_cast<std::size_t>(v * unit);
}

struct job {
  int fd = -1;
  std::size_t size = 0, chunk = 0, pieces = 0;
  std::vector<b3::cv> cvs;  // piece i's chaining value
  b3::key_words key = b3::iv_key();

  void hash_piece(std::size_t i, const std::uint8_t* data) {
    const std::size_t off = i * chunk, len = std::min(chunk, size - off);
    cvs[i] = b3::piece_cv(data, len, off / b3::chunk_len, key, 0);
  }
  void read_piece(std::size_t i, void* dst) const {
    const std::size_t off = i * chunk, len = std::min(chunk, size - off);
    if (pread(fd, dst, len, static_cast<off_t>(off)) != static_cast<ssize_t>(len)) die("pread");
  }
  std::string digest() const {
    b3::tree_merger m(key, 0);
    for (std::size_t i = 0; i < pieces; ++i)
      m.push(cvs[i], (std::min(chunk, size - i * chunk) + b3::chunk_len - 1) / b3::chunk_len);
    std::uint8_t out[32];
    b3::root_bytes(m.finish(), 0, out, 32);
    std::string hex;
    for (std::uint8_t c : out) {
      static const char d[] = "0123456789abcdef";
      hex += d[c >> 4];
      hex += d[c & 15];
    }
    return hex;
  }
};

// Allocated and touched once, before the clock starts (the engine's pool is, too).
std::uint8_t* buffers(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  std::memset(p, 0, bytes);
  return static_cast<std::uint8_t*>(p);
}

void run_pool(job& j, int readers, int workers, std::size_t slots) {
  std::uint8_t* base = buffers(slots * j.chunk);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::size_t> free_slots;
  for (std::size_t s = 0; s < slots; ++s) free_slots.push_back(slots - 1 - s);
  std::deque<std::pair<std::size_t, std::size_t>> ready;  // (piece, slot)
  std::size_t hashed = 0;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int r = 0; r < readers; ++r)
    ts.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < j.pieces;) {
        std::size_t s;
        {
          std::unique_lock l(mu);
          cv.wait(l, [&] { return !free_slots.empty(); });
          s = free_slots.back();  // the most recently freed slot: warm, as the engine's pool
          free_slots.pop_back();
        }
        j.read_piece(i, base + s * j.chunk);
        {
          std::lock_guard l(mu);
          ready.emplace_back(i, s);
        }
        cv.notify_all();
      }
    });
  for (int w = 0; w < workers; ++w)
    ts.emplace_back([&] {
      for (;;) {
        std::pair<std::size_t, std::size_t> p;
        {
          std::unique_lock l(mu);
          cv.wait(l, [&] { return !ready.empty() || hashed == j.pieces; });
          if (ready.empty()) return;
          p = ready.front();
          ready.pop_front();
        }
        j.hash_piece(p.first, base + p.second * j.chunk);
        {
          std::lock_guard l(mu);
          free_slots.push_back(p.second);
          ++hashed;
        }
        cv.notify_all();
      }
    });
  for (auto& t : ts) t.join();
  munmap(base, slots * j.chunk);
}

void run_local(job& j, int threads) {
  std::uint8_t* base = buffers(static_cast<std::size_t>(threads) * j.chunk);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::uint8_t* mine = base + static_cast<std::size_t>(t) * j.chunk;
      for (std::size_t i; (i = next.fetch_add(1)) < j.pieces;) {
        j.read_piece(i, mine);
        j.hash_piece(i, mine);
      }
    });
  for (auto& t : ts) t.join();
  munmap(base, static_cast<std::size_t>(threads) * j.chunk);
}

void run_mmap(job& j, int threads) {  // the mapping is part of the timed work, as in b3sum
  void* p = mmap(nullptr, j.size, PROT_READ, MAP_SHARED, j.fd, 0);
  if (p == MAP_FAILED) die("mmap");
  const auto* m = static_cast<const std::uint8_t*>(p);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < j.pieces;) j.hash_piece(i, m + i * j.chunk);
    });
  for (auto& t : ts) t.join();
  munmap(p, j.size);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

// Each piece mapped on its own (mmap, MADV_POPULATE_READ, hash, munmap): a TLB shootdown per
// piece. populate = false leaves the pages to faults.
void run_mapchunk(job& j, int threads, bool populate) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < j.pieces;) {
        const std::size_t off = i * j.chunk, len = std::min(j.chunk, j.size - off);
        void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, j.fd, static_cast<off_t>(off));
        if (p == MAP_FAILED) die("mmap");
        if (populate && madvise(p, len, MADV_POPULATE_READ) != 0) die("madvise");
        j.hash_piece(i, static_cast<const std::uint8_t*>(p));
        munmap(p, len);
      }
    });
  for (auto& t : ts) t.join();
}

// Windows of WINDOW bytes (a multiple of the piece), each mapped by the first thread that needs
// it and unmapped by the one that hashes its last piece; each piece populated before hashing.
void run_window(job& j, int threads, std::size_t window) {
  const std::size_t per = window / j.chunk, nwin = (j.pieces + per - 1) / per;
  std::vector<std::atomic<std::uint8_t*>> maps(nwin);
  std::vector<std::atomic<std::size_t>> left(nwin);
  for (std::size_t w = 0; w < nwin; ++w) left[w] = std::min(per, j.pieces - w * per);
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < j.pieces;) {
        const std::size_t w = i / per, wbeg = w * window;
        const std::size_t wlen = std::min(window, j.size - wbeg);
        std::uint8_t* m = maps[w].load();
        if (!m) {
          std::lock_guard l(mu);
          if (!(m = maps[w].load())) {
            void* p = mmap(nullptr, wlen, PROT_READ, MAP_SHARED, j.fd, static_cast<off_t>(wbeg));
            if (p == MAP_FAILED) die("mmap");
            maps[w] = m = static_cast<std::uint8_t*>(p);
          }
        }
        const std::size_t off = i * j.chunk, len = std::min(j.chunk, j.size - off);
        if (madvise(m + (off - wbeg), len, MADV_POPULATE_READ) != 0) die("madvise");
        j.hash_piece(i, m + (off - wbeg));
        if (left[w].fetch_sub(1) == 1) munmap(m, wlen);
      }
    });
  for (auto& t : ts) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: hash_shapes FILE CHUNK pool READERS WORKERS SLOTS | local THREADS | "
                 "mmap THREADS | window THREADS BYTES | mapchunk[-fault] THREADS\n");
    return 2;
  }
  job j;
  j.fd = open(argv[1], O_RDONLY);
  if (j.fd < 0) die(argv[1]);
  struct stat st {};
  if (fstat(j.fd, &st) != 0) die("fstat");
  j.size = static_cast<std::size_t>(st.st_size);
  j.chunk = size_arg(argv[2]);
  // Pieces must be subtrees of the file's tree: a power-of-two number of BLAKE3 chunks.
  if (j.chunk < b3::chunk_len || (j.chunk & (j.chunk - 1)) != 0 || j.size <= j.chunk) {
    std::fprintf(stderr, "hash_shapes: CHUNK must be a power of two >= 1K, below the file size\n");
    return 2;
  }
  j.pieces = (j.size + j.chunk - 1) / j.chunk;
  j.cvs.resize(j.pieces);
  const std::string shape = argv[3];
  std::string what;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    if (shape == "pool" && argc == 7) {
      run_pool(j, std::atoi(argv[4]), std::atoi(argv[5]), size_arg(argv[6]));
      what = std::string("pool: ") + argv[4] + " readers, " + argv[5] + " hashers, " + argv[6] +
             " slots";
    } else if (shape == "local" && argc == 5) {
      run_local(j, std::atoi(argv[4]));
      what = std::string("local: ") + argv[4] + " threads read and hash";
    } else if (shape == "mmap" && argc == 5) {
      run_mmap(j, std::atoi(argv[4]));
      what = std::string("mmap: ") + argv[4] + " threads hash a mapping";
    } else if ((shape == "mapchunk" || shape == "mapchunk-fault") && argc == 5) {
      run_mapchunk(j, std::atoi(argv[4]), shape == "mapchunk");
      what = shape + ": " + argv[4] + " threads map each piece";
    } else if (shape == "window" && argc == 6) {
      run_window(j, std::atoi(argv[4]), size_arg(argv[5]));
      what = std::string("window: ") + argv[4] + " threads, windows of " + argv[5];
    } else {
      std::fprintf(stderr, "hash_shapes: bad shape arguments\n");
      return 2;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(j.size) / s / 1e9);
  }
  std::printf("%s, chunk %zu KiB: %.2f GB/s  %s\n", what.c_str(), j.chunk >> 10, best,
              j.digest().c_str());
  close(j.fd);
  return 0;
}

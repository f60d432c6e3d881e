#include "io/mapped.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

#include "io/uv_util.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL, and faults do the work
#endif

namespace hetpipe::io {

namespace {

// The live windows, for the SIGBUS handler: read there without locks, so plain atomics in a fixed
// array. A window that finds no free entry is not mapped (its chunks are read instead).
struct guard {
  std::atomic<std::uintptr_t> begin{0}, end{0};
  std::atomic<bool> damaged{false};
};
std::array<guard, 1024> guards;
std::mutex guards_mu;  // claiming and freeing entries (not the handler)
struct sigaction previous_bus {};
std::once_flag handler_once;

std::uintptr_t page_size() noexcept {  // async-signal-safe (read before main)
  return static_cast<std::uintptr_t>(detail::page_size());
}

void on_sigbus(int sig, siginfo_t* si, void* ctx) {
  const int saved_errno = errno;
  struct restore_errno {
    int e;
    ~restore_errno() { errno = e; }
  } restore{saved_errno};
  const auto a = reinterpret_cast<std::uintptr_t>(si->si_addr);
  const bool fault = si->si_code > 0;  // raised by a fault, not sent
  if (fault) {
    for (auto& g : guards) {
      const std::uintptr_t b = g.begin.load(std::memory_order_acquire);
      if (b == 0 || a < b || a >= g.end.load(std::memory_order_acquire)) continue;
      // A page of the file that is gone: zeros in its place, so the work can run to its end, and
      // the window marked for check().
      void* page = reinterpret_cast<void*>(a & ~(page_size() - 1));
      if (::mmap(page, page_size(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
          MAP_FAILED) {
        g.damaged.store(true, std::memory_order_release);
        return;
      }
      break;
    }
  }
  // Not ours: what was there before.
  if (previous_bus.sa_flags & SA_SIGINFO) {
    if (previous_bus.sa_sigaction) previous_bus.sa_sigaction(sig, si, ctx);
    return;
  }
  if (previous_bus.sa_handler == SIG_IGN && !fault) return;
  if (previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler != SIG_IGN) {
    previous_bus.sa_handler(sig);
    return;
  }
  // The default action: restore it; a fault then happens again and ends the process as it would
  // have (the kernel does not let an ignored SIGBUS from a fault pass either), and a sent signal
  // is sent again.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
  if (!fault) ::raise(sig);
}

void install_handler() {
  std::call_once(handler_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &previous_bus);
  });
}

guard* claim_guard(std::uintptr_t b, std::uintptr_t e) {
  std::lock_guard lk(guards_mu);
  for (auto& g : guards)
    if (g.begin.load(std::memory_order_relaxed) == 0) {
      g.damaged.store(false, std::memory_order_relaxed);
      g.end.store(e, std::memory_order_relaxed);
      g.begin.store(b, std::memory_order_release);
      return &g;
    }
  return nullptr;
}

void free_guard(guard* g) {
  std::lock_guard lk(guards_mu);
  g->begin.store(0, std::memory_order_release);
  g->end.store(0, std::memory_order_release);
}

}  // namespace

// A window: its mapping (none if mmap failed or no guard was free: its chunks are read) and the
// chunks it still waits for. Only touched under mapped_reads::mu_, but for its bytes.
struct mapped_reads::window {
  const std::byte* base = nullptr;  // the mapping, from file offset `start`
  std::size_t length = 0;
  std::uint64_t start = 0;
  std::uint64_t region = 0;  // the file offset of the input's chunk offset 0
  // Chunks still to retire, counted down from the window's share, and from each release block's;
  // the input's last chunk also takes off the chunks its (short) window and block do not have.
  std::int64_t left = 0;
  std::vector<std::int64_t> block_left;
  int releasing = 0;  // blocks being released outside the lock: the window stays till they are done
  guard* g = nullptr;

  ~window() {
    if (g) free_guard(g);
    if (base) ::munmap(const_cast<std::byte*>(base), length);
  }
};

mapped_reads::mapped_reads(std::function<framing(std::size_t)> frame, std::size_t chunk_size,
                           std::uint64_t window_bytes, std::uint64_t release_bytes)
    : frame_(std::move(frame)),
      chunk_size_(chunk_size),
      window_bytes_(window_bytes),
      release_bytes_(release_bytes) {
  install_handler();
}

mapped_reads::~mapped_reads() = default;

mapped_reads::place mapped_reads::locate(std::size_t input, const framing& fr,
                                         std::uint64_t index) const {
  place p;
  p.nominal = nominal_chunk(fr, chunk_size_);
  p.per = std::max<std::uint64_t>(1, window_bytes_ / p.nominal);
  p.per_block = std::clamp<std::uint64_t>(release_bytes_ / p.nominal, 1, p.per);
  p.key = {input, index / p.per};
  return p;
}

mapped_reads::window& mapped_reads::find_or_add(const place& p, bool* added) {
  auto [it, fresh] = windows_.try_emplace(p.key);
  if (fresh) {
    it->second = std::make_unique<window>();
    window& w = *it->second;
    w.left = static_cast<std::int64_t>(p.per);
    w.block_left.assign((p.per + p.per_block - 1) / p.per_block,
                        static_cast<std::int64_t>(p.per_block));
    w.block_left.back() =
        static_cast<std::int64_t>(p.per - (w.block_left.size() - 1) * p.per_block);
  }
  if (added) *added = fresh;
  return *it->second;
}

bool mapped_reads::aligned(const framing& fr, std::uint64_t offset) {
  const std::uint64_t rec = std::max<std::uint64_t>(1, fr.record_size);
  return offset % std::min<std::uint64_t>(8, rec & (~rec + 1)) == 0;
}

mapped_reads::view mapped_reads::map(const chunk& c, const std::string& path) {
  const framing fr = frame_(c.info.input);
  if (c.read_fd < 0 || !aligned(fr, c.read_offset)) return {};  // a chunk further off is read
  const place p = locate(c.info.input, fr, c.info.index);
  window* w = nullptr;
  {
    std::lock_guard lk(mu_);
    bool fresh = false;
    w = &find_or_add(p, &fresh);
    if (fresh) {
      // Its file range: whole chunks, from the page its first chunk starts in.
      const std::uint64_t region = c.read_offset - c.info.offset;
      const std::uint64_t first = region + p.key.second * p.per * p.nominal;
      const std::uint64_t start = first & ~std::uint64_t(page_size() - 1);
      std::uint64_t end = first + p.per * p.nominal;
      struct stat st {};
      if (::fstat(c.read_fd, &st) == 0)
        end = std::min<std::uint64_t>(end, std::uint64_t(st.st_size));
      if (end > start) {
        void* m = ::mmap(nullptr, end - start, PROT_READ, MAP_SHARED, c.read_fd, off_t(start));
        if (m != MAP_FAILED) {
          const auto b = reinterpret_cast<std::uintptr_t>(m);
          w->g = claim_guard(b, b + (end - start));
          if (w->g) {
            w->base = static_cast<const std::byte*>(m);
            w->length = end - start;
            w->start = start;
            w->region = region;
            ++mapped_;
          } else {
            ::munmap(m, end - start);
          }
        }
      }
    }
  }
  if (!w->base) return {};  // retire() still counts the chunk down
  if (c.read_offset + c.info.size > w->start + w->length)
    std::rethrow_exception(detail::shrank(path));
  const std::byte* data = w->base + (c.read_offset - w->start);
  // The chunk's pages into the page tables in one call (not a fault per 16 pages), and a clean
  // error for pages past the file's end.
  const auto p0 = reinterpret_cast<std::uintptr_t>(data) & ~(page_size() - 1);
  const std::size_t len = reinterpret_cast<std::uintptr_t>(data) + c.info.size - p0;
  static std::atomic<bool> no_populate{false};
  if (c.info.size > 0 && !no_populate.load(std::memory_order_relaxed)) {
    int r;
    do r = ::madvise(reinterpret_cast<void*>(p0), len, MADV_POPULATE_READ);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno == EFAULT) std::rethrow_exception(detail::shrank(path));
    if (r != 0 && errno == EINVAL) no_populate.store(true, std::memory_order_relaxed);
  }
  return {data, w};
}

void mapped_reads::check(const view& v, const std::string& path) {
  if (v.win && v.win->g && v.win->g->damaged.load(std::memory_order_acquire))
    std::rethrow_exception(detail::shrank(path));
}

void mapped_reads::retire(const chunk_info& info) noexcept {
  const place p = locate(info.input, frame_(info.input), info.index);
  std::unique_ptr<window> gone;  // unmapped outside the lock
  window* release = nullptr;     // its block [lo, hi) of the file leaves the page tables
  std::uint64_t lo = 0, hi = 0;
  {
    std::lock_guard lk(mu_);
    window& w = find_or_add(p);  // a window no lane mapped still counts its chunks
    const std::uint64_t k = info.index % p.per, b = k / p.per_block;
    const std::uint64_t block_end = std::min(p.per, (b + 1) * p.per_block);  // in the window
    w.left -= 1;
    w.block_left[b] -= 1;
    if (info.last) {
      w.left -= static_cast<std::int64_t>(p.per - (k + 1));
      w.block_left[b] -= static_cast<std::int64_t>(block_end - (k + 1));
    }
    if (w.block_left[b] == 0 && w.base) {
      // The block's whole pages (those it shares with a neighbour block go with the window).
      const std::uint64_t pg = page_size();
      const std::uint64_t first = p.key.second * p.per + b * p.per_block;
      const std::uint64_t from = w.region + first * p.nominal;
      const std::uint64_t to = w.region + (first + (block_end - b * p.per_block)) * p.nominal;
      lo = std::max(w.start, (from + pg - 1) & ~(pg - 1));
      hi = std::min(w.start + w.length, to & ~(pg - 1));
      if (hi > lo) {
        release = &w;
        ++w.releasing;
      }
    }
    if (w.left == 0 && w.releasing == 0) gone = take(p.key);
  }
  if (!release) return;
  ::madvise(const_cast<std::byte*>(release->base + (lo - release->start)), hi - lo, MADV_DONTNEED);
  std::lock_guard lk(mu_);
  if (--release->releasing == 0 && release->left == 0) gone = take(p.key);
}

std::unique_ptr<mapped_reads::window> mapped_reads::take(
    const std::pair<std::size_t, std::uint64_t>& key) {
  auto it = windows_.find(key);
  std::unique_ptr<window> w = std::move(it->second);
  windows_.erase(it);
  return w;
}

std::uint64_t mapped_reads::windows_mapped() const {
  std::lock_guard lk(mu_);
  return mapped_;
}

std::size_t mapped_reads::windows_live() const {
  std::lock_guard lk(mu_);
  return windows_.size();
}

}  // namespace hetpipe::io

// Output buffers of a transform: once written, an output's vector comes back here, and a later
// chunk's output goes into one, memory that is already mapped. A fresh 4 MiB vector costs 1024
// page faults and a zero fill in the kernel (about an eighth of `encrypt`'s time on the 2-core
// box, measured with perf); a fresh 64 MiB image output costs 16 384 of them, and its munmap.
#pragma once

#include <cstddef>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>

#include "io/slot_pool.hpp"

namespace hetpipe::detail {

class buffer_pool {
 public:
  // Vectors smaller than this are not kept: malloc reuses such memory by itself, and a file's
  // empty prologue piece (capacity 0) must not stand in for an output buffer.
  static constexpr std::size_t min_kept = std::size_t{64} << 10;

  explicit buffer_pool(std::size_t limit) : limit_(limit) {}

  // An empty vector for an output of about `hint` bytes (the input chunk's size: an output may
  // be smaller, RGB to gray, or larger, an upscale): the smallest kept one that holds `hint`
  // bytes, else the largest kept one, else a new one (fresh(hint)).
  std::vector<std::byte> take(std::size_t hint) {
    std::unique_lock lock(mutex_);
    if (free_.empty()) {
      lock.unlock();
      return fresh(hint);
    }
    auto it = free_.lower_bound(hint);
    if (it == free_.end()) it = std::prev(it);
    std::vector<std::byte> v = std::move(it->second);
    free_.erase(it);
    kept_ -= v.capacity();
    return v;
  }

  // Keeps v's memory, at most `limit` bytes of capacity in all; what does not fit, or is too
  // small to matter, is freed by the caller.
  void give(std::vector<std::byte>&& v) {
    v.clear();
    const std::size_t cap = v.capacity();
    if (cap < min_kept) return;
    std::lock_guard lock(mutex_);
    if (kept_ + cap > limit_) return;
    free_.emplace(cap, std::move(v));
    kept_ += cap;
  }

  // A new empty vector. Where huge pages pay (io::huge_pages_pay), one of at least fresh_min
  // bytes comes with room for `hint` bytes and a little more (age adds 16 bytes to each 64 KiB),
  // in memory not yet touched and advised MADV_HUGEPAGE: its first writes fault 2 MiB at a time.
  // A fresh 64 MiB image output took 16 384 faults and its munmap as many page-table entries: 4
  // x 8192^2 PGMs through gray,blur:sigma=2,sobel on one lane, 66 794 faults against 3 430, 449
  // against 387 ms (median of 15, back-to-back runs on the 2-core box, where huge pages were
  // then warm; after a pause they are not there, which is why huge_pages_pay says no there).
  // `pay`: the machine's answer unless a test gives one.
  static constexpr std::size_t fresh_min = std::size_t{8} << 20;
  static std::vector<std::byte> fresh(std::size_t hint, bool pay = io::huge_pages_pay()) {
    std::vector<std::byte> v;
    if (hint < fresh_min || !pay) return v;
    v.reserve(hint + hint / 1024 + 4096);
    io::advise_huge_pages(v.data(), v.capacity());
    return v;
  }

  std::size_t kept_bytes() const {
    std::lock_guard lock(mutex_);
    return kept_;
  }

 private:
  mutable std::mutex mutex_;
  std::multimap<std::size_t, std::vector<std::byte>> free_;  // by capacity
  std::size_t kept_ = 0;
  const std::size_t limit_;
};

}  // namespace hetpipe::detail

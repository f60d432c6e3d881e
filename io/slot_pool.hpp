// A fixed pool of equal-size host buffers ("slots"), allocated once and reused for every chunk, so
// memory does not grow with the input. Ordinary anonymous memory: GPU lanes page-lock the slots
// they copy from themselves (the engine's pin_slot), so io/ never sees a CUDA header.
//
//   hetpipe::io::slot_pool pool(4, 1 << 20);
//   unsigned s = pool.acquire();       // pool.available() == 3
//   std::byte* p = pool.data(s);       // 1 MiB, page-aligned
//   pool.release(s);                   // pool.available() == 4; the listener runs
#pragma once

#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace hetpipe::io {

// Whether new memory should ask for transparent huge pages (MADV_HUGEPAGE): one fault and one
// clearing per 2 MiB instead of per 4 KiB page. Not on a virtual machine whose balloon reports
// free memory to its host (free_pages_go_to_host): the host takes back each 2 MiB block freed a
// few seconds ago, so a huge page's first touch waits for the host (2-core box, bench/touch.cpp:
// 0.5-0.6 GB/s after a pause of 3 s, 9-12 GB/s without one; 4 KiB pages 2.2-2.7 GB/s either
// way). Read once; the environment variable HETPIPE_HUGE_PAGES=0 or 1 gives the answer instead.
bool huge_pages_pay();
// Whether a virtio balloon under `sys` (the sysfs root; another folder in tests) offers free page
// reporting (feature bit 5).
bool free_pages_go_to_host(const std::filesystem::path& sys);
// MADV_HUGEPAGE over the 2 MiB-aligned inside of [p, p + bytes) when `pay` (by default where
// huge_pages_pay()): advice only, for memory not yet touched.
void advise_huge_pages(void* p, std::size_t bytes, bool pay = huge_pages_pay()) noexcept;

class slot_pool {
 public:
  // One mapping of count × stride bytes of anonymous memory (advise_huge_pages), stride =
  // slot_bytes rounded up to the system's page size, so every slot is page-aligned; faulted in now
  // when `prefault` (its page faults then belong to the set-up), else left untouched: a page costs
  // its fault only if a slot ever holds bytes there (CPU lanes that map their chunks leave their
  // slots empty). Throws std::bad_alloc when the mapping fails, std::invalid_argument for count ==
  // 0 or slot_bytes == 0.
  slot_pool(unsigned count, std::size_t slot_bytes, bool prefault = true);
  ~slot_pool();
  slot_pool(const slot_pool&) = delete;
  slot_pool& operator=(const slot_pool&) = delete;

  unsigned count() const { return count_; }
  std::size_t slot_bytes() const { return slot_bytes_; }
  std::byte* data(unsigned slot) const { return base_ + std::size_t(slot) * stride_; }
  std::size_t stride() const { return stride_; }  // data(s + 1) - data(s): page-aligned
  std::size_t bytes() const { return std::size_t(count_) * stride_; }  // data(0) onwards, in all

  std::optional<unsigned> try_acquire();  // thread-safe; nullopt when every slot is in use
  unsigned acquire();                     // blocks until a slot is free
  // Thread-safe, from any thread. Then calls the listener (outside the pool's lock). Releasing a
  // slot that is not in use throws std::logic_error.
  void release(unsigned slot);
  // One listener at a time; io::reader installs its own for the time it runs (start .. on_done).
  void set_listener(std::function<void()> on_release);
  unsigned available() const;

 private:
  unsigned count_;
  std::size_t slot_bytes_;
  std::size_t stride_;
  std::byte* base_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<unsigned>
      free_list_;  // stack: the most recently released slot is reused first (warm)
  std::vector<bool> in_use_;
  std::shared_ptr<const std::function<void()>> listener_;
};

}  // namespace hetpipe::io

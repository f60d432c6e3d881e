#include "io/slot_pool.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace hetpipe::io {

namespace {
constexpr std::size_t page = 4096;

// Anonymous memory, transparent huge pages where the kernel allows, faulted in now: the pool is
// set up once, so its page faults belong to the set-up, not to the first pass over the data.
std::mutex mapped_mutex;
std::map<void*, std::size_t> mapped;

void* anonymous(std::size_t bytes, bool touch) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: ignored where THP is off
  auto* b = static_cast<volatile unsigned char*>(p);
  if (touch)
    for (std::size_t off = 0; off < bytes; off += page) b[off] = 0;
  std::lock_guard lock(mapped_mutex);
  mapped[p] = bytes;
  return p;
}
void* default_alloc(std::size_t bytes) {
  return anonymous(bytes, true);
}
void default_free(void* p) {
  std::size_t bytes = 0;
  {
    std::lock_guard lock(mapped_mutex);
    auto it = mapped.find(p);
    if (it == mapped.end()) return;
    bytes = it->second;
    mapped.erase(it);
  }
  ::munmap(p, bytes);
}
}  // namespace

void* slot_pool::untouched_alloc(std::size_t bytes) {
  return anonymous(bytes, false);
}
void slot_pool::untouched_free(void* p) {
  default_free(p);
}

slot_pool::slot_pool(unsigned count, std::size_t slot_bytes, alloc_fn alloc, free_fn free)
    : count_(count), slot_bytes_(slot_bytes), free_(free) {
  if (count == 0 || slot_bytes == 0)
    throw std::invalid_argument("slot_pool: count and slot size must be positive");
  if (!alloc) {
    alloc = default_alloc;
    free_ = default_free;
  }
  stride_ = (slot_bytes + page - 1) / page * page;
  if (stride_ > SIZE_MAX / count) throw std::bad_alloc();
  base_ = static_cast<std::byte*>(alloc(stride_ * count));
  if (!base_) throw std::bad_alloc();
  free_list_.reserve(count);
  for (unsigned i = count; i-- > 0;) free_list_.push_back(i);  // slot 0 is handed out first
  in_use_.assign(count, false);
}

slot_pool::~slot_pool() {
  if (base_ && free_) free_(base_);
}

std::optional<unsigned> slot_pool::try_acquire() {
  std::lock_guard lk(mu_);
  if (free_list_.empty()) return std::nullopt;
  unsigned s = free_list_.back();
  free_list_.pop_back();
  in_use_[s] = true;
  return s;
}

unsigned slot_pool::acquire() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !free_list_.empty(); });
  unsigned s = free_list_.back();
  free_list_.pop_back();
  in_use_[s] = true;
  return s;
}

void slot_pool::release(unsigned slot) {
  std::shared_ptr<const std::function<void()>> listener;
  {
    std::lock_guard lk(mu_);
    if (slot >= count_ || !in_use_[slot])
      throw std::logic_error("slot_pool: release of slot " + std::to_string(slot) +
                             " that is not in use");
    in_use_[slot] = false;
    free_list_.push_back(slot);
    listener = listener_;
  }
  cv_.notify_one();
  if (listener && *listener) (*listener)();
}

void slot_pool::set_listener(std::function<void()> on_release) {
  auto p =
      on_release ? std::make_shared<const std::function<void()>>(std::move(on_release)) : nullptr;
  std::lock_guard lk(mu_);
  listener_ = std::move(p);
}

unsigned slot_pool::available() const {
  std::lock_guard lk(mu_);
  return static_cast<unsigned>(free_list_.size());
}

}  // namespace hetpipe::io

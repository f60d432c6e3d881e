#include "io/slot_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "io/uv_util.hpp"

namespace hetpipe::io {

bool free_pages_go_to_host(const std::filesystem::path& sys) {
  std::error_code ec;
  for (const auto& dev :
       std::filesystem::directory_iterator(sys / "bus/virtio/drivers/virtio_balloon", ec)) {
    if (dev.path().filename().string().rfind("virtio", 0) != 0) continue;
    std::ifstream f(dev.path() / "features");
    std::string bits;                     // one character per feature bit, bit 0 first
    constexpr std::size_t reporting = 5;  // VIRTIO_BALLOON_F_REPORTING
    if (f >> bits && bits.size() > reporting && bits[reporting] == '1') return true;
  }
  return false;
}

bool huge_pages_pay() {
  static const bool pay = [] {
    // HETPIPE_HUGE_PAGES=0 or 1 decides instead, to compare the two on a machine.
    if (const char* v = std::getenv("HETPIPE_HUGE_PAGES");
        v && (v == std::string_view("0") || v == std::string_view("1")))
      return v[0] == '1';
    return !free_pages_go_to_host("/sys");
  }();
  return pay;
}

void advise_huge_pages(void* p, std::size_t bytes, bool pay) noexcept {
  if (!pay) return;
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t begin = (at + huge - 1) & ~(huge - 1), end = (at + bytes) & ~(huge - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

namespace {
// Slots start on a page of their own (the system's: 4 KiB on x86-64, 64 KiB on some arm64
// kernels), so that GPU lanes can page-lock blocks of slots apart (cudaHostRegister locks whole
// pages, and a page already locked cannot be locked again).
using detail::page_size;

// Anonymous memory, transparent huge pages where they pay; faulted in now when `touch`
// (the pool is set up once: its page faults then belong to the set-up, not to the first pass over
// the data).
void* anonymous(std::size_t bytes, bool touch) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  advise_huge_pages(p, bytes);
  auto* b = static_cast<volatile unsigned char*>(p);
  if (touch)
    for (std::size_t off = 0, page = page_size(); off < bytes; off += page) b[off] = 0;
  return p;
}
}  // namespace

slot_pool::slot_pool(unsigned count, std::size_t slot_bytes, bool prefault)
    : count_(count), slot_bytes_(slot_bytes) {
  if (count == 0 || slot_bytes == 0)
    throw std::invalid_argument("slot_pool: count and slot size must be positive");
  const std::size_t page = page_size();
  stride_ = (slot_bytes + page - 1) / page * page;
  if (stride_ > SIZE_MAX / count) throw std::bad_alloc();
  base_ = static_cast<std::byte*>(anonymous(bytes(), prefault));
  if (!base_) throw std::bad_alloc();
  free_list_.reserve(count);
  for (unsigned i = count; i-- > 0;) free_list_.push_back(i);  // slot 0 is handed out first
  in_use_.assign(count, false);
}

slot_pool::~slot_pool() {
  if (base_) ::munmap(base_, bytes());
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

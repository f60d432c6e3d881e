// The fake CUDA runtime (see fake_cuda.hpp): every function of cuda/runtime.hpp on host threads.
#include "support/fake_cuda.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include <hetpipe/error.hpp>

#include "cuda/runtime.hpp"

namespace hetpipe::fake_cuda {
namespace {

using steady = std::chrono::steady_clock;
constexpr std::size_t default_memory = std::size_t{8} << 30;
constexpr int illegal_address = 700;  // cudaErrorIllegalAddress: what a kernel fault reports

struct allocation {
  std::size_t size = 0;
  int device = 0;
};

// Process-wide state: allocations, the sticky error, counters.
struct state {
  std::mutex m;
  std::map<std::uintptr_t, allocation> device;   // start → allocation
  std::map<std::uintptr_t, std::size_t> pinned;  // start → bytes
  std::size_t device_memory = default_memory;
  std::size_t used[device_count] = {};
  std::string sticky;
  std::vector<std::string> violations;
  counters c;
  std::atomic<unsigned> jitter_us{0};
  bool refuse_host_register = false;
};

state& st() {
  static state s;
  return s;
}

thread_local int current_device = 0;

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// Under st().m: whether [p, p + n) lies in one live allocation of `map`.
template <class Map, class SizeOf>
bool inside(const Map& map, const void* p, std::size_t n, SizeOf size_of) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = map.upper_bound(a);
  if (it == map.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + size_of(it->second) && a + n >= a;
}

bool in_device(const void* p, std::size_t n) {
  return inside(st().device, p, n, [](const allocation& x) { return x.size; });
}

void set_sticky(const std::string& why) {
  std::lock_guard lock(st().m);
  if (st().sticky.empty()) st().sticky = why;
}

bool sticky() {
  std::lock_guard lock(st().m);
  return !st().sticky.empty();
}

void throw_if_sticky() {
  std::lock_guard lock(st().m);
  if (!st().sticky.empty()) throw gpu_error("fake CUDA: " + st().sticky, illegal_address);
}

// Under st().m: records a violation; it also becomes the sticky error.
void violation_locked(const std::string& what) {
  st().violations.push_back(what);
  if (st().sticky.empty()) st().sticky = what;
}

// A stream: a thread running its queue in order. submitted/completed count operations, so a
// synchronisation waits for exactly the work queued before it (as CUDA's does).
class fake_stream {
 public:
  explicit fake_stream(int device)
      : device_(device), rng_(next_seed()), thread_([this] { run(); }) {}
  ~fake_stream() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  int device() const { return device_; }

  void push(std::function<void()> op) {
    {
      std::lock_guard lock(m_);
      q_.push_back(std::move(op));
      ++submitted_;
    }
    cv_.notify_all();
  }
  std::uint64_t submitted() {
    std::lock_guard lock(m_);
    return submitted_;
  }
  void wait_for(std::uint64_t target) {
    std::unique_lock lock(m_);
    done_cv_.wait(lock, [&] { return completed_ >= target; });
  }
  bool idle() {
    std::lock_guard lock(m_);
    return completed_ == submitted_;
  }
  std::string describe() {
    std::lock_guard lock(m_);
    return "device " + std::to_string(device_) + ": " + std::to_string(completed_) + " of " +
           std::to_string(submitted_) + " operations done";
  }

 private:
  static std::uint64_t next_seed() {
    static std::atomic<std::uint64_t> seed{1};
    return seed.fetch_add(1);
  }
  void run() {
    std::unique_lock lock(m_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;  // stopped and drained
      auto op = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      if (const unsigned j = st().jitter_us.load())
        std::this_thread::sleep_for(std::chrono::microseconds(rng_() % (j + 1)));
      try {
        op();
      } catch (const std::exception& e) {
        set_sticky(std::string("kernel failed: ") + e.what());
      } catch (...) {
        set_sticky("kernel failed");
      }
      lock.lock();
      ++completed_;
      done_cv_.notify_all();
    }
  }

  int device_;
  std::mt19937_64 rng_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> q_;
  std::uint64_t submitted_ = 0, completed_ = 0;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Every live stream, for the implicit synchronisation of frees. Operations never take this lock.
std::mutex streams_mutex;
std::set<fake_stream*> streams;

// What cudaFree and cudaDeviceSynchronize do: wait for all work queued so far, on every stream.
void synchronize_all() {
  std::lock_guard lock(streams_mutex);
  std::vector<std::pair<fake_stream*, std::uint64_t>> targets;
  for (fake_stream* s : streams) targets.emplace_back(s, s->submitted());
  for (auto& [s, t] : targets) s->wait_for(t);
}

fake_stream* to_stream(void* handle) {
  if (!handle) throw gpu_error("fake CUDA: the legacy default stream is not used by hetpipe");
  return static_cast<fake_stream*>(handle);
}

struct fake_event {
  bool timing = false;
  std::mutex m;
  std::condition_variable cv;
  std::uint64_t recorded = 0, completed = 0;
  // Streams queued to wait for it (stream_wait_event). CUDA lets an event be destroyed while a
  // stream still waits for it (the wait holds what it needs); here the waits hold the event, so
  // its destruction waits for them.
  unsigned waiters = 0;
  steady::time_point at{};
};

void record_on(fake_event* e, fake_stream* s) {
  throw_if_sticky();
  std::uint64_t g;
  {
    std::lock_guard lock(e->m);
    g = ++e->recorded;
  }
  s->push([e, g] {  // runs even after a sticky error: waiters must wake
    std::lock_guard lock(e->m);
    e->completed = std::max(e->completed, g);
    e->at = steady::now();
    e->cv.notify_all();
  });
}

void wait_event(fake_event* e) {
  std::unique_lock lock(e->m);
  const std::uint64_t g = e->recorded;
  e->cv.wait(lock, [&] { return e->completed >= g; });
}

enum class dir { h2d, d2h };

void copy_on(fake_stream* s, void* dst, const void* src, std::size_t n, dir d) {
  if (n == 0) return;
  throw_if_sticky();
  const void* dev = d == dir::h2d ? dst : src;
  const void* host = d == dir::h2d ? src : dst;
  {
    std::lock_guard lock(st().m);
    if (!in_device(dev, n)) {
      violation_locked(std::string(d == dir::h2d ? "H2D" : "D2H") + " copy of " +
                       std::to_string(n) + " bytes at device address " + hex(dev) +
                       " outside any device allocation");
      throw gpu_error("fake CUDA: " + st().sticky, illegal_address);
    }
    if (d == dir::d2h)
      ++st().c.d2h;
    else if (!inside(st().pinned, host, n, [](std::size_t x) { return x; }))
      ++st().c.pageable_h2d;
  }
  s->push([=] {
    {
      std::lock_guard lock(st().m);
      if (!st().sticky.empty()) return;
      if (!in_device(dev, n)) {
        violation_locked("a copy ran after its device memory was freed (" + hex(dev) + ")");
        return;
      }
    }
    std::memcpy(dst, src, n);
  });
}

void memset_on(fake_stream* s, void* d_ptr, int value, std::size_t n) {
  if (n == 0) return;
  throw_if_sticky();
  {
    std::lock_guard lock(st().m);
    if (!in_device(d_ptr, n)) {
      violation_locked("memset of " + std::to_string(n) + " bytes at " + hex(d_ptr) +
                       " outside any device allocation");
      throw gpu_error("fake CUDA: " + st().sticky, illegal_address);
    }
  }
  s->push([=] {
    if (!sticky()) std::memset(d_ptr, value, n);
  });
}

}  // namespace

void reset() {
  synchronize_all();
  std::lock_guard lock(st().m);
  st().sticky.clear();
  st().violations.clear();
  st().c = counters{};
  st().jitter_us = 0;
  st().device_memory = default_memory;
  st().refuse_host_register = false;
}

void set_jitter(unsigned max_us) {
  st().jitter_us = max_us;
}

void set_device_memory(std::size_t bytes) {
  std::lock_guard lock(st().m);
  st().device_memory = bytes;
}

void refuse_host_register(bool refuse) {
  std::lock_guard lock(st().m);
  st().refuse_host_register = refuse;
}

void launch(void* stream_handle, std::function<void()> work) {
  fake_stream* s = to_stream(stream_handle);
  throw_if_sticky();
  s->push([work = std::move(work)] {
    if (!sticky()) work();
  });
}

void check_device(const void* p, std::size_t n) {
  std::lock_guard lock(st().m);
  if (in_device(p, n)) return;
  const std::string what = "kernel access of " + std::to_string(n) + " bytes at " + hex(p) +
                           " outside any device allocation";
  violation_locked(what);
  throw std::logic_error(what);
}

void stream_wait_event(void* stream_handle, void* event_handle) {
  throw_if_sticky();
  auto* e = static_cast<fake_event*>(event_handle);
  std::uint64_t g;
  {
    std::lock_guard lock(e->m);
    g = e->recorded;
    ++e->waiters;
  }
  to_stream(stream_handle)->push([e, g] {
    std::unique_lock lock(e->m);
    e->cv.wait(lock, [&] { return e->completed >= g; });
    --e->waiters;
    e->cv.notify_all();  // a destructor may wait for the last waiter
  });
}

std::string describe_streams() {
  std::lock_guard lock(streams_mutex);
  std::string out;
  for (fake_stream* s : streams) out += "  stream " + s->describe() + "\n";
  return out.empty() ? "  no live stream\n" : out;
}

counters stats() {
  std::lock_guard lock(st().m);
  counters c = st().c;
  c.live_device_allocs = st().device.size();
  c.live_pinned_allocs = st().pinned.size();
  return c;
}

std::vector<std::string> violations() {
  std::lock_guard lock(st().m);
  return st().violations;
}

}  // namespace hetpipe::fake_cuda

// ---- cuda/runtime.hpp, faked ----
namespace hetpipe::cuda {

using fake_cuda::fake_event;
using fake_cuda::fake_stream;
namespace fc = fake_cuda;

int device_count() noexcept {
  return fc::device_count;
}

int probe_device_count() noexcept {
  return fc::device_count;
}

std::vector<device_info> devices() noexcept {
  std::vector<device_info> out;
  std::lock_guard lock(fc::st().m);
  for (int d = 0; d < fc::device_count; ++d) {
    device_info i;
    i.id = d;
    i.name = "fake CUDA device " + std::to_string(d);
    i.total_mem = fc::st().device_memory;
    i.free_mem = fc::st().device_memory - std::min(fc::st().device_memory, fc::st().used[d]);
    i.sms = 4;
    i.copy_engines = 2;
    i.cc_major = 9;
    out.push_back(i);
  }
  return out;
}

std::size_t current_device_free_memory() {
  fc::throw_if_sticky();
  std::lock_guard lock(fc::st().m);
  const std::size_t used = fc::st().used[fc::current_device];
  return fc::st().device_memory - std::min(fc::st().device_memory, used);
}

std::string runtime_status() {
  return "fake CUDA runtime (tests), " + std::to_string(fc::device_count) + " devices";
}

void* pinned_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t n = (bytes + 4095) / 4096 * 4096;
  void* p = std::aligned_alloc(4096, n);
  if (!p) throw gpu_error("fake CUDA: cudaHostAlloc: out of memory", 2);
  std::lock_guard lock(fc::st().m);
  fc::st().pinned[reinterpret_cast<std::uintptr_t>(p)] = bytes;
  return p;
}

void pinned_free(void* h_ptr) noexcept {
  if (!h_ptr) return;
  fc::synchronize_all();  // cudaFreeHost waits for the work that may still read the memory
  {
    std::lock_guard lock(fc::st().m);
    if (fc::st().pinned.erase(reinterpret_cast<std::uintptr_t>(h_ptr)) == 0)
      fc::violation_locked("cudaFreeHost of " + fc::hex(h_ptr) + ", not pinned memory");
  }
  std::free(h_ptr);
}

bool host_register(void* p, std::size_t bytes) noexcept {
  if (p == nullptr || bytes == 0) return false;
  std::lock_guard lock(fc::st().m);
  fc::st().c.host_registers++;
  if (fc::st().refuse_host_register) return false;  // as cudaHostRegister's errors: nothing locked
  fc::st().c.host_registered_bytes += bytes;
  fc::st().pinned[reinterpret_cast<std::uintptr_t>(p)] = bytes;
  return true;
}

void host_unregister(void* p) noexcept {
  if (!p) return;
  fc::synchronize_all();  // as cudaHostUnregister: no copy may still read the memory
  std::lock_guard lock(fc::st().m);
  if (fc::st().pinned.erase(reinterpret_cast<std::uintptr_t>(p)) == 0)
    fc::violation_locked("cudaHostUnregister of " + fc::hex(p) + ", not registered");
}

void set_device(int device) {
  if (device < 0 || device >= fc::device_count)
    throw gpu_error(
        "fake CUDA: cudaSetDevice(" + std::to_string(device) + "): invalid device ordinal", 101);
  fc::current_device = device;
}

stream::stream(int device) : device_(device) {
  set_device(device);
  auto* s = new fake_stream(device);
  {
    std::lock_guard lock(fc::streams_mutex);
    fc::streams.insert(s);
  }
  h_ = s;
}

stream::~stream() {
  if (!h_) return;
  auto* s = static_cast<fake_stream*>(h_);
  {
    std::lock_guard lock(fc::streams_mutex);
    fc::streams.erase(s);
  }
  delete s;  // runs what is queued first
}

void stream::synchronize() {
  stream_synchronize(h_);
}

bool stream::idle() const {
  fc::throw_if_sticky();
  return fc::to_stream(h_)->idle();
}

event::event(bool timing) {
  auto* e = new fake_event;
  e->timing = timing;
  h_ = e;
}

event::~event() {
  if (!h_) return;
  auto* e = static_cast<fake_event*>(h_);
  fc::wait_event(e);  // its record may still be queued: the stream writes into it
  {
    std::unique_lock lock(e->m);
    e->cv.wait(lock, [&] { return e->waiters == 0; });
  }
  delete e;
}

void event::record(const stream& s) {
  record_event(h_, s.handle());
}

void event::make_wait(const stream& s) const {
  fc::stream_wait_event(s.handle(), h_);
}

void event::synchronize() const {
  fc::wait_event(static_cast<fake_event*>(h_));
  fc::throw_if_sticky();
}

bool event::ready() const {
  fc::throw_if_sticky();
  auto* e = static_cast<fake_event*>(h_);
  std::lock_guard lock(e->m);
  return e->completed >= e->recorded;
}

float elapsed_ms(const event& start, const event& end) {
  fc::throw_if_sticky();
  auto* a = static_cast<fake_event*>(start.handle());
  auto* b = static_cast<fake_event*>(end.handle());
  fc::steady::time_point ta, tb;
  for (auto [e, t] : {std::pair{a, &ta}, std::pair{b, &tb}}) {
    std::lock_guard lock(e->m);
    if (!e->timing) throw gpu_error("fake CUDA: cudaEventElapsedTime: event without timing", 1);
    if (e->recorded == 0 || e->completed < e->recorded)
      throw gpu_error("fake CUDA: cudaEventElapsedTime: event not ready", 600);
    *t = e->at;
  }
  return std::chrono::duration<float, std::milli>(tb - ta).count();
}

device_buffer::device_buffer(std::size_t bytes) {
  if (bytes == 0) return;
  fc::throw_if_sticky();
  const int d = fc::current_device;
  {
    std::lock_guard lock(fc::st().m);
    if (fc::st().used[d] + bytes > fc::st().device_memory)
      throw gpu_error("fake CUDA: cudaMalloc(" + std::to_string(bytes) + "): out of memory", 2);
    fc::st().used[d] += bytes;
  }
  const std::size_t n = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, n);
  if (!p) throw gpu_error("fake CUDA: cudaMalloc: host allocation failed", 2);
  std::memset(p, 0xCD, n);  // what uninitialised device memory holds here
  std::lock_guard lock(fc::st().m);
  fc::st().device[reinterpret_cast<std::uintptr_t>(p)] = {bytes, d};
  p_ = p;
  n_ = bytes;
}

device_buffer::~device_buffer() {
  if (!p_) return;
  fc::synchronize_all();  // as cudaFree does
  {
    std::lock_guard lock(fc::st().m);
    auto it = fc::st().device.find(reinterpret_cast<std::uintptr_t>(p_));
    if (it == fc::st().device.end()) {
      fc::violation_locked("cudaFree of " + fc::hex(p_) + ", not device memory");
    } else {
      fc::st().used[it->second.device] -= it->second.size;
      fc::st().device.erase(it);
    }
  }
  std::free(p_);
}

void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, const stream& s) {
  copy_h2d_async(d_dst, h_src, n, s.handle());
}

void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, void* stream_handle) {
  fc::copy_on(fc::to_stream(stream_handle), d_dst, h_src, n, fc::dir::h2d);
}

void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, const stream& s) {
  copy_d2h_async(h_dst, d_src, n, s.handle());
}

void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, void* stream_handle) {
  fc::copy_on(fc::to_stream(stream_handle), h_dst, d_src, n, fc::dir::d2h);
}

void memset_async(void* d_ptr, int value, std::size_t n, const stream& s) {
  memset_async(d_ptr, value, n, s.handle());
}

void memset_async(void* d_ptr, int value, std::size_t n, void* stream_handle) {
  fc::memset_on(fc::to_stream(stream_handle), d_ptr, value, n);
}

void record_event(void* event_handle, void* stream_handle) {
  fc::record_on(static_cast<fake_event*>(event_handle), fc::to_stream(stream_handle));
}

void stream_synchronize(void* stream_handle) {
  fake_stream* s = fc::to_stream(stream_handle);
  s->wait_for(s->submitted());
  fc::throw_if_sticky();
}

}  // namespace hetpipe::cuda

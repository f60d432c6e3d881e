// Move-only owners of CUDA runtime resources (streams, events, device and pinned memory) and the
// device query. CUDA-free: includes no toolkit header, so CPU-only code may include it. Every
// failing call throws hetpipe::gpu_error naming the call; destructors never throw.
//
//   hetpipe::cuda::set_device(0);
//   hetpipe::cuda::stream s(0);
//   hetpipe::cuda::device_buffer d_buf(n);
//   hetpipe::cuda::copy_h2d_async(d_buf.get(), h_pinned, n, s);
//   s.synchronize();
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace hetpipe::cuda {

// Number of usable CUDA devices; 0 on any error (no driver, no device, driver too old).
int device_count() noexcept;

// The devices the driver's device nodes show (/dev/nvidia0, /dev/nvidia1, ...; /dev/dxg under
// WSL counts as one), at most as many as CUDA_VISIBLE_DEVICES lists when it is set, without
// starting the runtime: a directory read where device_count() takes 0.1 s (H200 box). An upper
// bound: a node's device may still be unusable.
int probe_device_count() noexcept;

struct device_info {
  int id = 0;
  std::string name;
  std::size_t total_mem = 0;
  std::size_t free_mem = 0;  // at the time of the query
  int sms = 0;
  int copy_engines = 0;  // asyncEngineCount: 2 lets H2D and D2H run at the same time
  int cc_major = 0;
  int cc_minor = 0;
};

// Every usable device; empty without a driver or device. Creates each device's primary context
// (needed for free_mem) and leaves the calling thread's current device as it was.
std::vector<device_info> devices() noexcept;

// Free memory of the calling thread's current device now (cudaMemGetInfo); throws gpu_error.
std::size_t current_device_free_memory();

// One line for logs and `--version`, e.g. "CUDA 13.0 runtime, driver 12.8, 1 device" or
// "CUDA 13.0 runtime, no CUDA driver (cudaErrorInsufficientDriver)". Never throws a gpu_error.
std::string runtime_status();

// Page-locked host memory usable from every device (cudaHostAllocPortable). Slow to allocate
// (about 0.5 s per GiB): allocate once per pipeline. pinned_alloc(0) returns nullptr.
void* pinned_alloc(std::size_t bytes);
void pinned_free(void* h_ptr) noexcept;  // nullptr is a no-op
// Page-locks memory allocated elsewhere (cudaHostRegister, portable), e.g. a slot pool already in
// use: copies from it are then asynchronous. False when the driver refuses (the memory stays
// pageable and usable). host_unregister before the memory is freed.
bool host_register(void* p, std::size_t bytes) noexcept;
void host_unregister(void* p) noexcept;

// Makes `device` current on the calling thread.
void set_device(int device);

// Owner of pinned_alloc memory.
class pinned_buffer {
 public:
  pinned_buffer() = default;
  explicit pinned_buffer(std::size_t bytes) : p_(pinned_alloc(bytes)), n_(bytes) {}
  ~pinned_buffer() { pinned_free(p_); }
  pinned_buffer(pinned_buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  pinned_buffer& operator=(pinned_buffer&& o) noexcept {
    if (this != &o) {
      pinned_free(p_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  void* get() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

// A non-blocking stream (no implicit synchronisation with the legacy default stream) on `device`.
// The constructor makes `device` current on the calling thread: launches and copies into the
// stream must come from a thread whose current device is that device.
class stream {
 public:
  explicit stream(int device);
  ~stream();
  stream(stream&& o) noexcept : h_(std::exchange(o.h_, nullptr)), device_(o.device_) {}
  stream& operator=(stream&& o) noexcept {
    if (this != &o) {
      stream old(std::move(*this));  // destroyed at the end of this scope
      h_ = std::exchange(o.h_, nullptr);
      device_ = o.device_;
    }
    return *this;
  }
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  void* handle() const noexcept { return h_; }  // a cudaStream_t
  int device() const noexcept { return device_; }
  void synchronize();
  bool idle() const;  // true when all work queued so far has completed (cudaStreamQuery)

 private:
  void* h_ = nullptr;
  int device_ = 0;
};

// An event on the current device. Timing is off by default (cheaper record and wait).
class event {
 public:
  explicit event(bool timing = false);
  ~event();
  event(event&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  event& operator=(event&& o) noexcept {
    if (this != &o) {
      event old(std::move(*this));
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  void* handle() const noexcept { return h_; }  // a cudaEvent_t
  void record(const stream& s);
  void make_wait(const stream& s) const;  // work queued on `s` later waits for this event
  void synchronize() const;               // blocks the calling thread until the event completed
  bool ready() const;                     // the recorded work has completed (or nothing recorded)

 private:
  void* h_ = nullptr;
};

// Milliseconds between two completed timing events.
float elapsed_ms(const event& start, const event& end);

// cudaMalloc'ed memory on the current device. device_buffer(0) holds nullptr.
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t bytes);
  ~device_buffer();
  device_buffer(device_buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      device_buffer old(std::move(*this));
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;

  void* get() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

// Asynchronous copies and memset on `s` (n == 0 is a no-op). Host pointers should be pinned for
// the copy to be asynchronous and to overlap with kernels.
void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, const stream& s);
void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, const stream& s);
// The same on a raw cudaStream_t handle (hetpipe::stream_ref::handle).
void copy_h2d_async(void* d_dst, const void* h_src, std::size_t n, void* stream_handle);
void copy_d2h_async(void* h_dst, const void* d_src, std::size_t n, void* stream_handle);
void memset_async(void* d_ptr, int value, std::size_t n, const stream& s);
void memset_async(void* d_ptr, int value, std::size_t n, void* stream_handle);
// cudaEventRecord(event, stream) on raw handles.
void record_event(void* event_handle, void* stream_handle);
// Blocks until the work queued on a raw cudaStream_t handle has completed.
void stream_synchronize(void* stream_handle);

}  // namespace hetpipe::cuda

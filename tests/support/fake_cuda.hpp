// A fake CUDA runtime for tests: GPU lanes on a machine without a GPU.
//
// fake_cuda.cpp defines every function of cuda/runtime.hpp with host threads, so the engine's GPU
// lane code (copies, events, double buffering, batching, staging, failures) runs and is checked
// wherever CUDA is compiled in, CI included. A test executable gets it instead of the real runtime
// by compiling fake_cuda.cpp: the linker then never pulls runtime.cpp's object out of
// libhetpipe_cuda.a (a runtime function missing here would show as a "multiple definition" link
// error, never as a silent mix). Kernels are host functions queued with launch(); the image
// kernels (cuda/image_kernels.hpp) have host stand-ins in fake_cuda_image.cpp.
//
// It behaves as the CUDA runtime does where the engine depends on it: a stream runs its work in
// order on its own thread, asynchronously to the caller (with optional random delays to widen
// races); an event completes when its stream reaches it; make_wait orders two streams; freeing
// memory waits for queued work, as cudaFree does; a failed kernel is a sticky error every later
// call reports. And it checks what a GPU would not: every copy, memset and kernel access lies in
// live device memory within one allocation, and H2D copies come from pinned memory. A violation
// is recorded (violations()) and becomes the sticky error, so the job fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hetpipe::fake_cuda {

inline constexpr int device_count = 2;  // fixed: the engine asks once per process

// Between tests: waits until no queued work is left, clears the sticky error, the violations and
// the counters, and sets the defaults (no jitter, 8 GiB per device, cudaHostRegister works).
void reset();
// Random delay of up to `max_us` microseconds before each queued operation (0: none).
void set_jitter(unsigned max_us);
// Device memory per device: cudaMalloc beyond it fails with an out-of-memory gpu_error, and
// current_device_free_memory() reports what is left.
void set_device_memory(std::size_t bytes);
// cudaHostRegister refused from now on (a driver that will not page-lock memory it did not
// allocate): host_register returns false, locks nothing, and counts the call.
void refuse_host_register(bool refuse);

// A kernel: `work` runs on the stream's thread, in order with the copies queued on it. An exception
// from it is a kernel fault: it becomes the sticky error. Skipped once a sticky error is set.
void launch(void* stream_handle, std::function<void()> work);
// For kernels: records a violation (and throws) unless [p, p + n) lies in one live device
// allocation.
void check_device(const void* p, std::size_t n);
// cudaStreamWaitEvent on raw handles: work queued on the stream later waits for the event's last
// record (what fake kernel launchers need where the real ones call the CUDA API).
void stream_wait_event(void* stream_handle, void* event_handle);

// Every live stream's device, operations queued and completed (for a hang report).
std::string describe_streams();

struct counters {
  std::uint64_t d2h = 0;           // device-to-host copies queued
  std::uint64_t pageable_h2d = 0;  // H2D copies whose source is not pinned (slow on a real GPU)
  std::uint64_t live_device_allocs = 0, live_pinned_allocs = 0;  // not yet freed (registered too)
  std::uint64_t host_registers = 0;                              // cudaHostRegister calls
  std::uint64_t host_registered_bytes = 0;                       // their bytes, in all
};
counters stats();
std::vector<std::string> violations();

}  // namespace hetpipe::fake_cuda

// Image filter chains on the GPU (CUDA-free declarations): the ops of host/image_ops.hpp with the
// same integer arithmetic (host/image_math.hpp), so the bytes equal host::img::apply's.
//
//   namespace hc = hetpipe::cuda;
//   namespace img = hetpipe::host::img;
//   hc::image_workspace ws;  // one per stream; owns the intermediate device buffers
//   const auto ops = img::parse_ops("gray,blur:sigma=2,sobel");
//   hc::image_result r = ws.run(d_samples, shape, ops, s.handle());
//   hc::copy_d2h_async(h_out, r.d_samples, r.shape.samples() * 2, s);
//   // once the stream has run: h_out == img::apply(image, ops).samples, r.shape its shape
//
// Samples are uint16 on the device too (8-bit images included): one kernel per op for both depths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/runtime.hpp"
#include "host/image_ops.hpp"

namespace hetpipe::cuda {

struct image_result {
  const std::uint16_t* d_samples = nullptr;  // device memory of the workspace (or the input)
  host::img::image_shape shape;
};

// Owns two ping-pong sample buffers, a scratch buffer (blur's row sums, resize's first pass)
// and an event, on the current device (the one current at the first run). Buffers grow as needed
// and are kept for the next run. Runs through one workspace are ordered among themselves (a run's
// stream first waits for the previous run, whatever its stream): one workspace per stream.
class image_workspace {
 public:
  image_workspace() = default;
  image_workspace(image_workspace&&) noexcept = default;
  image_workspace& operator=(image_workspace&&) noexcept = default;

  // Queues `ops` on `stream` (a cudaStream_t; nullptr = legacy default stream) for the image of
  // shape `in` whose in.samples() interleaved samples (each <= in.maxval) are at d_in (device
  // memory, 2-byte aligned; read, never written). Returns where the result will be once the
  // stream has run and its shape: a buffer of this workspace, valid until the next run, or d_in
  // itself when no op changes anything (empty list, resize to the same size). Waits on the host
  // only to grow a buffer (until the previous run and `stream` finished). Throws usage_error /
  // input_error like host::img::apply for a bad op or shape, gpu_error for a failed launch.
  image_result run(const std::uint16_t* d_in, const host::img::image_shape& in,
                   const std::vector<host::img::op>& ops, void* stream);

  // Device memory held now.
  std::size_t bytes() const noexcept { return d_buf_[0].size() + d_buf_[1].size() + d_tmp_.size(); }

 private:
  device_buffer d_buf_[2];
  device_buffer d_tmp_;
  std::optional<event> done_;  // the last run has finished with the buffers
};

// Rasters to and from the workspace's uint16 samples, on `stream`:
// unpack_samples widens n samples of `layout` at d_src (2-byte aligned for u16) into d_dst and
// checks them against maxval: of the samples above it, the one with the smallest index i is
// recorded as (i << 16 | value) by an atomic minimum on *d_bad, which the caller sets to
// no_bad_sample first (bad_sample_index / bad_sample_value take it apart).
// pack_samples narrows n samples into `layout` at d_dst (u8 keeps the low byte: samples <= 255).
constexpr unsigned long long no_bad_sample = ~0ull;
constexpr std::uint64_t bad_sample_index(unsigned long long v) {
  return v >> 16;
}
constexpr std::uint32_t bad_sample_value(unsigned long long v) {
  return static_cast<std::uint32_t>(v & 0xFFFF);
}
// The argument checks both take (every implementation: the kernels, the tests' stand-ins).
inline void check_raster_args(const char* what, const void* raster, const void* samples,
                              const void* bad, host::img::sample_layout layout) {
  if (!raster || !samples || !bad) throw gpu_error(std::string(what) + ": null pointer");
  if (layout == host::img::sample_layout::u16 && reinterpret_cast<std::uintptr_t>(raster) % 2 != 0)
    throw gpu_error(std::string(what) + ": u16 samples are not 2-byte aligned");
}

void unpack_samples(const void* d_src, host::img::sample_layout layout, std::uint64_t n,
                    std::uint32_t maxval, std::uint16_t* d_dst, unsigned long long* d_bad,
                    void* stream);
void pack_samples(const std::uint16_t* d_src, std::uint64_t n, host::img::sample_layout layout,
                  void* d_dst, void* stream);

}  // namespace hetpipe::cuda

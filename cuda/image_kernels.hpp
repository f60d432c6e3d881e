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

#include <algorithm>
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

// The device memory a run of `ops` on an image of shape `in` needs: each of the workspace's two
// sample buffers, and its scratch buffer (blur's row sums; resize's first pass and tap tables).
// Throws input_error like run for a resize beyond the limits.
struct image_workspace_sizes {
  std::size_t buffer = 0;
  std::size_t scratch = 0;
};
inline image_workspace_sizes image_workspace_needs(const host::img::image_shape& in,
                                                   const std::vector<host::img::op>& ops);

// The size a buffer of `have` bytes is replaced with to hold `need` (`have` when it does): at
// least 1.5 times the old one, so that a series of growing images reallocates rarely.
constexpr std::size_t grown_size(std::size_t have, std::size_t need) {
  return have >= need ? have : std::max(need, have + have / 2);
}

// Owns two ping-pong sample buffers, a scratch buffer (blur's row sums, resize's first pass and
// tap tables) and an event, on the current device (the one current at the first run). Buffers grow
// as needed and are kept for the next run. Runs through one workspace are ordered among themselves
// (a run's stream first waits for the previous run, whatever its stream): one workspace per stream.
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

  // The device memory run(d_in, in, ops, ...) would add to bytes() (0 when the buffers are large
  // enough); throws like image_workspace_needs.
  std::size_t growth(const host::img::image_shape& in,
                     const std::vector<host::img::op>& ops) const {
    const image_workspace_sizes n = image_workspace_needs(in, ops);
    const auto more = [](const device_buffer& b, std::size_t need) {
      return grown_size(b.size(), need) - b.size();
    };
    return more(d_buf_[0], n.buffer) + more(d_buf_[1], n.buffer) + more(d_tmp_, n.scratch);
  }

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

// --- inline definitions ---

namespace detail {

// Resize's taps on the device: per output of a resized axis, one record of this many bytes.
constexpr std::size_t resize_tap_bytes = 16;

// Where resize a -> b keeps its data in the scratch buffer, 16-byte aligned: the first pass's
// image at 0 when both axes change, then the taps of the width (taps_x) and of the height (taps_y)
// when they change; `bytes` in all.
struct resize_scratch {
  std::size_t taps_x = 0, taps_y = 0, bytes = 0;
};
inline resize_scratch resize_scratch_layout(const host::img::image_shape& a,
                                            const host::img::image_shape& b) {
  resize_scratch l;
  std::size_t at = 0;
  if (b.width != a.width && b.height != a.height)
    at = (std::size_t{b.width} * a.height * a.channels * sizeof(std::uint16_t) + 15) / 16 * 16;
  if (b.width != a.width) l.taps_x = at, at += resize_tap_bytes * b.width;
  if (b.height != a.height) l.taps_y = at, at += resize_tap_bytes * b.height;
  l.bytes = at;
  return l;
}

// Scratch bytes `o` needs on an image of shape s (0 when none).
inline std::size_t scratch_bytes(const host::img::image_shape& s, const host::img::op& o) {
  if (o.kind == host::img::op_kind::blur)
    return s.samples() *
           (host::img::blur_wide_sums(s.maxval) ? sizeof(std::uint64_t) : sizeof(std::uint32_t));
  if (o.kind == host::img::op_kind::resize)
    return resize_scratch_layout(s, host::img::output_shape(s, o)).bytes;
  return 0;
}

}  // namespace detail

inline image_workspace_sizes image_workspace_needs(const host::img::image_shape& in,
                                                   const std::vector<host::img::op>& ops) {
  image_workspace_sizes n;
  host::img::image_shape s = in;
  for (const auto& o : ops) {
    n.scratch = std::max(n.scratch, detail::scratch_bytes(s, o));
    s = host::img::output_shape(s, o);
    n.buffer = std::max(n.buffer, s.samples() * sizeof(std::uint16_t));
  }
  return n;
}

}  // namespace hetpipe::cuda

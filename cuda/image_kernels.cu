// Image filter kernels and the chain runner (contract: image_kernels.hpp; definitions:
// host/image_ops.hpp). Every kernel evaluates exactly the integer expressions of the CPU passes
// through the shared helpers of host/image_math.hpp; only the order of the loops differs, and
// integer sums do not depend on it.
#include "cuda/image_kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include <hetpipe/error.hpp>

#include "cuda/check.cuh"
#include "host/image_math.hpp"

namespace hetpipe::cuda {
namespace {

namespace img = hetpipe::host::img;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

constexpr int block_threads = 256;
constexpr u64 max_blocks = 1u << 16;  // grid-stride loops cover the rest
constexpr int blur_tile = 256;        // pixels of a row per block in the horizontal blur

unsigned blocks_for(u64 n) {
  return static_cast<unsigned>(
      std::max<u64>(1, std::min<u64>((n + block_threads - 1) / block_threads, max_blocks)));
}

__global__ void gray_kernel(const u16* __restrict__ in, u16* __restrict__ out, u64 pixels, u32 ch) {
  for (u64 p = blockIdx.x * u64{blockDim.x} + threadIdx.x; p < pixels;
       p += u64{gridDim.x} * blockDim.x) {
    const u16* s = in + p * ch;
    out[p] = ch >= 3 ? static_cast<u16>(img::luma(s[0], s[1], s[2])) : s[0];
  }
}

// invert (threshold == false) or threshold on colour channels; alpha (channel cc) copied.
__global__ void point_kernel(const u16* __restrict__ in, u16* __restrict__ out, u64 n, u32 ch,
                             u32 cc, bool threshold, u32 maxval, u32 t) {
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    const u32 v = in[i];
    u32 r = v;
    if (i % ch < cc) r = threshold ? (v >= t ? maxval : 0u) : maxval - v;
    out[i] = static_cast<u16>(r);
  }
}

// Horizontal blur: a block takes blur_tile pixels of a row with r replicated pixels each side into
// shared memory, then each thread sums the taps of its samples. Rows: blockIdx.y, grid-stride.
// H: the horizontal sums' type, u32 for samples <= 255 and u64 above (image_math.hpp).
template <class H>
__global__ void blur_h_kernel(const u16* __restrict__ in, H* __restrict__ out, u32 w, u32 h, u32 ch,
                              img::blur_kernel k) {
  extern __shared__ u16 tile[];  // (blur_tile + 2r) * ch samples
  __shared__ u32 q[img::max_blur_radius + 1];
  const int r = k.radius;
  for (int i = threadIdx.x; i <= r; i += blockDim.x) q[i] = k.q[i];
  const std::int64_t x0 = std::int64_t{blockIdx.x} * blur_tile;
  const u32 tile_samples = (blur_tile + 2 * r) * ch;
  const u32 out_samples = blur_tile * ch;
  for (u64 y = blockIdx.y; y < h; y += gridDim.y) {
    const u16* row = in + y * w * ch;
    __syncthreads();  // the previous row's tile is no longer read (and q is written)
    for (u32 i = threadIdx.x; i < tile_samples; i += blockDim.x) {
      const u32 px = i / ch, c = i % ch;
      const std::int64_t sx = img::clamp_index(x0 - r + px, w);
      tile[i] = row[sx * ch + c];
    }
    __syncthreads();
    for (u32 i = threadIdx.x; i < out_samples; i += blockDim.x) {
      const u32 px = i / ch;
      if (x0 + px >= w) break;  // i only grows
      const u16* c = tile + (px + r) * ch + i % ch;
      H acc = H{q[0]} * c[0];
      for (int t = 1; t <= r; ++t) acc += H{q[t]} * (H{c[-t * static_cast<int>(ch)]} + c[t * ch]);
      out[(y * w + x0) * ch + i] = acc;
    }
  }
}

// Vertical blur: one thread per output sample; a warp reads 32 neighbouring samples of a row per
// tap (coalesced, the rows above and below are reused from L1/L2 by the neighbouring rows' blocks).
template <class H>
__global__ void blur_v_kernel(const H* __restrict__ in, u16* __restrict__ out, u64 row, u32 h,
                              img::blur_kernel k, u32 maxval) {
  __shared__ u32 q[img::max_blur_radius + 1];
  const int r = k.radius;
  for (int i = threadIdx.x; i <= r; i += blockDim.x) q[i] = k.q[i];
  __syncthreads();
  const u64 n = row * h;
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    const std::int64_t y = static_cast<std::int64_t>(i / row);
    const u64 x = i % row;
    u64 acc = u64{q[0]} * in[i];
    for (int t = 1; t <= r; ++t) {
      const u64 lo = in[img::clamp_index(y - t, h) * row + x];
      const u64 hi = in[img::clamp_index(y + t, h) * row + x];
      acc += u64{q[t]} * (lo + hi);
    }
    out[i] = static_cast<u16>(img::blur_finish(acc, maxval));
  }
}

__global__ void sobel_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 w, u32 h,
                             u32 ch, u32 cc, u32 maxval) {
  const u64 n = u64{w} * h * ch;
  const u64 row = u64{w} * ch;
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    const u32 c = static_cast<u32>(i % ch);
    if (c >= cc) {
      out[i] = in[i];
      continue;
    }
    const std::int64_t y = static_cast<std::int64_t>(i / row);
    const std::int64_t x = static_cast<std::int64_t>((i % row) / ch);
    const u16* a = in + img::clamp_index(y - 1, h) * row + c;
    const u16* b = in + y * row + c;
    const u16* d = in + img::clamp_index(y + 1, h) * row + c;
    const u64 l = img::clamp_index(x - 1, w) * ch, m = x * ch, r = img::clamp_index(x + 1, w) * ch;
    const std::int32_t gx = (a[r] + 2 * b[r] + d[r]) - (a[l] + 2 * b[l] + d[l]);
    const std::int32_t gy = (d[l] + 2 * d[m] + d[r]) - (a[l] + 2 * a[m] + a[r]);
    out[i] = static_cast<u16>(img::sobel_magnitude(gx, gy, maxval));
  }
}

// The value of output index i along an axis of n sources -> m outputs; src(j) reads source j.
template <class Src>
__device__ u16 resample(u64 i, u64 n, u64 m, Src src) {
  if (m < n) {
    u64 first = 0, last = 0;
    img::area_span(i, n, m, &first, &last);
    u64 acc = 0;
    for (u64 j = first; j <= last; ++j) acc += img::area_coverage(i, j, n, m) * src(j);
    return static_cast<u16>(img::div_round(acc, n));
  }
  const img::bilinear_tap t = img::bilinear_at(i, n, m);
  return static_cast<u16>(img::div_round(src(t.j0) * (2 * m - t.t) + src(t.j1) * t.t, 2 * m));
}

// Width n -> m, every row and channel; h rows.
__global__ void resize_x_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 n, u32 m,
                                u32 h, u32 ch) {
  const u64 total = u64{m} * h * ch;
  for (u64 k = blockIdx.x * u64{blockDim.x} + threadIdx.x; k < total;
       k += u64{gridDim.x} * blockDim.x) {
    const u64 c = k % ch;
    const u64 i = (k / ch) % m;
    const u64 y = k / (u64{ch} * m);
    const u16* row = in + y * n * ch + c;
    out[k] = resample(i, n, m, [row, ch](u64 j) -> u64 { return row[j * ch]; });
  }
}

// Height n -> m; rows of `row` samples.
__global__ void resize_y_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 n, u32 m,
                                u64 row) {
  const u64 total = u64{m} * row;
  for (u64 k = blockIdx.x * u64{blockDim.x} + threadIdx.x; k < total;
       k += u64{gridDim.x} * blockDim.x) {
    const u64 x = k % row;
    const u64 i = k / row;
    const u16* col = in + x;
    out[k] = resample(i, n, m, [col, row](u64 j) -> u64 { return col[j * row]; });
  }
}

// host::img::check_shape's limits, here because hetpipe_cuda does not link hetpipe_host.
void check_input(const img::image_shape& s) {
  if (s.channels < 1 || s.channels > 4 || s.maxval < 1 || s.maxval > 65535 || s.width == 0 ||
      s.height == 0 || s.width > img::max_dimension || s.height > img::max_dimension ||
      s.pixels() > img::max_pixels)
    throw input_error("", "image: unsupported shape " + std::to_string(s.width) + "x" +
                              std::to_string(s.height) + ", " + std::to_string(s.channels) +
                              " channels, maxval " + std::to_string(s.maxval));
}

void check_launch() {
  HETPIPE_CUDA_CHECK(cudaPeekAtLastError());
}

// Scratch bytes `o` needs on an image of shape s (0 when none).
std::size_t scratch_bytes(const img::image_shape& s, const img::op& o) {
  if (o.kind == img::op_kind::blur)
    return s.samples() * (img::blur_wide_sums(s.maxval) ? sizeof(u64) : sizeof(u32));
  if (o.kind == img::op_kind::resize) {
    const img::image_shape t = img::output_shape(s, o);
    if (t.width != s.width && t.height != s.height)
      return std::size_t{t.width} * s.height * s.channels * sizeof(u16);
  }
  return 0;
}

}  // namespace

image_result image_workspace::run(const std::uint16_t* d_in, const host::img::image_shape& in,
                                  const std::vector<host::img::op>& ops, void* stream) {
  check_input(in);
  if (d_in == nullptr) throw gpu_error("image: null input pointer");
  if (reinterpret_cast<std::uintptr_t>(d_in) % 2 != 0)
    throw gpu_error("image: input samples are not 2-byte aligned");

  // Plan on the host first: every shape and kernel, so bad ops throw before anything is queued.
  std::vector<img::image_shape> shapes{in};
  std::vector<img::blur_kernel> kernels;
  std::size_t buf_bytes = 0, tmp_bytes = 0;
  for (const auto& o : ops) {
    if (o.kind == img::op_kind::blur) kernels.push_back(img::make_blur_kernel(o.sigma));
    tmp_bytes = std::max(tmp_bytes, scratch_bytes(shapes.back(), o));
    shapes.push_back(img::output_shape(shapes.back(), o));
    buf_bytes = std::max(buf_bytes, shapes.back().samples() * sizeof(u16));
  }
  if (ops.empty()) return {d_in, in};

  if (!done_) done_.emplace(false);
  if (d_buf_[0].size() < buf_bytes || d_buf_[1].size() < buf_bytes || d_tmp_.size() < tmp_bytes) {
    // The previous run, and whatever this stream queued after it that reads its result (a copy
    // back, a pack), must be done with the buffers. Never-recorded events count as complete.
    done_->synchronize();
    HETPIPE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    // Each old buffer goes before its successor comes: the two need not fit at once.
    const auto grow = [](device_buffer& b, std::size_t need) {
      if (b.size() >= need) return;
      const std::size_t size = std::max(need, b.size() + b.size() / 2);
      b = device_buffer();
      b = device_buffer(size);
    };
    grow(d_buf_[0], buf_bytes);
    grow(d_buf_[1], buf_bytes);
    grow(d_tmp_, tmp_bytes);
  }
  const auto s = static_cast<cudaStream_t>(stream);
  HETPIPE_CUDA_CHECK(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(done_->handle()), 0));

  int device = 0;
  HETPIPE_CUDA_CHECK(cudaGetDevice(&device));
  int max_grid_y = 0;
  HETPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&max_grid_y, cudaDevAttrMaxGridDimY, device));

  const u16* cur = d_in;
  std::size_t next_kernel = 0;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const img::op& o = ops[k];
    const img::image_shape& a = shapes[k];
    const img::image_shape& b = shapes[k + 1];
    u16* const dst = static_cast<u16*>(cur == d_buf_[0].get() ? d_buf_[1].get() : d_buf_[0].get());
    const u64 n = a.samples();
    switch (o.kind) {
      case img::op_kind::gray:
        gray_kernel<<<blocks_for(a.pixels()), block_threads, 0, s>>>(cur, dst, a.pixels(),
                                                                     a.channels);
        break;
      case img::op_kind::invert:
      case img::op_kind::threshold:
        point_kernel<<<blocks_for(n), block_threads, 0, s>>>(
            cur, dst, n, a.channels, a.color_channels(), o.kind == img::op_kind::threshold,
            a.maxval, o.threshold);
        break;
      case img::op_kind::blur: {
        const img::blur_kernel& kern = kernels[next_kernel++];
        const dim3 grid((a.width + blur_tile - 1) / blur_tile,
                        std::min<u32>(a.height, static_cast<u32>(max_grid_y)));
        const std::size_t shared = (blur_tile + 2 * kern.radius) * a.channels * sizeof(u16);
        // Row sums of 64 bits where 32 could overflow (16-bit images), else 32.
        const auto blur = [&](auto sum_type) {
          using Sum = decltype(sum_type);
          auto* const d_sums = static_cast<Sum*>(d_tmp_.get());
          blur_h_kernel<Sum><<<grid, block_threads, shared, s>>>(cur, d_sums, a.width, a.height,
                                                                 a.channels, kern);
          check_launch();
          blur_v_kernel<Sum><<<blocks_for(n), block_threads, 0, s>>>(
              d_sums, dst, u64{a.width} * a.channels, a.height, kern, a.maxval);
        };
        if (img::blur_wide_sums(a.maxval))
          blur(u64{});
        else
          blur(u32{});
        break;
      }
      case img::op_kind::sobel:
        sobel_kernel<<<blocks_for(n), block_threads, 0, s>>>(
            cur, dst, a.width, a.height, a.channels, a.color_channels(), a.maxval);
        break;
      case img::op_kind::resize: {
        if (b.width == a.width && b.height == a.height) continue;  // nothing to do, cur stays
        if (b.height == a.height) {
          resize_x_kernel<<<blocks_for(b.samples()), block_threads, 0, s>>>(
              cur, dst, a.width, b.width, a.height, a.channels);
        } else if (b.width == a.width) {
          resize_y_kernel<<<blocks_for(b.samples()), block_threads, 0, s>>>(
              cur, dst, a.height, b.height, u64{a.width} * a.channels);
        } else {
          auto* const d_mid = static_cast<u16*>(d_tmp_.get());
          const u64 mid = u64{b.width} * a.height * a.channels;
          resize_x_kernel<<<blocks_for(mid), block_threads, 0, s>>>(cur, d_mid, a.width, b.width,
                                                                    a.height, a.channels);
          check_launch();
          resize_y_kernel<<<blocks_for(b.samples()), block_threads, 0, s>>>(
              d_mid, dst, a.height, b.height, u64{b.width} * b.channels);
        }
        break;
      }
    }
    check_launch();
    cur = dst;
  }
  HETPIPE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(done_->handle()), s));
  return {cur, shapes.back()};
}

namespace {

__global__ void unpack_kernel(const std::uint8_t* __restrict__ src, img::sample_layout layout,
                              u64 n, u32 maxval, u16* __restrict__ dst, unsigned long long* bad) {
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    u32 v;
    if (layout == img::sample_layout::u8)
      v = src[i];
    else if (layout == img::sample_layout::u16be)
      v = (u32{src[2 * i]} << 8) | src[2 * i + 1];
    else
      v = reinterpret_cast<const u16*>(src)[i];
    dst[i] = static_cast<u16>(v);
    if (v > maxval) atomicMin(bad, (static_cast<unsigned long long>(i) << 16) | v);
  }
}

__global__ void pack_kernel(const u16* __restrict__ src, u64 n, img::sample_layout layout,
                            std::uint8_t* __restrict__ dst) {
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    const u16 v = src[i];
    if (layout == img::sample_layout::u8) {
      dst[i] = static_cast<std::uint8_t>(v);
    } else if (layout == img::sample_layout::u16be) {
      dst[2 * i] = static_cast<std::uint8_t>(v >> 8);
      dst[2 * i + 1] = static_cast<std::uint8_t>(v);
    } else {
      reinterpret_cast<u16*>(dst)[i] = v;
    }
  }
}

}  // namespace

void unpack_samples(const void* d_src, img::sample_layout layout, std::uint64_t n,
                    std::uint32_t maxval, std::uint16_t* d_dst, unsigned long long* d_bad,
                    void* stream) {
  if (n == 0) return;
  check_raster_args("unpack_samples", d_src, d_dst, d_bad, layout);
  unpack_kernel<<<blocks_for(n), block_threads, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const std::uint8_t*>(d_src), layout, n, maxval, d_dst, d_bad);
  check_launch();
}

void pack_samples(const std::uint16_t* d_src, std::uint64_t n, img::sample_layout layout,
                  void* d_dst, void* stream) {
  if (n == 0) return;
  check_raster_args("pack_samples", d_dst, d_src, d_src, layout);
  pack_kernel<<<blocks_for(n), block_threads, 0, static_cast<cudaStream_t>(stream)>>>(
      d_src, n, layout, static_cast<std::uint8_t*>(d_dst));
  check_launch();
}

}  // namespace hetpipe::cuda

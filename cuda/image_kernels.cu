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
// Dynamic shared memory of blur_v_kernel's ring at most: a block gets 48 KiB without opting in,
// static arrays included.
constexpr std::size_t blur_ring_bytes = 40 << 10;

unsigned blocks_for(u64 n) {
  return static_cast<unsigned>(
      std::max<u64>(1, std::min<u64>((n + block_threads - 1) / block_threads, max_blocks)));
}

// `items` per row in x, one block row per image row in y up to the device's limit (65535; an
// image may have 2^20 rows): the kernels stride over the rest of y. Within a row, indices are
// 32-bit (a row has at most 2^22 samples); only offsets of rows into the image take 64 bits.
dim3 rows_grid(u64 items, u64 rows, int max_grid_y) {
  return dim3(static_cast<unsigned>((items + block_threads - 1) / block_threads),
              static_cast<unsigned>(std::min<u64>(rows, static_cast<u64>(max_grid_y))));
}

__global__ void gray_kernel(const u16* __restrict__ in, u16* __restrict__ out, u64 pixels, u32 ch) {
  for (u64 p = blockIdx.x * u64{blockDim.x} + threadIdx.x; p < pixels;
       p += u64{gridDim.x} * blockDim.x) {
    const u16* s = in + p * ch;
    out[p] = ch >= 3 ? static_cast<u16>(img::luma(s[0], s[1], s[2])) : s[0];
  }
}

// invert (threshold == false) or threshold on colour channels; alpha copied. Only images of 2
// and 4 channels have alpha, as their last channel: with alpha = ch - 1 for them (0 otherwise),
// sample i is alpha when i & alpha == alpha, which spares a 64-bit i % ch per sample.
__global__ void point_kernel(const u16* __restrict__ in, u16* __restrict__ out, u64 n, u32 alpha,
                             bool threshold, u32 maxval, u32 t) {
  for (u64 i = blockIdx.x * u64{blockDim.x} + threadIdx.x; i < n;
       i += u64{gridDim.x} * blockDim.x) {
    const u32 v = in[i];
    u32 r = v;
    if (alpha == 0 || (static_cast<u32>(i) & alpha) != alpha)
      r = threshold ? (v >= t ? maxval : 0u) : maxval - v;
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
  const u32 x0 = blockIdx.x * blur_tile;
  const u32 row = w * ch;
  const u32 tile_samples = (blur_tile + 2 * r) * ch;
  const u32 out_samples = (w - x0 < blur_tile ? w - x0 : blur_tile) * ch;
  // Tile sample i is sample base + i of the row (pixel x0 - r + i / ch, channel i % ch): the
  // division is needed only where that falls outside the row and the edge pixel stands in.
  const std::int64_t base = (std::int64_t{x0} - r) * ch;
  const int step = static_cast<int>(ch);
  for (u32 y = blockIdx.y; y < h; y += gridDim.y) {
    const u16* src = in + u64{y} * row;
    __syncthreads();  // the previous row's tile is no longer read (and q is written)
    for (u32 i = threadIdx.x; i < tile_samples; i += blockDim.x) {
      std::int64_t s = base + i;
      if (s < 0 || s >= row) s = (s < 0 ? 0 : row - ch) + i % ch;
      tile[i] = src[s];
    }
    __syncthreads();
    H* const dst = out + u64{y} * row + x0 * ch;
    for (u32 i = threadIdx.x; i < out_samples; i += blockDim.x) {
      const u16* c = tile + r * ch + i;
      H acc = H{q[0]} * c[0];
      for (int t = 1; t <= r; ++t) acc += H{q[t]} * (H{c[-t * step]} + c[t * step]);
      dst[i] = acc;
    }
  }
}

// Vertical blur over the row sums. A block takes a strip of tx = 2^tx_shift columns (samples) and
// ranges of `rows` rows down it (grid-stride in y), p = blockDim.x / tx output rows a step: a ring
// of 2r + p rows of sums in shared memory holds the step's whole window, and each step replaces
// its p oldest rows. So a block reads each sum of its range once (plus 2r rows of halo), not
// 2r + 1 times. Thread (lx, ly) loads column lx of one new row and sums output row ly of a step.
template <class H>
__global__ void blur_v_kernel(const H* __restrict__ in, u16* __restrict__ out, u32 row, u32 h,
                              u32 rows, u32 tx_shift, img::blur_kernel k, u32 maxval) {
  extern __shared__ __align__(8) unsigned char ring_bytes[];
  H* const ring = reinterpret_cast<H*>(ring_bytes);  // ring_rows x tx sums
  __shared__ u32 q[2 * img::max_blur_radius + 1];    // the whole kernel: q[r + t] weighs y + t
  const int r = k.radius;
  for (int i = threadIdx.x; i <= 2 * r; i += blockDim.x) q[i] = k.q[i < r ? r - i : i - r];
  const u32 tx = 1u << tx_shift, p = blockDim.x >> tx_shift;
  const u32 ring_rows = 2 * r + p, taps = 2 * r + 1;
  const u32 lx = threadIdx.x & (tx - 1), ly = threadIdx.x >> tx_shift;
  const u32 x = blockIdx.x * tx + lx;
  const bool live = x < row;
  H* const col = ring + lx;
  // Image row j (clamped: the replicated border) into ring slot s.
  const auto load = [&](std::int64_t j, u32 s) {
    if (live) col[s * tx] = in[img::clamp_index(j, h) * row + x];
  };
  for (u64 y0 = u64{blockIdx.y} * rows; y0 < h; y0 += u64{gridDim.y} * rows) {
    const u32 end = static_cast<u32>(y0 + rows < h ? y0 + rows : h);
    __syncthreads();  // the previous range's ring is no longer read (and q is written)
    for (u32 s = ly; s < ring_rows; s += p) load(static_cast<std::int64_t>(y0) - r + s, s);
    u32 head = 0;  // the slot of row yb - r, the top of the step's window
    for (u32 yb = static_cast<u32>(y0);;) {
      __syncthreads();
      const u32 y = yb + ly;
      if (live && y < end) {
        // Row y - r + t is in slot head + ly + t, modulo ring_rows: up to the ring's end, then on
        // from its start.
        u32 s = head + ly;
        if (s >= ring_rows) s -= ring_rows;
        const u32 before_wrap = ring_rows - s < taps ? ring_rows - s : taps;
        u64 acc = 0;
        for (u32 t = 0; t < before_wrap; ++t) acc += u64{q[t]} * col[(s + t) * tx];
        for (u32 t = before_wrap; t < taps; ++t) acc += u64{q[t]} * col[(t - before_wrap) * tx];
        out[u64{y} * row + x] = static_cast<u16>(img::blur_finish(acc, maxval));
      }
      yb += p;
      if (yb >= end) break;
      __syncthreads();  // the last window is no longer read
      // Rows yb + r .. yb + r + p - 1 come in where rows yb - p - r .. yb - r - 1 were.
      u32 s = head + ly;
      if (s >= ring_rows) s -= ring_rows;
      load(std::int64_t{yb} + r + ly, s);
      head += p;
      if (head >= ring_rows) head -= ring_rows;
    }
  }
}

// One thread per pixel (every channel), rows in y.
__global__ void sobel_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 w, u32 h,
                             u32 ch, u32 cc, u32 maxval) {
  const u32 x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x >= w) return;
  const u32 row = w * ch;
  const u32 l = static_cast<u32>(img::clamp_index(std::int64_t{x} - 1, w)) * ch, m = x * ch,
            r = static_cast<u32>(img::clamp_index(std::int64_t{x} + 1, w)) * ch;
  for (u32 y = blockIdx.y; y < h; y += gridDim.y) {
    const u16* a = in + img::clamp_index(std::int64_t{y} - 1, h) * row;
    const u16* b = in + u64{y} * row;
    const u16* d = in + img::clamp_index(std::int64_t{y} + 1, h) * row;
    u16* const o = out + u64{y} * row + m;
    for (u32 c = 0; c < ch; ++c, ++a, ++b, ++d) {
      if (c >= cc) {
        o[c] = b[m];
        continue;
      }
      const std::int32_t gx = (a[r] + 2 * b[r] + d[r]) - (a[l] + 2 * b[l] + d[l]);
      const std::int32_t gy = (d[l] + 2 * d[m] + d[r]) - (a[l] + 2 * a[m] + a[r]);
      o[c] = static_cast<u16>(img::sobel_magnitude(gx, gy, maxval));
    }
  }
}

// Output i of a resized axis (n sources -> m outputs) reads sources first .. first + count - 1:
// the first weighs w_first, the last (count > 1) w_last, any between `mid` each (area: they lie
// inside the output, m units each; bilinear has at most two taps). resize_taps_kernel builds them
// once per axis with the shared helpers, so the samples' loops divide only to round.
struct alignas(16) resize_tap {
  u32 first, count, w_first, w_last;
};
static_assert(sizeof(resize_tap) == detail::resize_tap_bytes, "the scratch layout's tap size");

// An axis as the resize kernels take it: its taps, the middle weight, and div_round's divisor
// den (n for area, 2m for bilinear) with magic = ceil(2^64 / 2den). div_round(a, den) =
// floor(N / d) with N = 2a + den, d = 2den, is then umulhi(N, magic), no 64-bit division: the
// error N (magic d - 2^64) / (d 2^64) < N / 2^64 stays below 1/d, so it cannot reach the next
// multiple of d, while N d <= 2^64. Here a <= 65535 den (the weights sum to den <= 2^21), so
// N < 2^38 and d <= 2^22.
struct resize_axis {
  const resize_tap* taps;
  u32 mid;
  u64 den, magic;
};

__global__ void resize_taps_kernel(resize_tap* __restrict__ taps, u32 n, u32 m) {
  for (u32 i = blockIdx.x * blockDim.x + threadIdx.x; i < m; i += gridDim.x * blockDim.x) {
    resize_tap t;
    if (m < n) {
      u64 first = 0, last = 0;
      img::area_span(i, n, m, &first, &last);
      t.first = static_cast<u32>(first);
      t.count = static_cast<u32>(last - first + 1);
      t.w_first = static_cast<u32>(img::area_coverage(i, first, n, m));
      t.w_last = static_cast<u32>(img::area_coverage(i, last, n, m));
    } else {
      const img::bilinear_tap b = img::bilinear_at(i, n, m);
      t.first = static_cast<u32>(b.j0);
      t.count = b.j1 == b.j0 ? 1 : 2;
      t.w_first = static_cast<u32>(b.j1 == b.j0 ? 2 * u64{m} : 2 * u64{m} - b.t);
      t.w_last = static_cast<u32>(b.t);
    }
    taps[i] = t;
  }
}

// The output of tap record t over sources p[0], p[stride], ...
template <class Stride>
__device__ u16 resample(const resize_tap& t, const resize_axis& ax, const u16* p, Stride stride) {
  u64 acc = u64{t.w_first} * p[0];
  if (t.count > 1) {
    u64 between = 0;
    for (u32 j = 1; j + 1 < t.count; ++j) between += p[j * stride];
    acc += between * ax.mid + u64{t.w_last} * p[(t.count - 1) * stride];
  }
  return static_cast<u16>(__umul64hi(2 * acc + ax.den, ax.magic));
}

// Width n -> m, every channel: one thread per output pixel, rows in y.
__global__ void resize_x_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 n, u32 m,
                                u32 h, u32 ch, resize_axis ax) {
  const u32 i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= m) return;
  const resize_tap t = ax.taps[i];
  for (u32 y = blockIdx.y; y < h; y += gridDim.y) {
    const u16* p = in + u64{y} * n * ch + t.first * ch;
    u16* const d = out + (u64{y} * m + i) * ch;
    for (u32 c = 0; c < ch; ++c) d[c] = resample(t, ax, p + c, ch);
  }
}

// Height n -> m over rows of `row` samples: one thread per sample of a row, output rows in y.
__global__ void resize_y_kernel(const u16* __restrict__ in, u16* __restrict__ out, u32 m, u32 row,
                                resize_axis ax) {
  const u32 x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x >= row) return;
  for (u32 i = blockIdx.y; i < m; i += gridDim.y) {
    const resize_tap t = ax.taps[i];
    out[u64{i} * row + x] = resample(t, ax, in + u64{t.first} * row + x, u64{row});
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
  for (const auto& o : ops) {
    if (o.kind == img::op_kind::blur) kernels.push_back(img::make_blur_kernel(o.sigma));
    shapes.push_back(img::output_shape(shapes.back(), o));
  }
  if (ops.empty()) return {d_in, in};
  const image_workspace_sizes need = image_workspace_needs(in, ops);

  if (!done_) done_.emplace(false);
  if (d_buf_[0].size() < need.buffer || d_buf_[1].size() < need.buffer ||
      d_tmp_.size() < need.scratch) {
    // The previous run, and whatever this stream queued after it that reads its result (a copy
    // back, a pack), must be done with the buffers. Never-recorded events count as complete.
    done_->synchronize();
    HETPIPE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    // Each old buffer goes before its successor comes (the two need not fit at once), at the
    // size growth() counts.
    const auto grow = [](device_buffer& b, std::size_t bytes) {
      if (b.size() >= bytes) return;
      const std::size_t size = grown_size(b.size(), bytes);
      b = device_buffer();
      b = device_buffer(size);
    };
    grow(d_buf_[0], need.buffer);
    grow(d_buf_[1], need.buffer);
    grow(d_tmp_, need.scratch);
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
            cur, dst, n, a.color_channels() < a.channels ? a.channels - 1 : 0,
            o.kind == img::op_kind::threshold, a.maxval, o.threshold);
        break;
      case img::op_kind::blur: {
        const img::blur_kernel& kern = kernels[next_kernel++];
        const u32 r = static_cast<u32>(kern.radius), row = a.width * a.channels;
        const dim3 grid_h((a.width + blur_tile - 1) / blur_tile,
                          std::min<u32>(a.height, static_cast<u32>(max_grid_y)));
        const std::size_t shared_h = (blur_tile + 2 * r) * a.channels * sizeof(u16);
        // Row sums of 64 bits where 32 could overflow (16-bit images), else 32.
        const auto blur = [&](auto sum_type) {
          using Sum = decltype(sum_type);
          auto* const d_sums = static_cast<Sum*>(d_tmp_.get());
          blur_h_kernel<Sum><<<grid_h, block_threads, shared_h, s>>>(cur, d_sums, a.width, a.height,
                                                                     a.channels, kern);
          check_launch();
          // The widest strip whose ring fits: 32 columns (a warp reads 128 or 256 contiguous
          // bytes of a row), else 16, else 8 (always fits: 416 rows of 64 bytes at r = 192).
          const auto ring = [&](u32 shift) {
            return (2 * r + (block_threads >> shift)) * (std::size_t{1} << shift) * sizeof(Sum);
          };
          u32 shift = 5;
          while (shift > 3 && ring(shift) > blur_ring_bytes) --shift;
          const u32 tx = 1u << shift, p = block_threads >> shift;
          // Ranges of at least 8r rows: their halo adds at most a quarter to the reads.
          const u32 rows = (std::max<u32>(64, 8 * r) + p - 1) / p * p;
          const dim3 grid_v((row + tx - 1) / tx, std::min<u32>((a.height + rows - 1) / rows,
                                                               static_cast<u32>(max_grid_y)));
          blur_v_kernel<Sum><<<grid_v, block_threads, ring(shift), s>>>(
              d_sums, dst, row, a.height, rows, shift, kern, a.maxval);
        };
        if (img::blur_wide_sums(a.maxval))
          blur(u64{});
        else
          blur(u32{});
        break;
      }
      case img::op_kind::sobel:
        sobel_kernel<<<rows_grid(a.width, a.height, max_grid_y), block_threads, 0, s>>>(
            cur, dst, a.width, a.height, a.channels, a.color_channels(), a.maxval);
        break;
      case img::op_kind::resize: {
        if (b.width == a.width && b.height == a.height) continue;  // nothing to do, cur stays
        // Width first (into the scratch's first-pass image when the height changes too), then
        // height; each axis's taps into the scratch first.
        const detail::resize_scratch layout = detail::resize_scratch_layout(a, b);
        auto* const scratch = static_cast<unsigned char*>(d_tmp_.get());
        const auto axis = [&](std::size_t offset, u32 from, u32 to) {
          auto* const d_taps = reinterpret_cast<resize_tap*>(scratch + offset);
          resize_taps_kernel<<<blocks_for(to), block_threads, 0, s>>>(d_taps, from, to);
          check_launch();
          const u64 den = to < from ? from : 2 * u64{to};
          return resize_axis{d_taps, to < from ? to : 0u, den,
                             ~u64{0} / (2 * den) + 1};  // ceil(2^64 / 2den), as 2den > 1
        };
        const u16* src = cur;
        if (b.width != a.width) {
          const resize_axis ax = axis(layout.taps_x, a.width, b.width);
          u16* const to = b.height != a.height ? reinterpret_cast<u16*>(scratch) : dst;
          resize_x_kernel<<<rows_grid(b.width, a.height, max_grid_y), block_threads, 0, s>>>(
              src, to, a.width, b.width, a.height, a.channels, ax);
          check_launch();
          src = to;
        }
        if (b.height != a.height) {
          const resize_axis ay = axis(layout.taps_y, a.height, b.height);
          const u32 row = b.width * b.channels;
          resize_y_kernel<<<rows_grid(row, b.height, max_grid_y), block_threads, 0, s>>>(
              src, dst, b.height, row, ay);
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

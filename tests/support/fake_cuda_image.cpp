// The image kernels (cuda/image_kernels.hpp) on the fake CUDA runtime, for test_fake_gpu: linked
// instead of image_kernels.cu's object, as fake_cuda.cpp is instead of runtime.cpp's. What image
// lanes depend on is kept: the plan before anything is queued, the two ping-pong buffers grown
// only once the previous run and the stream are done, the event that orders runs, and the result
// pointer (the input itself when nothing changes). Each op's kernel becomes host::img::apply of
// that op, queued on the stream; unpack and pack become the same loops on the host. So the lanes'
// own logic runs for real; the CUDA kernels are the [gpu] tests' business.
#include <algorithm>
#include <cstring>

#include <hetpipe/error.hpp>

#include "cuda/image_kernels.hpp"
#include "host/image_ops.hpp"
#include "support/fake_cuda.hpp"

namespace hetpipe::cuda {

namespace img = host::img;
namespace fc = fake_cuda;

image_result image_workspace::run(const std::uint16_t* d_in, const img::image_shape& in,
                                  const std::vector<img::op>& ops, void* stream) {
  img::check_shape(in);
  if (d_in == nullptr) throw gpu_error("image: null input pointer");
  if (reinterpret_cast<std::uintptr_t>(d_in) % 2 != 0)
    throw gpu_error("image: input samples are not 2-byte aligned");
  std::vector<img::image_shape> shapes{in};
  std::size_t buf_bytes = 0;
  for (const auto& o : ops) {
    if (o.kind == img::op_kind::blur) (void)img::make_blur_kernel(o.sigma);
    shapes.push_back(img::output_shape(shapes.back(), o));
    buf_bytes = std::max(buf_bytes, shapes.back().samples() * sizeof(std::uint16_t));
  }
  if (ops.empty()) return {d_in, in};
  if (!done_) done_.emplace(false);
  if (d_buf_[0].size() < buf_bytes || d_buf_[1].size() < buf_bytes) {
    done_->synchronize();
    stream_synchronize(stream);
    for (auto& b : d_buf_)
      if (b.size() < buf_bytes) {
        const std::size_t size = std::max(buf_bytes, b.size() + b.size() / 2);
        b = device_buffer();
        b = device_buffer(size);
      }
  }
  fc::stream_wait_event(stream, done_->handle());
  const std::uint16_t* cur = d_in;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const img::image_shape a = shapes[k], b = shapes[k + 1];
    if (ops[k].kind == img::op_kind::resize && a.width == b.width && a.height == b.height) continue;
    auto* dst =
        static_cast<std::uint16_t*>(cur == d_buf_[0].get() ? d_buf_[1].get() : d_buf_[0].get());
    fc::launch(stream, [cur, dst, a, b, o = ops[k]] {
      fc::check_device(cur, a.samples() * sizeof(std::uint16_t));
      fc::check_device(dst, b.samples() * sizeof(std::uint16_t));
      img::image im;
      im.shape = a;
      im.samples.assign(cur, cur + a.samples());
      const img::image r = img::apply(im, o);
      if (r.shape != b) throw std::logic_error("fake image kernel: planned shape differs");
      std::memcpy(dst, r.samples.data(), r.samples.size() * sizeof(std::uint16_t));
    });
    cur = dst;
  }
  record_event(done_->handle(), stream);
  return {cur, shapes.back()};
}

void unpack_samples(const void* d_src, img::sample_layout layout, std::uint64_t n,
                    std::uint32_t maxval, std::uint16_t* d_dst, unsigned long long* d_bad,
                    void* stream) {
  if (n == 0) return;
  check_raster_args("unpack_samples", d_src, d_dst, d_bad, layout);
  fc::launch(stream, [=] {
    const auto* src = static_cast<const std::uint8_t*>(d_src);
    fc::check_device(src, n * img::bytes_per_sample(layout));
    fc::check_device(d_dst, n * sizeof(std::uint16_t));
    fc::check_device(d_bad, sizeof *d_bad);
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint32_t v;
      if (layout == img::sample_layout::u8)
        v = src[i];
      else if (layout == img::sample_layout::u16be)
        v = (std::uint32_t{src[2 * i]} << 8) | src[2 * i + 1];
      else
        std::memcpy(&v, src + 2 * i, 2), v &= 0xFFFF;
      d_dst[i] = static_cast<std::uint16_t>(v);
      if (v > maxval) *d_bad = std::min(*d_bad, (static_cast<unsigned long long>(i) << 16) | v);
    }
  });
}

void pack_samples(const std::uint16_t* d_src, std::uint64_t n, img::sample_layout layout,
                  void* d_dst, void* stream) {
  if (n == 0) return;
  check_raster_args("pack_samples", d_dst, d_src, d_src, layout);
  fc::launch(stream, [=] {
    auto* dst = static_cast<std::uint8_t*>(d_dst);
    fc::check_device(d_src, n * sizeof(std::uint16_t));
    fc::check_device(dst, n * img::bytes_per_sample(layout));
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint16_t v = d_src[i];
      if (layout == img::sample_layout::u8)
        dst[i] = static_cast<std::uint8_t>(v);
      else if (layout == img::sample_layout::u16be)
        dst[2 * i] = static_cast<std::uint8_t>(v >> 8),
                dst[2 * i + 1] = static_cast<std::uint8_t>(v);
      else
        std::memcpy(dst + 2 * i, &v, 2);
    }
  });
}

}  // namespace hetpipe::cuda

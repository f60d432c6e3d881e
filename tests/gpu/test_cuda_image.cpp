// The image filter chains on the GPU against host::img::apply, byte for byte.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/image_kernels.hpp"
#include "cuda/runtime.hpp"
#include "host/image_ops.hpp"

namespace {

namespace hc = hetpipe::cuda;
namespace img = hetpipe::host::img;

img::image edged_image(std::uint32_t w, std::uint32_t h, std::uint32_t ch, std::uint32_t maxval,
                       std::uint64_t seed) {
  std::mt19937_64 g(seed);
  img::image im;
  im.shape = {w, h, ch, maxval};
  im.samples.resize(im.shape.samples());
  // Smooth areas with noise and hard edges: blur and sobel see both.
  for (std::uint32_t y = 0; y < h; ++y)
    for (std::uint32_t x = 0; x < w; ++x)
      for (std::uint32_t c = 0; c < ch; ++c) {
        const std::uint64_t r = g();
        const std::uint64_t v =
            (r & 3) == 0 ? r % (maxval + 1) : ((x / 7 + y / 5 + c) % 2) * maxval / 2 + r % 8;
        im.samples[(std::size_t{y} * w + x) * ch + c] =
            static_cast<std::uint16_t>(v > maxval ? maxval : v);
      }
  return im;
}

img::image gpu_apply(hc::image_workspace& ws, const img::image& in, const std::vector<img::op>& ops,
                     hc::stream& s) {
  hc::device_buffer d_in(in.samples.size() * 2);
  hc::copy_h2d_async(d_in.get(), in.samples.data(), in.samples.size() * 2, s);
  const hc::image_result r =
      ws.run(static_cast<const std::uint16_t*>(d_in.get()), in.shape, ops, s.handle());
  img::image out;
  out.shape = r.shape;
  out.samples.resize(r.shape.samples());
  hc::copy_d2h_async(out.samples.data(), r.d_samples, out.samples.size() * 2, s);
  s.synchronize();
  return out;
}

struct size3 {
  std::uint32_t w, h, ch;
};

// Each chain on an image of its size at 8 and 16 bits: the GPU gives the CPU's bytes, and
// growth() predicts what the run allocates.
void same_as_cpu(hc::image_workspace& ws, hc::stream& s,
                 std::span<const std::pair<size3, const char*>> cases, std::uint64_t seed) {
  for (const auto& [sz, chain] : cases)
    for (std::uint32_t maxval : {255u, 65535u}) {
      CAPTURE(sz.w, sz.h, sz.ch, maxval, chain);
      const auto in = edged_image(sz.w, sz.h, sz.ch, maxval, seed++);
      const auto ops = img::parse_ops(chain);
      const auto cpu = img::apply(in, ops, 4);
      const std::size_t before = ws.bytes(), growth = ws.growth(in.shape, ops);
      const auto gpu = gpu_apply(ws, in, ops, s);
      CHECK(ws.bytes() - before == growth);
      REQUIRE(gpu.shape == cpu.shape);
      CHECK(gpu.samples == cpu.samples);
    }
}

}  // namespace

TEST_CASE("GPU image chains give the CPU's bytes on odd sizes, 8 and 16 bits", "[gpu][image]") {
  hc::stream s(0);
  hc::image_workspace ws;  // reused throughout: grows and shrinks between runs
  const char* const chains[] = {"gray",
                                "invert",
                                "threshold:128",
                                "blur:sigma=0.7",
                                "blur:sigma=2",
                                "sobel",
                                "resize:0.5",
                                "resize:2",
                                "resize:0.37",
                                "resize:3.3",
                                "resize:5x3",
                                "resize:1",
                                "gray,blur:sigma=2,sobel",
                                "blur:sigma=0.7,invert,threshold:128",
                                "resize:0.5,blur:sigma=1.5,resize:2,sobel,gray"};
  const size3 sizes[] = {{1, 1, 1},    {1, 1, 3},   {1, 17, 1},  {17, 1, 3}, {1000, 7, 3},
                         {7, 1000, 1}, {33, 29, 4}, {64, 64, 2}, {257, 3, 3}};
  std::uint64_t seed = 1;
  for (const auto& sz : sizes)
    for (std::uint32_t maxval : {255u, 65535u, 1000u})
      for (const char* chain : chains) {
        CAPTURE(sz.w, sz.h, sz.ch, maxval, chain);
        const auto in = edged_image(sz.w, sz.h, sz.ch, maxval, seed++);
        const auto ops = img::parse_ops(chain);
        const auto cpu = img::apply(in, ops);
        const auto gpu = gpu_apply(ws, in, ops, s);
        REQUIRE(gpu.shape == cpu.shape);
        CHECK(gpu.samples == cpu.samples);
      }
}

TEST_CASE("GPU image chains on 1920x1080 and large blur radii", "[gpu][image]") {
  hc::stream s(0);
  hc::image_workspace ws;
  const std::pair<size3, const char*> cases[] = {
      {{1920, 1080, 3}, "gray,blur:sigma=2,sobel"},
      {{1920, 1080, 3}, "resize:0.5"},
      {{1920, 1080, 1}, "resize:2"},
      {{1920, 1080, 4}, "blur:sigma=0.7,invert,threshold:128"},
      {{1919, 1081, 3}, "resize:1280x720"},
      {{300, 200, 3}, "blur:sigma=64"},  // radius 192, wider than a tile side
      {{5, 400, 1}, "blur:sigma=20"}};   // radius 60 > width
  same_as_cpu(ws, s, cases, 100);
}

TEST_CASE("GPU image chains on more rows than a grid has, every blur strip width, extreme resizes",
          "[gpu][image]") {
  hc::stream s(0);
  hc::image_workspace ws;
  const std::pair<size3, const char*> cases[] = {
      {{2, 70000, 4}, "sobel"},  // 70000 rows > 65535 blocks in y: the kernels stride
      {{2, 70000, 4}, "blur:sigma=2"},
      {{2, 70000, 4}, "resize:3x70001"},
      {{2, 70000, 4}, "gray,invert"},
      {{70, 40, 1}, "blur:sigma=25.4"},  // r = 77: 16 columns a strip for 64-bit sums
      {{37, 90, 3}, "blur:sigma=51.7"},  // r = 156: the last radius with 32 for 32-bit sums
      {{37, 90, 3}, "blur:sigma=52.1"},  // r = 157: 16 columns for 32-bit, 8 for 64-bit sums
      {{40, 3100, 1}, "blur:sigma=64"},  // two ranges of 1536 rows a strip
      {{33, 1000, 2}, "blur:sigma=2"},   // 16 ranges of 64 rows
      {{4000, 3, 3}, "resize:1x1"},      // one output from 4000 sources
      {{2, 3, 1}, "resize:3x4000"},
      {{1u << 20, 1, 1}, "resize:3x1"},  // den 2^20, the largest area divisor
      {{2, 1, 1}, "resize:1048576x1"},   // den 2^21, the largest bilinear divisor
      {{1, 1u << 20, 1}, "resize:1x7"},  // ... along y
      {{1, 3, 1}, "resize:1x1048576"}};  // 2^20 output rows
  same_as_cpu(ws, s, cases, 200);
}

TEST_CASE("GPU image run: an empty chain returns the input, bad ops throw before queueing",
          "[gpu][image]") {
  hc::stream s(0);
  hc::image_workspace ws;
  const auto in = edged_image(3, 2, 1, 255, 7);
  hc::device_buffer d_in(in.samples.size() * 2);
  const auto* d = static_cast<const std::uint16_t*>(d_in.get());
  const hc::image_result r = ws.run(d, in.shape, {}, s.handle());
  CHECK(r.d_samples == d);
  CHECK(r.shape == in.shape);
  CHECK(ws.bytes() == 0);
  img::op bad{img::op_kind::blur, 0.0};
  CHECK_THROWS_AS(ws.run(d, in.shape, {bad}, s.handle()), hetpipe::usage_error);
  img::op huge{img::op_kind::resize};
  huge.factor = 1e6;
  CHECK_THROWS_AS(ws.run(d, in.shape, {huge}, s.handle()), hetpipe::input_error);
  s.synchronize();
}

#endif  // HETPIPE_WITH_CUDA

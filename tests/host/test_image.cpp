// The image filters on hand-checked pixels, the integer helpers they share with the GPU, the PNM
// and PNG codecs (round trips, PNG files built byte by byte here, every refusal), and the ops-list
// parser.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hetpipe/error.hpp>

#include "host/crc.hpp"
#include "host/image.hpp"
#include "host/image_ops.hpp"
#include "support/images.hpp"

namespace img = hetpipe::host::img;
using Catch::Matchers::Contains;

namespace {

using u16v = std::vector<std::uint16_t>;

img::image make(std::uint32_t w, std::uint32_t h, std::uint32_t ch, std::uint32_t maxval, u16v s) {
  img::image im;
  im.shape = {w, h, ch, maxval};
  REQUIRE(s.size() == im.shape.samples());
  im.samples = std::move(s);
  return im;
}

using hetpipe::test::random_image;

img::image run(const img::image& in, const char* ops, int threads = 1) {
  return img::apply(in, img::parse_ops(ops), threads);
}

std::vector<std::uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

std::string decode_error(const std::vector<std::uint8_t>& b) {
  try {
    img::decode_image(b.data(), b.size());
  } catch (const hetpipe::input_error& e) {
    CHECK(e.file().empty());
    return e.reason();
  }
  return "(no error)";
}

std::string parse_error(const char* list) {
  try {
    img::parse_ops(list);
  } catch (const hetpipe::usage_error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- a PNG writer for tests: chunks with CRC32, zlib with stored (uncompressed) blocks ---

void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<std::uint8_t>(x >> s));
}

void chunk(std::vector<std::uint8_t>& png, const char* type,
           const std::vector<std::uint8_t>& data) {
  put32(png, static_cast<std::uint32_t>(data.size()));
  std::vector<std::uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  put32(png,
        hetpipe::host::crc_update(hetpipe::host::crc_kind::crc32, 0, body.data(), body.size()));
}

std::vector<std::uint8_t> zlib_stored(const std::vector<std::uint8_t>& raw) {
  std::vector<std::uint8_t> z = {0x78, 0x01};
  const std::size_t n = raw.size();  // tests keep it < 65536: one final stored block
  z.push_back(1);
  z.push_back(static_cast<std::uint8_t>(n));
  z.push_back(static_cast<std::uint8_t>(n >> 8));
  z.push_back(static_cast<std::uint8_t>(~n));
  z.push_back(static_cast<std::uint8_t>(~n >> 8));
  z.insert(z.end(), raw.begin(), raw.end());
  std::uint32_t a = 1, b = 0;
  for (std::uint8_t c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put32(z, (b << 16) | a);
  return z;
}

// A zlib stream of 1 + 258 * matches zero bytes in one block of fixed Huffman codes: a literal
// zero, then `matches` times "length 258 (code 285), distance 1" in 13 bits (about 160:1).
std::vector<std::uint8_t> zlib_zeros(std::size_t matches) {
  std::vector<std::uint8_t> z = {0x78, 0x01};
  std::uint32_t acc = 0;
  int n = 0;
  const auto bits = [&](std::uint32_t v, int count) {  // least significant bit first
    acc |= v << n;
    n += count;
    for (; n >= 8; n -= 8, acc >>= 8) z.push_back(static_cast<std::uint8_t>(acc));
  };
  const auto code = [&](std::uint32_t c, int len) {  // Huffman codes: most significant bit first
    for (int i = len - 1; i >= 0; --i) bits((c >> i) & 1, 1);
  };
  bits(1, 1);  // the final block
  bits(1, 2);  // fixed Huffman codes
  code(0x30, 8);
  for (std::size_t i = 0; i < matches; ++i) {
    code(0xC5, 8);
    code(0, 5);
  }
  code(0, 7);  // end of block
  if (n) bits(0, 8 - n);
  put32(z, static_cast<std::uint32_t>((1 + 258 * matches) % 65521) << 16 | 1);  // Adler-32
  return z;
}

// scanlines: each row already starts with its filter byte (0 = none).
std::vector<std::uint8_t> make_png(
    std::uint32_t w, std::uint32_t h, std::uint8_t depth, std::uint8_t color,
    const std::vector<std::uint8_t>& scanlines,
    const std::vector<std::pair<const char*, std::vector<std::uint8_t>>>& extra = {},
    std::uint8_t interlace = 0) {
  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr.insert(ihdr.end(), {depth, color, 0, 0, interlace});
  chunk(png, "IHDR", ihdr);
  for (const auto& [type, data] : extra) chunk(png, type, data);
  chunk(png, "IDAT", zlib_stored(scanlines));
  chunk(png, "IEND", {});
  return png;
}

// The blur by its definition, straight from the 2-D sum (no separable passes, no scratch rows).
img::image reference_blur(const img::image& in, double sigma) {
  const img::blur_kernel k = img::make_blur_kernel(sigma);
  img::image out = in;
  const auto& s = in.shape;
  for (std::int64_t y = 0; y < s.height; ++y)
    for (std::int64_t x = 0; x < s.width; ++x)
      for (std::uint32_t c = 0; c < s.channels; ++c) {
        std::uint64_t acc = 0;
        for (int dy = -k.radius; dy <= k.radius; ++dy)
          for (int dx = -k.radius; dx <= k.radius; ++dx) {
            const auto yy = img::clamp_index(y + dy, s.height);
            const auto xx = img::clamp_index(x + dx, s.width);
            acc += std::uint64_t{k.q[std::abs(dy)]} * k.q[std::abs(dx)] *
                   in.samples[(yy * s.width + xx) * s.channels + c];
          }
        const std::uint64_t v = (acc + (1ull << 47)) >> 48;
        out.samples[(y * s.width + x) * s.channels + c] =
            static_cast<std::uint16_t>(std::min<std::uint64_t>(v, s.maxval));
      }
  return out;
}

// Sobel by its definition: the 3x3 neighbourhood with replicated borders, every colour channel,
// alpha copied.
img::image reference_sobel(const img::image& in) {
  img::image out = in;
  const auto& s = in.shape;
  const auto at = [&](std::int64_t x, std::int64_t y, std::uint32_t c) -> std::int32_t {
    x = img::clamp_index(x, s.width), y = img::clamp_index(y, s.height);
    return in.samples[(y * s.width + x) * s.channels + c];
  };
  for (std::int64_t y = 0; y < s.height; ++y)
    for (std::int64_t x = 0; x < s.width; ++x)
      for (std::uint32_t c = 0; c < s.color_channels(); ++c) {
        const std::int32_t gx = (at(x + 1, y - 1, c) + 2 * at(x + 1, y, c) + at(x + 1, y + 1, c)) -
                                (at(x - 1, y - 1, c) + 2 * at(x - 1, y, c) + at(x - 1, y + 1, c));
        const std::int32_t gy = (at(x - 1, y + 1, c) + 2 * at(x, y + 1, c) + at(x + 1, y + 1, c)) -
                                (at(x - 1, y - 1, c) + 2 * at(x, y - 1, c) + at(x + 1, y - 1, c));
        out.samples[(y * s.width + x) * s.channels + c] =
            static_cast<std::uint16_t>(img::sobel_magnitude(gx, gy, s.maxval));
      }
  return out;
}

// resize by its definition: width first, then height, each output sample straight from the
// shared tap helpers and div_round (no tap tables, no shortcuts in the division).
img::image reference_resize(const img::image& in, std::uint32_t w2, std::uint32_t h2) {
  const auto axis = [](std::uint64_t i, std::uint64_t n, std::uint64_t m,
                       const auto& at) -> std::uint16_t {
    if (m == n) return static_cast<std::uint16_t>(at(i));
    std::uint64_t acc = 0, den = 0;
    if (m < n) {
      std::uint64_t f = 0, l = 0;
      img::area_span(i, n, m, &f, &l);
      for (std::uint64_t j = f; j <= l; ++j) acc += img::area_coverage(i, j, n, m) * at(j);
      den = n;
    } else {
      const img::bilinear_tap b = img::bilinear_at(i, n, m);
      acc = (2 * m - b.t) * at(b.j0) + b.t * at(b.j1);
      den = 2 * m;
    }
    return static_cast<std::uint16_t>(img::div_round(acc, den));
  };
  const auto& s = in.shape;
  img::image mid;
  mid.shape = {w2, s.height, s.channels, s.maxval};
  mid.samples.resize(mid.shape.samples());
  for (std::uint64_t y = 0; y < s.height; ++y)
    for (std::uint64_t x = 0; x < w2; ++x)
      for (std::uint32_t c = 0; c < s.channels; ++c)
        mid.samples[(y * w2 + x) * s.channels + c] = axis(x, s.width, w2, [&](std::uint64_t j) {
          return std::uint64_t{in.samples[(y * s.width + j) * s.channels + c]};
        });
  img::image out;
  out.shape = {w2, h2, s.channels, s.maxval};
  out.samples.resize(out.shape.samples());
  for (std::uint64_t y = 0; y < h2; ++y)
    for (std::uint64_t x = 0; x < w2; ++x)
      for (std::uint32_t c = 0; c < s.channels; ++c)
        out.samples[(y * w2 + x) * s.channels + c] = axis(y, s.height, h2, [&](std::uint64_t j) {
          return std::uint64_t{mid.samples[(j * w2 + x) * s.channels + c]};
        });
  return out;
}

// Runs body with each build of the row kernels this CPU runs (AVX-512, AVX2 and the loops, which
// every CPU runs), then goes back to the best.
template <class Body>
void each_kernel_build(Body body) {
  const auto builds = img::kernel_builds();
  for (const auto b : builds) {
    INFO("kernels " << b);
    REQUIRE(img::use_kernels(b));
    body();
  }
  REQUIRE(img::use_kernels(builds.front()));
}

// `ops` over `in` gives `want`, on one thread and on two, with each build of the row kernels.
void check_every_build(const img::image& in, const std::vector<img::op>& ops,
                       const img::image& want) {
  each_kernel_build([&] {
    CHECK(img::apply(in, ops).samples == want.samples);
    CHECK(img::apply(in, ops, 2).samples == want.samples);
  });
}

}  // namespace

// --- integer helpers ---

TEST_CASE("luma is BT.601 in integers, rounded half up", "[image]") {
  CHECK(img::luma(255, 0, 0) == 76);  // 76.245 + 0.5
  CHECK(img::luma(0, 255, 0) == 150);
  CHECK(img::luma(0, 0, 255) == 29);
  CHECK(img::luma(255, 255, 255) == 255);
  CHECK(img::luma(65535, 65535, 65535) == 65535);
  CHECK(img::luma(100, 150, 200) == 141);  // 141.25
  CHECK(img::luma(0, 0, 5) == 1);          // 0.57
  CHECK(img::luma(0, 0, 4) == 0);          // 0.456
}

TEST_CASE("isqrt_round is round(sqrt(s)) exactly, ties impossible", "[image]") {
  CHECK(img::isqrt_round(0) == 0);
  CHECK(img::isqrt_round(1) == 1);
  CHECK(img::isqrt_round(2) == 1);
  CHECK(img::isqrt_round(3) == 2);
  CHECK(img::isqrt_round(6) == 2);
  CHECK(img::isqrt_round(7) == 3);
  for (std::uint64_t m :
       {2ull, 3ull, 255ull, 1000ull, 65535ull, 262140ull, 370727ull, 67108863ull}) {
    CHECK(img::isqrt_round(m * m) == m);
    CHECK(img::isqrt_round(m * m + m) == m);  // sqrt < m + 1/2
    CHECK(img::isqrt_round(m * m + m + 1) == m + 1);
    CHECK(img::isqrt_round(m * m - 1) == m);
  }
  // Every s up to 2^22 and around every square up to 2^40, against the definition.
  for (std::uint64_t v = 0; v < (1u << 22); ++v) {
    const std::uint64_t r = img::isqrt_round(v);
    // r = round(sqrt(v)) <=> (r - 1/2)^2 <= v < (r + 1/2)^2 <=> r^2 - r < v <= r^2 + r.
    if (v != 0 && !(r * r - r < v && v <= r * r + r)) FAIL("isqrt_round(" << v << ") = " << r);
  }
  for (std::uint64_t m = 2; m < (1u << 20); m += 997)
    for (std::uint64_t v = m * m - m; v <= m * m + m + 1; ++v) {
      const std::uint64_t r = img::isqrt_round(v);
      if (!(r * r - r < v && v <= r * r + r)) FAIL("isqrt_round(" << v << ") = " << r);
    }
  CHECK(img::sobel_magnitude(3, 4, 255) == 5);
  CHECK(img::sobel_magnitude(-1, 2, 255) == 2);  // 2.236
  CHECK(img::sobel_magnitude(1000, 0, 255) == 255);
  CHECK(img::sobel_magnitude(-262140, -262140, 65535) == 65535);
}

TEST_CASE("round_sqrt_small equals isqrt_round over its whole range", "[image]") {
  // Every s it is defined for (the 8-bit Sobel's sums need s < 2 * 1020^2 + 1), one by one.
  STATIC_REQUIRE(img::round_sqrt_small_end > 2 * 1020 * 1020);
  for (std::uint32_t s = 0; s < img::round_sqrt_small_end; ++s)
    if (img::round_sqrt_small(s) != img::isqrt_round(s))
      FAIL("round_sqrt_small(" << s << ") = " << img::round_sqrt_small(s));
  // Past its end it is off: the bound is where the float square root stops sufficing.
  CHECK(img::round_sqrt_small(4196352) != img::isqrt_round(4196352));
}

TEST_CASE("blur weights are symmetric integers summing to exactly 2^24", "[image]") {
  for (double sigma : {0.1, 0.5, 0.7, 1.0, 1.5, 2.0, 3.3, 10.0, 64.0}) {
    CAPTURE(sigma);
    const img::blur_kernel k = img::make_blur_kernel(sigma);
    CHECK(k.radius == static_cast<int>(std::ceil(3 * sigma)));
    std::uint64_t sum = k.q[0];
    double wsum = 1;
    for (int i = 1; i <= k.radius; ++i) {
      sum += 2 * k.q[i];
      wsum += 2 * std::exp(-i * i / (2 * sigma * sigma));
    }
    CHECK(sum == img::blur_one);
    for (int i = 0; i <= k.radius; ++i)
      CHECK(std::abs(k.q[i] - 16777216 * std::exp(-i * i / (2 * sigma * sigma)) / wsum) < 1);
  }
  // sigma = 1: 2^24 w_k / sum(w) = 6694952.74, 4060694.10, 906063.32, 74374.21: floors leave 2
  // units, one pair, to k = 2 (largest fraction of k >= 1).
  const img::blur_kernel k = img::make_blur_kernel(1.0);
  CHECK(k.radius == 3);
  CHECK(k.q[1] == 4060694);
  CHECK(k.q[2] == 906064);
  CHECK(k.q[3] == 74374);
  CHECK(k.q[0] == (1u << 24) - 2 * (4060694 + 906064 + 74374));
  CHECK_THROWS_AS(img::make_blur_kernel(0), hetpipe::usage_error);
  CHECK_THROWS_AS(img::make_blur_kernel(64.5), hetpipe::usage_error);
  // So small a sigma that 2 sigma^2 underflows to 0 (once a NaN weight and a crash): the identity.
  for (double sigma : {1e-170, 1e-300, 4.9e-324}) {
    CAPTURE(sigma);
    const img::blur_kernel t = img::make_blur_kernel(sigma);
    CHECK(t.radius == 1);
    CHECK(t.q[0] == img::blur_one);
    CHECK(t.q[1] == 0);
  }
}

TEST_CASE("resize taps: area coverage sums to n, bilinear weights to 2m", "[image]") {
  for (std::uint64_t n : {2u, 3u, 7u, 100u, 1920u})
    for (std::uint64_t m = 1; m < n; m += (n > 20 ? 17 : 1)) {
      for (std::uint64_t i = 0; i < m; ++i) {
        std::uint64_t f = 0, l = 0, cov = 0;
        img::area_span(i, n, m, &f, &l);
        for (std::uint64_t j = f; j <= l; ++j) {
          const auto c = img::area_coverage(i, j, n, m);
          CHECK(c >= 1);
          CHECK(c <= m);
          cov += c;
        }
        CHECK(cov == n);
      }
    }
  const img::bilinear_tap t = img::bilinear_at(1, 2, 4);  // s = 0.25
  CHECK(t.j0 == 0);
  CHECK(t.j1 == 1);
  CHECK(t.t == 2);  // of 8
}

// --- operations ---

TEST_CASE("gray: BT.601 luma of RGB, alpha dropped, gray unchanged", "[image]") {
  const auto rgb = make(3, 1, 3, 255, {255, 0, 0, 0, 255, 0, 100, 150, 200});
  const auto g = run(rgb, "gray");
  CHECK(g.shape == img::image_shape{3, 1, 1, 255});
  CHECK(g.samples == u16v{76, 150, 141});

  const auto rgba = make(1, 2, 4, 65535, {1000, 2000, 3000, 7, 65535, 65535, 65535, 0});
  const auto g16 = run(rgba, "gray");
  CHECK(g16.shape == img::image_shape{1, 2, 1, 65535});
  CHECK(g16.samples == u16v{1815, 65535});  // 1815.5 - 0.5: (1815000 + 500) / 1000

  const auto ga = make(2, 1, 2, 255, {10, 200, 20, 100});
  CHECK(run(ga, "gray").samples == u16v{10, 20});
  const auto gray = make(1, 3, 1, 255, {1, 2, 3});
  CHECK(run(gray, "gray").samples == gray.samples);
}

TEST_CASE("invert and threshold act on colour channels and keep alpha", "[image]") {
  const auto rgba = make(2, 1, 4, 255, {0, 127, 128, 9, 255, 1, 200, 250});
  CHECK(run(rgba, "invert").samples == u16v{255, 128, 127, 9, 0, 254, 55, 250});
  CHECK(run(rgba, "threshold:128").samples == u16v{0, 0, 255, 9, 255, 0, 255, 250});
  const auto g = make(3, 1, 1, 1000, {0, 999, 1000});
  CHECK(run(g, "invert").samples == u16v{1000, 1, 0});
  CHECK(run(g, "threshold:999").samples == u16v{0, 1000, 1000});
  CHECK(run(g, "threshold:0").samples == u16v{1000, 1000, 1000});
}

TEST_CASE("blur of an impulse is the outer product of the integer weights", "[image]") {
  u16v s(49, 0);
  s[3 * 7 + 3] = 255;
  const auto in = make(7, 7, 1, 255, s);
  const auto out = run(in, "blur:sigma=1");
  const img::blur_kernel k = img::make_blur_kernel(1.0);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 7; ++x) {
      const std::uint64_t a = 255ull * k.q[std::abs(x - 3)] * k.q[std::abs(y - 3)];
      CHECK(out.samples[y * 7 + x] == (a + (1ull << 47)) >> 48);
    }
  CHECK(k.q[0] == 6694952);
  CHECK(out.samples[3 * 7 + 3] == 41);  // 255 * 6694952^2 / 2^48 = 40.61
}

TEST_CASE("the row kernels' builds: the best first, the loops always", "[image]") {
  const auto builds = img::kernel_builds();
  REQUIRE(!builds.empty());
  CHECK(builds.back() == "loops");
  CHECK_FALSE(img::use_kernels("sse9"));
  for (const auto b : builds) CHECK(img::use_kernels(b));
  CHECK(img::use_kernels(builds.front()));
}

TEST_CASE("blur keeps constant images, 1x1 images and matches the 2-D definition", "[image]") {
  const auto c = make(5, 3, 3, 65535, u16v(45, 40000));
  CHECK(run(c, "blur:sigma=2.5").samples == c.samples);
  const auto one = make(1, 1, 4, 255, {1, 2, 3, 4});
  CHECK(run(one, "blur:sigma=3").samples == one.samples);
  const auto step = make(4, 1, 1, 255, {0, 0, 0, 255});  // border replicated: 255 beyond the end
  CHECK(run(step, "blur:0.5").samples == reference_blur(step, 0.5).samples);
  // Rows of 1 to 9 samples, and rows long enough for the vector passes' blocks with every tail.
  for (auto [w, h, ch, maxval] : {std::array<std::uint32_t, 4>{1, 9, 1, 255},
                                  {9, 1, 3, 255},
                                  {7, 5, 4, 65535},
                                  {13, 11, 2, 1000},
                                  {3, 3, 3, 255},
                                  {64, 6, 1, 255},
                                  {95, 4, 1, 255},
                                  {33, 5, 3, 255},
                                  {41, 3, 2, 255},
                                  {70, 4, 3, 65535},
                                  {2, 60, 3, 255},
                                  {200, 2, 1, 255}})
    // sigma 8: a radius of 24, more than the width or the height of most (the border is
    // replicated in doubling runs; the ring holds all the rows of an image of fewer than 2r + 1).
    for (double sigma : {0.3, 0.7, 1.0, 2.0, 8.0}) {
      CAPTURE(w, h, ch, maxval, sigma);
      const auto in = random_image(w, h, ch, maxval, w * 100 + h);
      check_every_build(in, {img::op{img::op_kind::blur, sigma}}, reference_blur(in, sigma));
    }
}

// The vector builds estimate 8-bit blurs' vertical sums in float and compute in integers the
// outputs whose estimate lies near a rounding boundary (host/image_ops.cpp, blur_float_margin).
// Rows of one value g_k each: the output of the middle row of 13 is sum_k q_k g_k / 2^24, a tie
// when that sum is 2^23 modulo 2^24. Blocks of 13 such rows with sums at and around the ties (in
// the margin of 9 * 256 and past it) are searched for, then blurred by every build.
TEST_CASE("blur's float estimates: ties and near-ties of 8-bit outputs are exact", "[image]") {
  const img::blur_kernel k = img::make_blur_kernel(2.0);
  REQUIRE(k.radius == 6);
  const std::int64_t offsets[] = {0,    1,     -1,   2,     -2,   2303, -2303,
                                  2304, -2304, 2305, -2305, 5000, -5000};
  std::vector<std::array<std::uint16_t, 13>> blocks;
  std::mt19937_64 g(42);
  for (const std::int64_t d : offsets) {
    const std::uint32_t want = static_cast<std::uint32_t>((std::int64_t{1} << 23) + d) & 0xFFFFFF;
    bool found = false;
    for (int attempt = 0; attempt < 100000 && !found; ++attempt) {
      std::array<std::uint16_t, 13> v;
      std::uint32_t base = 0;
      for (int t = 0; t < 13; ++t) {
        v[t] = static_cast<std::uint16_t>(g() % 256);
        if (t != 5 && t != 6) base += k.q[std::abs(t - 6)] * v[t];
      }
      // rows 5 and 6 (weights q_1 and q_0) tried every way
      for (std::uint32_t a = 0; a < 256 && !found; ++a)
        for (std::uint32_t b = 0; b < 256; ++b)
          if (((base + k.q[1] * a + k.q[0] * b) & 0xFFFFFF) == want) {
            v[5] = static_cast<std::uint16_t>(a), v[6] = static_cast<std::uint16_t>(b);
            blocks.push_back(v);
            found = true;
            break;
          }
    }
    CAPTURE(d);
    REQUIRE(found);
  }
  const std::uint32_t w = 77;  // the vector blocks and a tail
  img::image in;
  in.shape = {w, static_cast<std::uint32_t>(13 * blocks.size()), 1, 255};
  for (const auto& v : blocks)
    for (const std::uint16_t x : v) in.samples.insert(in.samples.end(), w, x);
  const img::image want = reference_blur(in, 2.0);
  // The middle rows are what was searched for: a tie rounds up.
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    std::uint64_t sum = 0;
    for (int t = 0; t < 13; ++t) sum += std::uint64_t{k.q[std::abs(t - 6)]} * blocks[b][t];
    CHECK(want.samples[(13 * b + 6) * w] == (sum + (1u << 23)) >> 24);
    if (offsets[b] == 0) CHECK((sum & 0xFFFFFF) == (1u << 23));
  }
  check_every_build(in, {img::op{img::op_kind::blur, 2.0}}, want);
  // The same rows as RGB: every channel's outputs at the same ties, the inner blocks among them
  // summed exactly in vector lanes whose taps are three samples apart.
  img::image rgb;
  rgb.shape = {w, in.shape.height, 3, 255};
  for (const std::uint16_t x : in.samples)
    rgb.samples.insert(rgb.samples.end(), {x, x, static_cast<std::uint16_t>(255 - x)});
  check_every_build(rgb, {img::op{img::op_kind::blur, 2.0}}, reference_blur(rgb, 2.0));
}

// Wide rows, whose rings of sums the blur keeps with rows padded apart (ring_stride in
// host/image_ops.cpp: 8192 floats, 32 KiB, put every row in the same L1 sets): 8-bit rows of
// 8192 samples (the float and integer sums), 16-bit RGB rows of 3 x 700 (64-bit sums), and a
// width just past the 1 KiB below which rows stay unpadded; each against the 2-D definition.
TEST_CASE("blur of wide rows matches the 2-D definition in every build", "[image]") {
  for (auto [w, h, ch, maxval] :
       {std::array<std::uint32_t, 4>{8192, 17, 1, 255}, {700, 9, 3, 65535}, {257, 15, 1, 255}}) {
    CAPTURE(w, h, ch, maxval);
    const auto in = random_image(w, h, ch, maxval, w + h);
    check_every_build(in, {img::op{img::op_kind::blur, 2.0}}, reference_blur(in, 2.0));
  }
}

// Larger random 8-bit images, where every build must give the integer loops' bytes: about 2.7e-4
// of the outputs at sigma 2 and 0.6% at sigma 64 take the integer fallback.
TEST_CASE("blur of 8-bit images: every build gives the loops' bytes", "[image]") {
  for (const double sigma : {0.8, 2.0, 5.0, 64.0}) {
    CAPTURE(sigma);
    const auto in = random_image(1000, 200, 1, 255, 17);
    const std::vector<img::op> ops{img::op{img::op_kind::blur, sigma}};
    REQUIRE(img::use_kernels("loops"));
    const img::image want = img::apply(in, ops);
    check_every_build(in, ops, want);
  }
}

TEST_CASE("sobel matches its definition on rows of every length and tail", "[image]") {
  // Random samples, and samples of 0 and maxval only (the largest gradients, clamped).
  for (auto [w, h, ch, maxval] : {std::array<std::uint32_t, 4>{1, 5, 1, 255},
                                  {2, 4, 1, 255},  // edge pixels only (sobel_stage's copies)
                                  {3, 3, 3, 255},
                                  {2, 3, 4, 65535},
                                  {16, 3, 1, 255},
                                  {17, 4, 1, 255},
                                  {47, 5, 1, 255},
                                  {64, 3, 1, 200},
                                  {21, 4, 3, 255},
                                  {18, 3, 4, 255},
                                  {40, 3, 2, 255},
                                  {37, 4, 1, 65535},
                                  {23, 3, 3, 1000},
                                  // 2^18 gradients: many sqrt(s) just above a half (a
                                  // rounding off by 0.01 fails here)
                                  {512, 512, 1, 255}})
    for (int binary : {0, 1}) {
      CAPTURE(w, h, ch, maxval, binary);
      auto in = random_image(w, h, ch, maxval, w * 7 + h);
      if (binary)
        for (auto& v : in.samples) v = v % 2 ? static_cast<std::uint16_t>(maxval) : 0;
      check_every_build(in, img::parse_ops("sobel"), reference_sobel(in));
    }
}

TEST_CASE("sobel of a vertical step edge and on every colour channel", "[image]") {
  const auto step = make(4, 3, 1, 255, {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10});
  CHECK(run(step, "sobel").samples == u16v{0, 40, 40, 0, 0, 40, 40, 0, 0, 40, 40, 0});
  const auto big = make(4, 1, 1, 255, {0, 0, 255, 255});
  CHECK(run(big, "sobel").samples == u16v{0, 255, 255, 0});  // 1020 clamped
  // Horizontal step in 16-bit: gy = 4 * 100 on the rows next to it.
  const auto hstep = make(2, 3, 1, 65535, {0, 0, 0, 0, 100, 100});
  CHECK(run(hstep, "sobel").samples == u16v{0, 0, 400, 400, 400, 400});
  // gx = 3, gy = 4 at the centre of a 3x3 with one corner pixel: p22 = 1 -> gx = 1, gy = 1 ->
  // round(1.414) = 1; p02 = 2, p22 = 1 -> gx = 3, gy = 1 - 2 = -1 -> round(3.16) = 3.
  const auto corner = make(3, 3, 1, 255, {0, 0, 2, 0, 0, 0, 0, 0, 1});
  CHECK(run(corner, "sobel").samples[4] == 3);
  const auto rgba = make(1, 1, 4, 255, {9, 8, 7, 77});
  CHECK(run(rgba, "sobel").samples == u16v{0, 0, 0, 77});
}

TEST_CASE("resize down averages areas, up interpolates pixel centres", "[image]") {
  const auto in =
      make(4, 4, 1, 255, {10, 20, 0, 2, 30, 40, 4, 6, 100, 100, 255, 255, 200, 200, 255, 255});
  const auto half = run(in, "resize:0.5");
  CHECK(half.shape == img::image_shape{2, 2, 1, 255});
  CHECK(half.samples == u16v{25, 3, 150, 255});
  CHECK(run(in, "resize:2x2").samples == half.samples);

  // 3 -> 2: output 0 = (2 * 0 + 1 * 90) / 3, output 1 = (1 * 90 + 2 * 180) / 3.
  CHECK(run(make(3, 1, 1, 255, {0, 90, 180}), "resize:2x1").samples == u16v{30, 150});
  CHECK(run(make(1, 3, 1, 255, {0, 90, 180}), "resize:1x2").samples == u16v{30, 150});

  const auto up = run(make(2, 2, 1, 255, {0, 100, 100, 200}), "resize:2");
  CHECK(up.shape == img::image_shape{4, 4, 1, 255});
  CHECK(up.samples ==
        u16v{0, 25, 75, 100, 25, 50, 100, 125, 75, 100, 150, 175, 100, 125, 175, 200});
  // Rounding half up: 0.5 -> 1, 1.5 -> 2.
  CHECK(run(make(2, 1, 1, 255, {0, 2}), "resize:4x1").samples == u16v{0, 1, 2, 2});
  const auto px = run(make(1, 1, 3, 65535, {1, 2, 65535}), "resize:3");
  CHECK(px.shape == img::image_shape{3, 3, 3, 65535});
  for (std::size_t i = 0; i < px.samples.size(); i += 3)
    CHECK(u16v(px.samples.begin() + i, px.samples.begin() + i + 3) == u16v{1, 2, 65535});
  // Rounded target sizes; a factor of 1 changes nothing.
  CHECK(img::output_shape({5, 3, 1, 255}, img::parse_ops("resize:0.5")[0]) ==
        img::image_shape{3, 2, 1, 255});
  CHECK(img::output_shape({1, 1, 1, 255}, img::parse_ops("resize:0.1")[0]) ==
        img::image_shape{1, 1, 1, 255});
  const auto r = random_image(7, 5, 3, 255, 3);
  CHECK(run(r, "resize:1").samples == r.samples);
  CHECK_THROWS_AS(img::output_shape({65536, 65536, 1, 255}, img::parse_ops("resize:2")[0]),
                  hetpipe::input_error);
  try {  // the factor as it was written
    (void)img::output_shape({64, 48, 1, 255}, img::parse_ops("resize:100000")[0]);
    FAIL("no error");
  } catch (const hetpipe::input_error& e) {
    CHECK(e.reason().rfind("resize:100000 of a 64x48 image is larger than the limit", 0) == 0);
  }
}

TEST_CASE("resize matches its definition for shrinking and growing by any ratio", "[image]") {
  // Small and odd sizes both ways, RGB and gray, 8 and 16 bits.
  for (auto [w, h, ch, maxval, w2, h2] : {std::array<std::uint32_t, 6>{37, 21, 3, 255, 18, 10},
                                          {37, 21, 3, 255, 80, 45},
                                          {64, 9, 1, 65535, 63, 17},
                                          {5, 7, 1, 255, 33, 2},
                                          {100, 3, 4, 65535, 7, 11},
                                          {3, 50, 2, 1000, 3, 49}}) {
    CAPTURE(w, h, ch, maxval, w2, h2);
    const auto in = random_image(w, h, ch, maxval, w + h);
    const std::string op = "resize:" + std::to_string(w2) + "x" + std::to_string(h2);
    const auto want = reference_resize(in, w2, h2);
    CHECK(img::apply(in, img::parse_ops(op)).samples == want.samples);
    CHECK(img::apply(in, img::parse_ops(op), 3).samples == want.samples);
  }
  // Averages of exactly k - 1/2, rounded up to k, for every even divisor up to 1000: the division
  // comes out as k - 2^-40 through a reciprocal for many of them (den = 98, 196, 206, ...).
  for (std::uint32_t n = 2; n <= 1000; n += 2) {
    const std::uint16_t k = static_cast<std::uint16_t>(1 + n % 255);
    img::image in = make(n, 1, 1, 255, u16v(n, k));
    for (std::uint32_t i = 0; i < n; i += 2) in.samples[i] = static_cast<std::uint16_t>(k - 1);
    CAPTURE(n, k);
    REQUIRE(run(in, "resize:1x1").samples == u16v{k});
  }
  // The largest divisors (area: den = n up to 2^20; bilinear: den = 2m up to 2^21), on 16-bit
  // samples whose sums come nearest the division's bounds.
  for (auto [w, w2] : {std::array<std::uint32_t, 2>{1u << 20, (1u << 20) - 1},
                       {(1u << 20) - 3, 1000},
                       {3, 1u << 20},
                       {1000, (1u << 20) - 1}}) {
    CAPTURE(w, w2);
    auto in = random_image(w, 1, 1, 65535, w2);
    for (std::size_t i = 0; i < in.samples.size(); i += 3) in.samples[i] = 65535;
    const std::string op = "resize:" + std::to_string(w2) + "x1";
    CHECK(img::apply(in, img::parse_ops(op)).samples == reference_resize(in, w2, 1).samples);
  }
}

TEST_CASE("a chain runs in order and threads change nothing", "[image]") {
  const auto in = random_image(61, 37, 3, 255, 11);
  const auto a = run(in, "gray,blur:sigma=1.5,sobel,resize:0.5");
  CHECK(a.shape == img::image_shape{31, 19, 1, 255});
  CHECK(run(in, "gray,blur:sigma=1.5,sobel,resize:0.5", 2).samples == a.samples);
  auto step = run(in, "gray");
  step = run(step, "blur:1.5");
  step = run(step, "sobel");
  step = run(step, "resize:0.5");
  CHECK(step.samples == a.samples);
  const auto in16 = random_image(33, 65, 4, 65535, 12);
  CHECK(run(in16, "blur:sigma=0.7,invert,threshold:32768,resize:1.7", 1).samples ==
        run(in16, "blur:sigma=0.7,invert,threshold:32768,resize:1.7", 2).samples);
}

// Images tall enough that threads cut them into bands (64 rows at least each): every band makes
// the rows its ops need around its edges again, and the result must not show where bands meet.
TEST_CASE("a chain in bands equals its ops one at a time", "[image]") {
  const char* chains[] = {"gray,blur:sigma=2,sobel",
                          "blur:sigma=1.5,sobel,resize:0.37",
                          "resize:0.5,blur:0.6,resize:1.9,sobel",
                          "sobel,sobel,invert,blur:3,threshold:100",
                          "resize:97x211,gray",
                          "blur:sigma=9"};
  struct shape {
    std::uint32_t w, h, ch, maxval;
  };
  for (const shape s : {shape{53, 400, 3, 255}, shape{19, 333, 1, 65535}, shape{7, 257, 4, 255},
                        shape{40, 130, 2, 4095}}) {
    const auto in = random_image(s.w, s.h, s.ch, s.maxval, s.w + s.h);
    for (const char* chain : chains) {
      CAPTURE(s.w, s.h, s.ch, s.maxval, chain);
      const auto ops = img::parse_ops(chain);
      img::image step = in;
      for (const auto& o : ops) step = img::apply(step, o);
      for (int threads : {1, 2, 3, 7}) {
        CAPTURE(threads);
        const auto all = run(in, chain, threads);
        CHECK(all.shape == step.shape);
        CHECK(all.samples == step.samples);
      }
    }
  }
}

// A PNM's raster goes through the chain where it lies: u8 and u16be in, any layout out (an 8-bit
// Sobel output narrowed in the kernel, make_u8), with each build of the row kernels.
TEST_CASE("the chain from a raster equals decode, apply, encode", "[image]") {
  for (auto [ch, maxval] : {std::pair<std::uint32_t, std::uint32_t>{3, 255},
                            {1, 255},
                            {1, 65535},
                            {3, 1000},
                            {1, 200}}) {
    CAPTURE(ch, maxval);
    const auto in = random_image(37, 290, ch, maxval, ch + maxval);
    const auto file = img::encode_pnm(in);
    const img::pnm_header h = img::read_pnm_header(file.data(), file.size());
    const img::raster_view raster{h.shape, file.data() + h.raster_offset, img::pnm_layout(h.shape)};
    for (const char* chain : {"gray,blur:sigma=2,sobel", "resize:0.5,invert", ""}) {
      CAPTURE(chain);
      const auto ops = img::parse_ops(chain);
      const auto want = run(in, chain);
      // The output file's bytes, header aside, as encode_pnm writes them.
      const auto enc = img::encode_pnm(want);
      const std::size_t head = enc.size() - want.samples.size() * (maxval > 255 ? 2 : 1);
      each_kernel_build([&] {
        for (int threads : {1, 4}) {
          std::vector<std::uint8_t> got(enc.size() - head, 0xAB);
          img::apply(raster, ops, threads, got.data(), img::pnm_layout(want.shape));
          CHECK(std::equal(got.begin(), got.end(), enc.begin() + head));
          std::vector<std::uint16_t> samples(want.samples.size());
          img::apply(raster, ops, threads, samples.data(), img::sample_layout::u16);
          CHECK(samples == want.samples);
        }
      });
    }
  }
}

// A chain that ends in Sobel writes an 8-bit output's rows from its kernel (make_u8), alpha
// copied, and they are the samples of the 16-bit output, for every channel count and build.
TEST_CASE("an 8-bit output of a chain ending in sobel equals its 16-bit samples", "[image]") {
  for (std::uint32_t ch : {1u, 2u, 3u, 4u}) {
    CAPTURE(ch);
    const auto in = random_image(53, 41, ch, 255, 7 * ch);
    std::vector<std::uint8_t> bytes(in.samples.begin(), in.samples.end());
    const img::raster_view raster{in.shape, bytes.data(), img::sample_layout::u8};
    for (const char* chain : {"sobel", "blur:sigma=1,sobel", "gray,blur:sigma=2,sobel"}) {
      CAPTURE(chain);
      const auto ops = img::parse_ops(chain);
      each_kernel_build([&] {
        for (int threads : {1, 4}) {
          const img::image want = img::apply(raster, ops, threads);
          std::vector<std::uint8_t> got(want.samples.size(), 0xAB);
          img::apply(raster, ops, threads, got.data(), img::sample_layout::u8);
          CHECK(std::equal(got.begin(), got.end(), want.samples.begin(), want.samples.end()));
        }
      });
    }
  }
}

// A caller learns of the output rows as the bands make them: every row once, in steps of at most
// rows_per_progress, whatever the thread count; the output is the same with or without.
TEST_CASE("apply tells its progress in output rows", "[image]") {
  const auto in = random_image(70, 1000, 3, 255, 21);
  std::vector<std::uint8_t> bytes(in.samples.begin(), in.samples.end());
  const img::raster_view raster{in.shape, bytes.data(), img::sample_layout::u8};
  for (const char* chain : {"gray,blur:sigma=2,sobel", "resize:0.37", "resize:1.5"}) {
    CAPTURE(chain);
    const auto ops = img::parse_ops(chain);
    const std::uint32_t rows = img::chain_shape(in.shape, ops).height;
    for (int threads : {1, 3, 64}) {
      CAPTURE(threads);
      std::atomic<std::size_t> told{0}, calls{0}, largest{0};
      const img::row_progress progress = [&](std::size_t n) {
        told += n;
        ++calls;
        std::size_t l = largest.load();
        while (n > l && !largest.compare_exchange_weak(l, n)) {
        }
      };
      const img::image with = img::apply(raster, ops, threads, progress);
      CHECK(told == rows);
      CHECK(largest <= img::rows_per_progress);
      CHECK(calls >= rows / img::rows_per_progress);
      CHECK(with.samples == img::apply(raster, ops, threads).samples);
    }
  }
}

// gray reads 8-bit RGB and RGBA where they lie (not widened first): every colour gives the
// documented luma, and a raster with maxval under 255 is still checked.
TEST_CASE("gray of an 8-bit raster: every RGB triple, RGBA, and maxval checked", "[image]") {
  for (std::uint32_t ch : {3u, 4u}) {
    CAPTURE(ch);
    const img::image_shape shape{4096, 4096, ch, 255};  // one pixel per (r, g, b)
    std::vector<std::uint8_t> raster(shape.samples());
    for (std::uint32_t p = 0; p < (1u << 24); ++p) {
      std::uint8_t* px = raster.data() + std::size_t{p} * ch;
      px[0] = static_cast<std::uint8_t>(p >> 16);
      px[1] = static_cast<std::uint8_t>(p >> 8);
      px[2] = static_cast<std::uint8_t>(p);
      if (ch == 4) px[3] = static_cast<std::uint8_t>(p * 7);
    }
    each_kernel_build([&] {
      std::vector<std::uint16_t> out(std::size_t{1} << 24);
      img::apply(img::raster_view{shape, raster.data(), img::sample_layout::u8},
                 img::parse_ops("gray"), 2, out.data(), img::sample_layout::u16);
      std::size_t wrong = 0;
      for (std::uint32_t p = 0; p < (1u << 24); ++p)
        wrong +=
            out[p] != (299 * (p >> 16) + 587 * ((p >> 8) & 255) + 114 * (p & 255) + 500) / 1000;
      CHECK(wrong == 0);
    });
  }
  // Every width up to 40 (the SIMD steps' last reads, and the pixels after them).
  for (std::uint32_t ch : {3u, 4u})
    for (std::uint32_t w = 1; w <= 40; ++w) {
      CAPTURE(ch, w);
      const auto in = random_image(w, 3, ch, 255, w * ch);
      std::vector<std::uint8_t> raster(in.samples.begin(), in.samples.end());
      u16v want(std::size_t{w} * 3);
      for (std::size_t i = 0; i < want.size(); ++i)
        want[i] =
            static_cast<std::uint16_t>((299 * in.samples[i * ch] + 587 * in.samples[i * ch + 1] +
                                        114 * in.samples[i * ch + 2] + 500) /
                                       1000);
      each_kernel_build([&] {
        u16v out(want.size());
        img::apply(img::raster_view{in.shape, raster.data(), img::sample_layout::u8},
                   img::parse_ops("gray"), 1, out.data(), img::sample_layout::u16);
        CHECK(out == want);
      });
    }
  // maxval 200: a sample of 201 is an error, as it is for every other op.
  auto in = random_image(5, 3, 3, 200, 9);
  auto file = img::encode_pnm(in);
  const img::pnm_header h = img::read_pnm_header(file.data(), file.size());
  file[h.raster_offset + 2 * 15 + 4] = 201;
  std::vector<std::uint8_t> out(5 * 3);
  try {
    img::apply(img::raster_view{h.shape, file.data() + h.raster_offset, img::sample_layout::u8},
               img::parse_ops("gray"), 1, out.data(), img::sample_layout::u8);
    FAIL("no error");
  } catch (const hetpipe::input_error& e) {
    CHECK_THAT(e.reason(), Contains("sample value 201 exceeds maxval 200"));
  }
}

// A sample above maxval is found in whichever band reads its row; the reason names the raster's
// first one, as decode_pnm does, for any thread count.
TEST_CASE("a bad sample in a raster gives decode_pnm's reason", "[image]") {
  auto in = random_image(30, 300, 1, 100, 5);
  auto file = img::encode_pnm(in);
  const img::pnm_header h = img::read_pnm_header(file.data(), file.size());
  file[h.raster_offset + 250 * 30 + 7] = 101;  // pixel (7, 250)
  file[h.raster_offset + 280 * 30 + 1] = 255;  // a later one, in another band
  const std::string want = decode_error(file);
  CHECK_THAT(want, Contains("sample value 101 exceeds maxval 100 at pixel (7, 250)"));
  const img::raster_view raster{h.shape, file.data() + h.raster_offset, img::pnm_layout(h.shape)};
  std::vector<std::uint8_t> out(30 * 300);
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    try {
      img::apply(raster, img::parse_ops("blur:1,sobel"), threads, out.data(),
                 img::sample_layout::u8);
      FAIL("no error");
    } catch (const hetpipe::input_error& e) {
      CHECK(e.reason() == want);
    }
  }
}

// --- ops list ---

TEST_CASE("ops lists parse in order, with canonical text", "[image]") {
  const auto ops = img::parse_ops(
      " gray, blur:sigma=1.5 ,sobel,resize:0.5,resize:640x480,invert,threshold:128,blur:2");
  REQUIRE(ops.size() == 8);
  CHECK(ops[0].kind == img::op_kind::gray);
  CHECK(ops[1].kind == img::op_kind::blur);
  CHECK(ops[1].sigma == 1.5);
  CHECK(ops[2].kind == img::op_kind::sobel);
  CHECK(ops[3].factor == 0.5);
  CHECK(ops[4].width == 640);
  CHECK(ops[4].height == 480);
  CHECK(ops[5].kind == img::op_kind::invert);
  CHECK(ops[6].threshold == 128);
  CHECK(ops[7].sigma == 2.0);
  std::string joined;
  for (const auto& o : ops) joined += (joined.empty() ? "" : ",") + img::to_string(o);
  CHECK(joined ==
        "gray,blur:sigma=1.5,sobel,resize:0.5,resize:640x480,invert,threshold:128,blur:sigma=2");
  CHECK(img::parse_ops("").empty());
  // Spaces around any part, as around the items.
  const auto spaced = img::parse_ops("blur: sigma = 1.5 ,threshold : t= 7,resize: 64 x 48 ");
  REQUIRE(spaced.size() == 3);
  CHECK(spaced[0].sigma == 1.5);
  CHECK(spaced[1].threshold == 7);
  CHECK(spaced[2].width == 64);
  CHECK(spaced[2].height == 48);
}

TEST_CASE("bad ops lists are refused with the item and the reason", "[image]") {
  CHECK_THAT(parse_error("gray,sharpen"), Contains("'sharpen'") && Contains("unknown operation"));
  CHECK_THAT(parse_error("blur"), Contains("needs an argument"));
  CHECK_THAT(parse_error("blur:sigma=0"), Contains("greater than 0"));
  CHECK_THAT(parse_error("blur:sigma=65"), Contains("at most 64"));
  CHECK_THAT(parse_error("blur:sigma=abc"), Contains("'abc' is not a number"));
  CHECK_THAT(parse_error("blur:s=1"), Contains("blur takes sigma=..., not 's'"));
  CHECK_THAT(parse_error("threshold:sigma=1"), Contains("threshold takes t=..., not 'sigma'"));
  CHECK_THAT(parse_error("blur:sigma="), Contains("'' is not a number"));
  CHECK_THAT(parse_error("blur:sigma=nan"), Contains("not a number"));
  CHECK_THAT(parse_error("resize:0"), Contains("greater than 0"));
  CHECK_THAT(parse_error("resize:-2"), Contains("greater than 0"));
  CHECK_THAT(parse_error("resize:1.5.2"), Contains("not a number"));
  CHECK_THAT(parse_error("resize:0x5"), Contains("at least 1"));
  CHECK_THAT(parse_error("resize:10x"), Contains("not a non-negative integer"));
  CHECK_THAT(parse_error("resize:2000000x1"), Contains("larger than"));
  CHECK_THAT(parse_error("threshold:70000"), Contains("larger than 65535"));
  CHECK_THAT(parse_error("threshold:-1"), Contains("not a non-negative integer"));
  CHECK_THAT(parse_error("invert:3"), Contains("takes no argument"));
  CHECK_THAT(parse_error("gray,,sobel"), Contains("empty item"));
  CHECK_THAT(parse_error("gray,"), Contains("empty item"));
}

// --- PNM ---

TEST_CASE("PNM round trips: P5/P6, 8 and 16 bits, any maxval", "[image]") {
  for (auto [ch, maxval] : {std::pair<std::uint32_t, std::uint32_t>{1, 255},
                            {3, 255},
                            {1, 65535},
                            {3, 65535},
                            {1, 1},
                            {3, 1000},
                            {1, 256}}) {
    CAPTURE(ch, maxval);
    const auto in = random_image(17, 5, ch, maxval, ch * 7 + maxval);
    const auto enc = img::encode_pnm(in);
    const std::string head =
        std::string(ch == 1 ? "P5" : "P6") + "\n17 5\n" + std::to_string(maxval) + "\n";
    CHECK(std::string(enc.begin(), enc.begin() + head.size()) == head);
    CHECK(enc.size() == head.size() + in.samples.size() * (maxval > 255 ? 2 : 1));
    const auto out = img::decode_image(enc.data(), enc.size());
    CHECK(out.shape == in.shape);
    CHECK(out.samples == in.samples);
  }
}

TEST_CASE("PNM headers: comments and any whitespace, 16-bit big-endian", "[image]") {
  const auto a = bytes("P5 # a comment\n2\t# another\r\n 1\f\v255\n\x07\xff");
  const auto im = img::decode_pnm(a.data(), a.size());
  CHECK(im.shape == img::image_shape{2, 1, 1, 255});
  CHECK(im.samples == u16v{7, 255});
  // A comment right after maxval runs to its newline, the delimiter.
  const auto b = bytes("P6\n1 1\n65535#x\n\x01\x02\x03\x04\x05\x06");
  const auto rgb = img::decode_pnm(b.data(), b.size());
  CHECK(rgb.samples == u16v{0x0102, 0x0304, 0x0506});
  // The raster may start with a whitespace byte: only one delimiter is consumed.
  const auto c = bytes("P5\n1 1\n255\n\n");
  CHECK(img::decode_pnm(c.data(), c.size()).samples == u16v{10});
}

TEST_CASE("bad PNM files are refused with a clear reason", "[image]") {
  CHECK_THAT(decode_error(bytes("P5\n2 2\n255\n\x01\x02\x03")),
             Contains("truncated") && Contains(": 1 byte missing"));
  CHECK_THAT(decode_error(bytes("P6\n2 1\n65535\n\x01")), Contains("11 bytes missing"));
  CHECK_THAT(decode_error(bytes("P5\n1 1\n255\n\x01\x02")),
             Catch::Matchers::StartsWith("1 byte after"));
  CHECK_THAT(decode_error(bytes("P4\n8 1\n\xff")), Contains("unsupported PNM format P4"));
  CHECK_THAT(decode_error(bytes(std::string("PF\n1 1\n-1.0\n\0\0\0\0", 16))),
             Contains("unsupported format PFM"));
  CHECK_THAT(decode_error(bytes("P7\nWIDTH 1\n")), Contains("P7") && Contains("PAM"));
  CHECK_THAT(decode_error(bytes("P2\n1 1\n255\n7\n")), Contains("P2"));
  CHECK_THAT(decode_error(bytes("P5\n1 1\n0\n\x00")), Contains("maxval 0"));
  CHECK_THAT(decode_error(bytes("P5\n1 1\n65536\n\x00\x00")), Contains("maxval 65536"));
  CHECK_THAT(decode_error(bytes("P5\n0 1\n255\n")), Contains("empty image"));
  CHECK_THAT(decode_error(bytes("P5\n2000000 1\n255\n")), Contains("larger than the limit"));
  CHECK_THAT(decode_error(bytes("P5\n99999999999 1\n255\n")), Contains("too large"));
  CHECK_THAT(decode_error(bytes("P5\n1 x\n255\n")), Contains("height") && Contains("'x'"));
  CHECK_THAT(decode_error(bytes("P5\n12a 1\n255\n")), Contains("'a' after the width"));
  CHECK_THAT(decode_error(bytes("P5\n1 1\n")), Contains("ends before the maxval"));
  CHECK_THAT(decode_error(bytes("P5\n1 1\n255")), Contains("ends before the pixel data"));
  CHECK_THAT(decode_error(bytes("P5\n1 1 # no end")), Contains("ends before the maxval"));
  CHECK_THAT(decode_error(bytes("P51 1 255\n\x00")), Contains("no whitespace after the magic"));
  CHECK_THAT(decode_error(bytes("P5\n2 1\n100\n\x05\x65")),
             Contains("sample value 101 exceeds maxval 100 at pixel (1, 0)"));
  CHECK_THAT(decode_error(bytes("GIF89a")), Contains("not a PNM or PNG"));
  CHECK_THAT(decode_error({}), Contains("not a PNM or PNG"));
  const auto rgba = make(1, 1, 4, 255, {1, 2, 3, 4});
  try {
    img::encode_pnm(rgba);
    FAIL("no error");
  } catch (const hetpipe::input_error& e) {
    CHECK_THAT(e.reason(), Contains("cannot be written as PNM"));
  }
}

TEST_CASE("a 16384x16384 PNM decodes", "[image]") {
  std::string head = "P5\n16384 16384\n255\n";
  std::vector<std::uint8_t> f(head.begin(), head.end());
  f.resize(head.size() + 16384ull * 16384, 7);
  const auto im = img::decode_pnm(f.data(), f.size());
  CHECK(im.shape.pixels() == 16384ull * 16384);
}

// --- PNG ---

TEST_CASE("PNG round trips: gray, gray+alpha, RGB, RGBA at 8 and 16 bits", "[image]") {
  for (std::uint32_t ch = 1; ch <= 4; ++ch)
    for (std::uint32_t maxval : {255u, 65535u}) {
      CAPTURE(ch, maxval);
      const auto in = random_image(13, 6, ch, maxval, ch * 31 + maxval);
      const auto enc = img::encode_png(in);
      CHECK(img::sniff_format(enc.data(), enc.size()) == img::image_format::png);
      const auto out = img::decode_image(enc.data(), enc.size());
      CHECK(out.shape == in.shape);
      CHECK(out.samples == in.samples);
    }
  // No maxval in PNG: rescaled to the full range.
  const auto odd = make(3, 1, 1, 1000, {0, 500, 1000});
  const auto enc = img::encode_png(odd);
  const auto out = img::decode_png(enc.data(), enc.size());
  CHECK(out.shape == img::image_shape{3, 1, 1, 65535});
  CHECK(out.samples == u16v{0, 32768, 65535});  // 32767.5 rounded up
  const auto low = make(2, 1, 1, 1, {0, 1});
  const auto enc1 = img::encode_png(low);
  CHECK(img::decode_png(enc1.data(), enc1.size()).samples == u16v{0, 255});
}

// What a row_progress was told: rows in all, calls, the most in one call.
struct told_rows {
  std::size_t rows = 0, calls = 0, largest = 0;
  img::row_progress progress() {
    return [this](std::size_t n) {
      rows += n;
      ++calls;
      largest = std::max(largest, n);
    };
  }
  // Every row of an image of `height`, rows_per_progress at a time (the last call fewer).
  void check_every_row(std::size_t height) const {
    CHECK(rows == height);
    CHECK(largest <= img::rows_per_progress);
    CHECK(calls == (height + img::rows_per_progress - 1) / img::rows_per_progress);
  }
};

// codec(progress) with a progress that throws once told more than 64 rows: the codec stops there,
// with that exception and nothing else, told 128.
template <class Codec>
void check_stops_at_its_progress(Codec&& codec) {
  std::size_t told = 0;
  CHECK_THROWS_AS(codec([&](std::size_t n) {
                    if ((told += n) > 64) throw std::range_error("stop");
                  }),
                  std::range_error);
  CHECK(told == 128);
}

// Images for the codecs' rows: 130 rows (two full reports and a last of 2), 16-bit, alpha, 64
// and 65 rows, 1x1.
std::vector<img::image> row_images() {
  return {random_image(37, 130, 1, 255, 1), random_image(9, 70, 3, 65535, 2),
          random_image(5, 64, 4, 255, 3), random_image(6, 65, 2, 255, 4),
          random_image(1, 1, 3, 255, 5)};
}

TEST_CASE("PNG encoded row by row with a progress gives the same bytes and tells every row",
          "[image]") {
  auto images = row_images();
  images.push_back(random_image(6, 65, 1, 1000, 8));  // a maxval to rescale
  for (const auto& in : images) {
    CAPTURE(in.shape.width, in.shape.height, in.shape.channels, in.shape.maxval);
    for (int level : {0, 6}) {
      told_rows told;
      CHECK(img::encode_png(in, level, told.progress()) == img::encode_png(in, level));
      told.check_every_row(in.shape.height);
    }
  }
  // Raw samples in the GPU path's layout, the same way.
  const auto in = random_image(20, 100, 3, 255, 6);
  std::vector<std::uint8_t> u8(in.samples.begin(), in.samples.end());
  std::size_t rows = 0;
  CHECK(img::encode_png(in.shape, u8.data(), img::sample_layout::u8, 6,
                        [&](std::size_t n) { rows += n; }) == img::encode_png(in));
  CHECK(rows == 100);
  const auto tall = random_image(8, 200, 1, 255, 7);
  check_stops_at_its_progress(
      [&](const img::row_progress& progress) { return img::encode_png(tall, 6, progress); });
}

TEST_CASE("PNG decoded row by row with a progress gives the same samples and tells every row",
          "[image]") {
  for (const auto& in : row_images()) {
    CAPTURE(in.shape.width, in.shape.height, in.shape.channels, in.shape.maxval);
    const auto png = img::encode_png(in, 1);
    told_rows told;
    const auto out = img::decode_png(png.data(), png.size(), told.progress());
    CHECK(out.shape == in.shape);
    CHECK(out.samples == in.samples);
    told.check_every_row(in.shape.height);
  }
  // 1-bit gray, 3 rows, row by row too.
  const auto g1 = make_png(3, 3, 1, 0, {0, 0b10100000, 0, 0b01000000, 0, 0b11100000});
  std::size_t rows = 0;
  CHECK(img::decode_png(g1.data(), g1.size(), [&](std::size_t n) { rows += n; }).samples ==
        u16v{255, 0, 255, 0, 255, 0, 255, 255, 255});
  CHECK(rows == 3);
  const auto tall = img::encode_png(random_image(8, 300, 1, 255, 6), 1);
  check_stops_at_its_progress([&](const img::row_progress& progress) {
    return img::decode_png(tall.data(), tall.size(), progress);
  });
}

TEST_CASE("a PNG is read to its IEND: a bad CRC in its last pixel chunk or a cut end is refused",
          "[image]") {
  const auto in = random_image(64, 80, 3, 255, 21);
  const auto png = img::encode_png(in, 1);
  REQUIRE(png.size() > 40);
  const std::size_t iend = png.size() - 12;  // the IEND chunk: length, type, CRC
  // The last IDAT's CRC: libspng decoded every row before it reached it, and took the file.
  auto flipped = png;
  flipped[iend - 1] ^= 0x40;
  CHECK_THROWS_WITH(img::decode_png(flipped.data(), flipped.size()),
                    Contains("invalid chunk checksum"));
  // Its last data byte (Adler-32's): the zlib stream's end is checked.
  flipped = png;
  flipped[iend - 5] ^= 0x40;
  CHECK_THROWS_AS(img::decode_png(flipped.data(), flipped.size()), hetpipe::input_error);
  // No IEND, or the last IDAT's CRC cut: the pixel data is whole, the file is not.
  for (std::size_t cut : {12, 14}) {
    CAPTURE(cut);
    const std::vector<std::uint8_t> part(png.begin(), png.end() - static_cast<std::ptrdiff_t>(cut));
    CHECK_THROWS_WITH(img::decode_png(part.data(), part.size()), Contains("end of stream"));
    // The same through the decoder into a buffer (the GPU lanes' staging).
    std::vector<std::uint16_t> out(in.shape.samples());
    CHECK_THROWS_AS(img::decode_png(part.data(), part.size(), out.data(), out.size()),
                    hetpipe::input_error);
  }
  // Bytes after the IEND are not read.
  auto longer = png;
  longer.insert(longer.end(), {'x', 'y', 'z'});
  CHECK(img::decode_png(longer.data(), longer.size()).samples == in.samples);
  CHECK(img::decode_png(png.data(), png.size()).samples == in.samples);
}

TEST_CASE("an interlaced (Adam7) PNG decodes to the samples of its passes", "[image]") {
  // The seven passes' scanlines built by hand (filter 0), for sizes where some passes are empty;
  // 8-bit gray and RGB, and 16-bit gray (big-endian in the file).
  constexpr std::uint32_t pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                        {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  for (const auto& [w, h, ch, depth] : std::vector<std::array<std::uint32_t, 4>>{
           {5, 5, 1, 8}, {1, 1, 1, 8}, {9, 3, 3, 8}, {3, 10, 1, 16}, {17, 12, 3, 8}}) {
    CAPTURE(w, h, ch, depth);
    const auto in = random_image(w, h, ch, depth == 16 ? 65535 : 255, w * 100 + h);
    std::vector<std::uint8_t> scan;
    for (const auto& p : pass) {
      if (p[0] >= w || p[1] >= h) continue;  // an empty pass has no scanlines
      for (std::uint32_t y = p[1]; y < h; y += p[3]) {
        scan.push_back(0);
        for (std::uint32_t x = p[0]; x < w; x += p[2])
          for (std::uint32_t c = 0; c < ch; ++c) {
            const std::uint16_t v = in.samples[(std::size_t{y} * w + x) * ch + c];
            if (depth == 16) scan.push_back(static_cast<std::uint8_t>(v >> 8));
            scan.push_back(static_cast<std::uint8_t>(v));
          }
      }
    }
    const auto png = make_png(w, h, static_cast<std::uint8_t>(depth), ch == 3 ? 2 : 0, scan, {}, 1);
    std::size_t rows = 0;
    const auto out = img::decode_png(png.data(), png.size(), [&](std::size_t n) { rows += n; });
    CHECK(out.shape == in.shape);
    CHECK(out.samples == in.samples);
    CHECK(rows == h);
    CHECK(img::decode_png(png.data(), png.size()).samples == in.samples);
  }
}

TEST_CASE("PNG files built byte by byte decode to the expected samples", "[image]") {
  // 16-bit gray, big-endian in the file.
  const auto g16 = make_png(2, 1, 16, 0, {0, 0x01, 0x02, 0xFF, 0xFE});
  const auto a = img::decode_png(g16.data(), g16.size());
  CHECK(a.shape == img::image_shape{2, 1, 1, 65535});
  CHECK(a.samples == u16v{0x0102, 0xFFFE});
  // 1-bit and 2-bit gray scaled to 0..255.
  const auto g1 = make_png(10, 1, 1, 0, {0, 0b10110000, 0b01000000});
  CHECK(img::decode_png(g1.data(), g1.size()).samples ==
        u16v{255, 0, 255, 255, 0, 0, 0, 0, 0, 255});
  const auto g2 = make_png(3, 2, 2, 0, {0, 0b00011011, 0, 0b11100000});
  CHECK(img::decode_png(g2.data(), g2.size()).samples == u16v{0, 85, 170, 255, 170, 0});
  // Palette -> RGB, or RGBA with tRNS.
  const std::vector<std::uint8_t> plte = {10, 20, 30, 40, 50, 60};
  const auto p = make_png(3, 1, 8, 3, {0, 1, 0, 1}, {{"PLTE", plte}});
  const auto rgb = img::decode_png(p.data(), p.size());
  CHECK(rgb.shape == img::image_shape{3, 1, 3, 255});
  CHECK(rgb.samples == u16v{40, 50, 60, 10, 20, 30, 40, 50, 60});
  const auto pt = make_png(2, 1, 8, 3, {0, 0, 1}, {{"PLTE", plte}, {"tRNS", {128}}});
  const auto rgba = img::decode_png(pt.data(), pt.size());
  CHECK(rgba.shape == img::image_shape{2, 1, 4, 255});
  CHECK(rgba.samples == u16v{10, 20, 30, 128, 40, 50, 60, 255});
  // 8-bit RGBA, sub filter on the second pixel.
  const auto f = make_png(2, 1, 8, 6, {1, 1, 2, 3, 4, 1, 1, 1, 1});
  CHECK(img::decode_png(f.data(), f.size()).samples == u16v{1, 2, 3, 4, 2, 3, 4, 5});
}

TEST_CASE("bad PNG files are refused with a clear reason", "[image]") {
  auto good = make_png(2, 1, 8, 0, {0, 1, 2});
  REQUIRE_NOTHROW(img::decode_png(good.data(), good.size()));
  auto crc = good;
  crc[8 + 4 + 4 + 13] ^= 1;  // IHDR's CRC
  CHECK_THAT(decode_error(crc), Contains("bad PNG"));
  auto cut = good;
  cut.resize(cut.size() - 20);
  CHECK_THAT(decode_error(cut), Contains("bad PNG"));
  auto junk = good;
  for (std::size_t i = 8; i < junk.size(); ++i) junk[i] = static_cast<std::uint8_t>(i * 37);
  CHECK_THAT(decode_error(junk), Contains("bad PNG"));
  const auto short_data = make_png(4, 2, 8, 0, {0, 1, 2, 3, 4});  // 5 of 10 scanline bytes
  CHECK_THAT(decode_error(short_data), Contains("bad PNG"));
  const auto no_plte = make_png(1, 1, 8, 3, {0, 0});
  CHECK_THAT(decode_error(no_plte), Contains("bad PNG: a palette image without its palette"));
  const auto huge = make_png(2000000, 1, 8, 0, {0});
  CHECK_THAT(decode_error(huge), Contains("bad PNG"));
  const auto bad_depth = make_png(1, 1, 3, 0, {0, 0});
  CHECK_THAT(decode_error(bad_depth), Contains("bad PNG"));
}

TEST_CASE("a PNG header its file cannot back is refused before any sample is allocated",
          "[image]") {
  // Found by tests/fuzz/fuzz_png: 62 bytes whose IHDR declares 64766 x 8451 gray (547 million
  // samples, 1 GiB allocated before the missing pixel data was noticed); read_png_shape, which
  // sizes the GPU path's staging, said yes.
  const auto shape_error = [](const std::vector<std::uint8_t>& f) -> std::string {
    try {
      img::read_png_shape(f.data(), f.size());
    } catch (const hetpipe::input_error& e) {
      return e.reason();
    }
    return "(no error)";
  };
  const auto liar = make_png(64766, 8451, 8, 0, {0});
  CHECK_THAT(shape_error(liar), Contains("bad PNG") && Contains("547337466 bytes of pixel data") &&
                                    Contains("1032:1"));
  CHECK_THAT(decode_error(liar), Contains("547337466 bytes of pixel data"));
  const auto rgba16 = make_png(16384, 16384, 16, 6, {0});
  CHECK_THAT(shape_error(rgba16), Contains("2147483648 bytes of pixel data"));
  // A real file that compresses about as well as deflate can still decodes.
  img::image flat;
  flat.shape = {2048, 2048, 1, 255};
  flat.samples.assign(flat.shape.samples(), 0);
  const auto enc = img::encode_png(flat, 9);
  REQUIRE(flat.samples.size() / enc.size() > 500);
  CHECK(img::decode_png(enc.data(), enc.size()).samples == flat.samples);
}

TEST_CASE("PNG text chunks that inflate beyond the limits are refused, not inflated", "[image]") {
  // Found by review after tests/fuzz/fuzz_png: libspng inflates zTXt, iTXt and iCCP before the
  // pixel data, with no limit of its own; 300 KiB of zTXt took 300 MiB.
  const auto ztxt = [](std::size_t matches) {
    std::vector<std::uint8_t> d = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 0};
    const auto z = zlib_zeros(matches);
    d.insert(d.end(), z.begin(), z.end());
    return d;
  };
  const auto small = make_png(2, 1, 8, 0, {0, 7, 9}, {{"zTXt", ztxt(4000)}});  // 1 MiB of text
  CHECK(img::decode_png(small.data(), small.size()).samples == u16v{7, 9});
  const auto bomb = make_png(2, 1, 8, 0, {0, 7, 9}, {{"zTXt", ztxt(400000)}});  // 100 MiB
  REQUIRE(bomb.size() < (std::size_t{1} << 20));
  CHECK_THAT(decode_error(bomb), Contains("bad PNG") && Contains("ancillary chunks"));
  // libspng's limit on inflated text is half the chunk limit: the message says 8 MiB (it said 16).
  const auto under = make_png(2, 1, 8, 0, {0, 7, 9}, {{"zTXt", ztxt(32500)}});  // 8 385 000 bytes
  CHECK(img::decode_png(under.data(), under.size()).samples == u16v{7, 9});
  const auto over = make_png(2, 1, 8, 0, {0, 7, 9}, {{"zTXt", ztxt(32600)}});  // 8 410 800 bytes
  CHECK_THAT(decode_error(over), Contains("8 MiB of compressed text once inflated"));
}

TEST_CASE("decode_png into a caller's buffer gives decode_png's samples, shape and errors",
          "[image]") {
  std::vector<std::vector<std::uint8_t>> files;
  for (std::uint32_t ch = 1; ch <= 4; ++ch)
    for (std::uint32_t maxval : {255u, 65535u})
      files.push_back(img::encode_png(random_image(7, 5, ch, maxval, ch + maxval)));
  files.push_back(make_png(10, 1, 1, 0, {0, 0b10110000, 0b01000000}));  // 1-bit gray
  const std::vector<std::uint8_t> plte = {10, 20, 30, 40, 50, 60};
  files.push_back(make_png(2, 1, 8, 3, {0, 0, 1}, {{"PLTE", plte}, {"tRNS", {128}}}));
  for (const auto& f : files) {
    const img::image want = img::decode_png(f.data(), f.size());
    const std::size_t n = want.samples.size();
    REQUIRE(img::read_png_shape(f.data(), f.size()).samples() == n);
    u16v buf(n + 1, 0xBEEF);  // one past the end must stay as it is
    CHECK(img::decode_png(f.data(), f.size(), buf.data(), n) == want.shape);
    CHECK(u16v(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)) == want.samples);
    CHECK(buf[n] == 0xBEEF);
    CHECK_THROWS_AS(img::decode_png(f.data(), f.size(), buf.data(), n - 1), std::invalid_argument);
    CHECK_THROWS_AS(img::decode_png(f.data(), f.size(), buf.data(), n + 1), std::invalid_argument);
  }
  // Bad files: the reason decode_png gives.
  auto cut = files[2];
  cut.resize(cut.size() - 20);
  const auto short_data = make_png(4, 2, 8, 0, {0, 1, 2, 3, 4});
  for (const auto& bad : {cut, short_data}) {
    u16v buf(64);
    std::string reason = "(no error)";
    try {
      img::decode_png(bad.data(), bad.size(), buf.data(),
                      img::read_png_shape(bad.data(), bad.size()).samples());
    } catch (const hetpipe::input_error& e) {
      reason = e.reason();
    }
    CHECK(reason == decode_error(bad));
    CHECK_THAT(reason, Contains("bad PNG"));
  }
}

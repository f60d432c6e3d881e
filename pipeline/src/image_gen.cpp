// hetpipe::generate_images: deterministic test images (gen-images, samples, tests, benchmarks).
//
// Every sample is a function of (seed, index, x, y, channel) alone, computed in integers on a
// 16-bit scale (8-bit outputs keep the high byte): a linear gradient plus a triangle wave (smooth
// content for blur), flat circles and rectangles drawn over it (hard edges for sobel), then a
// little noise from a counter-based hash. No floating point and no std:: distributions, so the
// bytes are the same for every compiler, machine and thread count.
#include <hetpipe/error.hpp>
#include <hetpipe/image.hpp>

#include <omp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "host/image.hpp"
#include "pipeline/src/engine.hpp"

namespace hetpipe {
namespace {

namespace img = host::img;

constexpr std::uint32_t max_side = 65536;
constexpr int max_shapes = 8;

constexpr std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The parameters of one image, drawn in a fixed order from a counter on its key.
struct scene {
  struct channel {
    std::uint32_t wx, wy, w0;  // gradient weights, wx + wy + w0 = 256
    bool flip_x, flip_y;
    std::uint32_t base;  // 0..65535, the constant part
  };
  struct shape {
    bool circle;
    std::int64_t cx, cy, rx, ry;  // centre and half extents (circle: rx == ry, the radius)
    std::uint32_t color[3];
  };
  std::uint64_t key;
  channel ch[3];
  std::int64_t wave_dx, wave_dy;
  std::vector<std::uint32_t> wave;  // one period of the triangle wave, centred on 0 + amplitude/2
  std::uint32_t wave_amp;
  int shapes = 0;
  shape shp[max_shapes];
  bool alpha_flip_x, alpha_flip_y;
  std::uint32_t alpha_wx;  // alpha = (wx * gx + (256 - wx) * gy) / 256
};

scene make_scene(const image_set_spec& spec, std::size_t index) {
  scene s;
  s.key = splitmix64(spec.seed ^ splitmix64(0x696d6167ull + index));  // "imag"
  std::uint64_t counter = s.key;
  auto next = [&] { return splitmix64(counter++); };
  auto below = [&](std::uint64_t n) { return next() % n; };
  for (auto& c : s.ch) {
    c.wx = static_cast<std::uint32_t>(below(129));
    c.wy = static_cast<std::uint32_t>(below(129));
    c.w0 = 256 - c.wx - c.wy;
    c.flip_x = next() & 1;
    c.flip_y = next() & 1;
    c.base = static_cast<std::uint32_t>(next() & 0xffff);
  }
  const std::int64_t w = spec.width, h = spec.height;
  s.wave_dx = static_cast<std::int64_t>(below(7)) - 3;
  s.wave_dy = static_cast<std::int64_t>(below(7)) - 3;
  const std::uint64_t longest = static_cast<std::uint64_t>(std::max(w, h));
  const std::uint64_t period = 16 + below(std::max<std::uint64_t>(1, longest / 2));
  s.wave_amp = 2048 + static_cast<std::uint32_t>(below(10241));
  s.wave.resize(period);
  for (std::uint64_t t = 0; t < period; ++t) {
    const std::uint64_t d = 2 * t > period ? 2 * t - period : period - 2 * t;  // |2t - P|, 0..P
    s.wave[t] = static_cast<std::uint32_t>(d * s.wave_amp / period);
  }
  s.shapes = 3 + static_cast<int>(below(max_shapes - 2));
  const std::int64_t m = std::min(w, h);
  const std::int64_t lo = std::max<std::int64_t>(1, m / 16), hi = std::max<std::int64_t>(lo, m / 4);
  for (int i = 0; i < s.shapes; ++i) {
    auto& sh = s.shp[i];
    sh.circle = next() & 1;
    sh.cx = static_cast<std::int64_t>(below(static_cast<std::uint64_t>(w)));
    sh.cy = static_cast<std::int64_t>(below(static_cast<std::uint64_t>(h)));
    sh.rx = lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
    sh.ry = sh.circle
                ? sh.rx
                : lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
    for (auto& c : sh.color) c = static_cast<std::uint32_t>(next() & 0xffff);
  }
  s.alpha_flip_x = next() & 1;
  s.alpha_flip_y = next() & 1;
  s.alpha_wx = static_cast<std::uint32_t>(below(257));
  return s;
}

// floor(sqrt(v)) for v < 2^62, exact.
std::int64_t isqrt(std::int64_t v) {
  std::int64_t r = static_cast<std::int64_t>(__builtin_sqrt(static_cast<double>(v)));
  while (r * r > v) --r;
  while ((r + 1) * (r + 1) <= v) ++r;
  return r;
}

img::image render(const image_set_spec& spec, std::size_t index) {
  const scene s = make_scene(spec, index);
  const std::uint32_t w = spec.width, h = spec.height, nch = spec.channels;
  const std::uint32_t colors = nch == 2 || nch == 4 ? nch - 1 : nch;
  const bool alpha = colors != nch;
  const unsigned shift = spec.depth == 8 ? 8 : 0;

  img::image im;
  im.shape = {w, h, nch, spec.depth == 8 ? 255u : 65535u};
  im.samples.resize(std::size_t{w} * h * nch);

  // gx[x], gy: position on a 0..65535 scale; wave_x[x]: x * dx mod period.
  const auto period = static_cast<std::int64_t>(s.wave.size());
  std::vector<std::uint32_t> gx(w);
  std::vector<std::uint32_t> wave_x(w);
  for (std::uint32_t x = 0; x < w; ++x) {
    gx[x] = w == 1 ? 0 : static_cast<std::uint32_t>(std::uint64_t{x} * 65535 / (w - 1));
    wave_x[x] = static_cast<std::uint32_t>(((x * s.wave_dx) % period + period) % period);
  }
  // One row on the 16-bit scale, per colour channel, before the noise.
  std::vector<std::uint32_t> row(std::size_t{w} * colors);

  for (std::uint32_t y = 0; y < h; ++y) {
    const std::uint32_t gy =
        h == 1 ? 0 : static_cast<std::uint32_t>(std::uint64_t{y} * 65535 / (h - 1));
    const auto wave_y = static_cast<std::uint32_t>(((y * s.wave_dy) % period + period) % period);
    const std::uint32_t half_amp = s.wave_amp / 2;
    for (std::uint32_t c = 0; c < colors; ++c) {
      const auto& p = s.ch[c];
      const std::uint32_t yy = p.flip_y ? 65535 - gy : gy;
      const std::uint32_t row_part = p.wy * yy + p.w0 * p.base;
      for (std::uint32_t x = 0; x < w; ++x) {
        const std::uint32_t xx = p.flip_x ? 65535 - gx[x] : gx[x];
        std::uint32_t t = wave_x[x] + wave_y;
        if (t >= period) t -= static_cast<std::uint32_t>(period);
        const std::int64_t v =
            static_cast<std::int64_t>((p.wx * xx + row_part) >> 8) + s.wave[t] - half_amp;
        row[std::size_t{x} * colors + c] =
            static_cast<std::uint32_t>(std::clamp<std::int64_t>(v, 0, 65535));
      }
    }
    for (int i = 0; i < s.shapes; ++i) {
      const auto& sh = s.shp[i];
      const std::int64_t dy = std::int64_t{y} - sh.cy;
      if (dy < -sh.ry || dy > sh.ry) continue;
      const std::int64_t half = sh.circle ? isqrt(sh.rx * sh.rx - dy * dy) : sh.rx;
      const std::int64_t x0 = std::max<std::int64_t>(0, sh.cx - half);
      const std::int64_t x1 = std::min<std::int64_t>(w - 1, sh.cx + half);
      for (std::int64_t x = x0; x <= x1; ++x)
        for (std::uint32_t c = 0; c < colors; ++c)
          row[static_cast<std::size_t>(x) * colors + c] = sh.color[c];
    }
    std::uint16_t* out = im.samples.data() + std::size_t{y} * w * nch;
    const std::uint32_t ay = s.alpha_flip_y ? 65535 - gy : gy;
    for (std::uint32_t x = 0; x < w; ++x) {
      // 11 bits of noise per channel (±1024 on the 16-bit scale, ±4 at 8 bits).
      const std::uint64_t n = splitmix64(s.key ^ (std::uint64_t{y} << 32 | x));
      for (std::uint32_t c = 0; c < colors; ++c) {
        const std::int64_t noise = static_cast<std::int64_t>((n >> (16 * c)) & 0x7ff) - 1024;
        const std::int64_t v = std::clamp<std::int64_t>(
            std::int64_t{row[std::size_t{x} * colors + c]} + noise, 0, 65535);
        out[std::size_t{x} * nch + c] = static_cast<std::uint16_t>(v >> shift);
      }
      if (alpha) {
        const std::uint32_t ax = s.alpha_flip_x ? 65535 - gx[x] : gx[x];
        const std::uint32_t a = (s.alpha_wx * ax + (256 - s.alpha_wx) * ay) >> 8;
        out[std::size_t{x} * nch + colors] = static_cast<std::uint16_t>(a >> shift);
      }
    }
  }
  return im;
}

// Writes `bytes` to `path` through a temporary file in the same folder, renamed on success; the
// temporary is removed on any failure.
void write_file(const std::filesystem::path& dir, const std::string& name, const std::string& path,
                const std::vector<std::uint8_t>& bytes, mode_t mode) {
  std::string tmp = (dir / ("." + name + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    const int e = errno;
    throw io_error(path, errno_reason(e), -e);
  }
  auto fail = [&](int e, bool open) {
    if (open) ::close(fd);
    ::unlink(tmp.c_str());
    throw io_error(path, errno_reason(e), -e);
  };
  // mkstemp gives 0600; a generated file gets the mode any new file would have.
  if (::fchmod(fd, mode) != 0) fail(errno, true);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno, true);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) fail(errno, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(errno, false);
}

}  // namespace

std::vector<std::string> generate_images(const image_set_spec& spec) {
  const auto side = [](const char* what, std::uint32_t v) {
    if (v < 1 || v > max_side)
      throw usage_error(std::string("image ") + what + " must be 1.." + std::to_string(max_side) +
                        ", not " + std::to_string(v));
  };
  side("width", spec.width);
  side("height", spec.height);
  if (std::uint64_t{spec.width} * spec.height > img::max_pixels)
    throw usage_error("images of " + std::to_string(spec.width) + "x" +
                      std::to_string(spec.height) + " exceed the limit of " +
                      std::to_string(img::max_pixels) + " pixels");
  if (spec.channels < 1 || spec.channels > 4)
    throw usage_error("channels must be 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), not " +
                      std::to_string(spec.channels));
  const bool png = spec.format == image_output::png;
  if (!png && spec.channels != 1 && spec.channels != 3)
    throw usage_error("PNM holds 1 (gray) or 3 (RGB) channels, not " +
                      std::to_string(spec.channels) + ": use --format png for alpha");
  if (spec.depth != 8 && spec.depth != 16)
    throw usage_error("depth must be 8 or 16 bits, not " + std::to_string(spec.depth));
  if (spec.count < 1 || spec.count > max_image_set)
    throw usage_error("count must be 1.." + std::to_string(max_image_set) + ", not " +
                      std::to_string(spec.count));
  // One image's samples (16 bits each) and its encoded bytes, on every thread that makes one: an
  // image past the machine's memory is refused, and fewer threads make images that only fit a
  // few at a time (a failed allocation ended the command as "internal error").
  const std::uint64_t samples = std::uint64_t{spec.width} * spec.height * spec.channels;
  const std::uint64_t need = samples * (2 + spec.depth / 8);
  const std::uint64_t ram = detail::physical_memory();
  if (ram > 0 && need > ram)
    throw usage_error("an image of " + std::to_string(spec.width) + "x" +
                      std::to_string(spec.height) + " with " + std::to_string(spec.channels) +
                      " channels needs " + format_size(need) + ", more than this machine's memory");
  const int threads = static_cast<int>(
      std::clamp<std::uint64_t>(ram > 0 ? ram / 2 / std::max<std::uint64_t>(need, 1) : 1, 1,
                                static_cast<std::uint64_t>(std::max(1, omp_get_max_threads()))));
  if (spec.outdir.empty()) throw usage_error("no output folder");
  if (spec.prefix.find('/') != std::string::npos)
    throw usage_error("the prefix is a file name and cannot hold '/': '" + spec.prefix + "'");

  std::error_code ec;
  std::filesystem::create_directories(spec.outdir, ec);
  if (ec) throw io_error(spec.outdir, errno_reason(ec.value()), -ec.value());
  const std::filesystem::path dir(spec.outdir);
  const char* ext = png ? "png" : spec.channels == 1 ? "pgm" : "ppm";

  // umask can only be read by setting it: once, before the threads start.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  const mode_t mode = 0666 & ~mask;

  std::vector<std::string> paths(spec.count);
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex first_mu;
  const auto count = static_cast<std::int64_t>(spec.count);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (std::int64_t i = 0; i < count; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      if (spec.cancel && spec.cancel->load()) throw cancelled();
      const auto index = static_cast<std::size_t>(i);
      char num[32];
      std::snprintf(num, sizeof num, "%06zu", index);
      const std::string name = spec.prefix + "-" + num + "." + ext;
      std::string path = (dir / name).string();
      const img::image im = render(spec, index);
      const auto bytes = png ? img::encode_png(im) : img::encode_pnm(im);
      write_file(dir, name, path, bytes, mode);
      paths[index] = std::move(path);
    } catch (const std::bad_alloc&) {  // under a memory limit (ulimit -v, cgroups)
      std::lock_guard lk(first_mu);
      if (!first)
        first = std::make_exception_ptr(error(spec.outdir, "not enough memory for an image of " +
                                                               std::to_string(spec.width) + "x" +
                                                               std::to_string(spec.height)));
      failed = true;
    } catch (...) {
      std::lock_guard lk(first_mu);
      if (!first) first = std::current_exception();
      failed = true;
    }
  }
  if (first) std::rethrow_exception(first);
  return paths;
}

}  // namespace hetpipe

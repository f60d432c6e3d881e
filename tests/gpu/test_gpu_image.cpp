// hetpipe::run_images on GPU lanes and in hybrid mode against CPU lanes: the same output bytes for
// every format, depth and shape (small images batched, large ones alone), and the same verdict
// on bad files. Also the raster unpack/pack kernels against the host codecs.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <thread>

#include <hetpipe/hetpipe.hpp>

#include "cuda/image_kernels.hpp"
#include "cuda/runtime.hpp"
#include "host/image_ops.hpp"
#include "support/images.hpp"
#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
namespace img = hetpipe::host::img;
namespace hc = hetpipe::cuda;
namespace fs = std::filesystem;

namespace {

// Runs the job with CPU lanes into out-cpu/ and in `mode` into out-<mode>/; checks the same files
// were written with the same bytes and the same files skipped for the same reasons. Returns the
// GPU lanes that ran: in gpu mode there must be some; in auto mode the CPU lanes may have finished
// a small job before the GPU lanes joined (callers check that some auto job had them).
unsigned same_as_cpu(const test::temp_dir& dir, const std::string& ops, device_mode mode,
                     image_output format = image_output::same, unsigned gpu_lanes = 0,
                     unsigned slots = 0, unsigned cpu_threads = 2, unsigned threads_per_image = 0) {
  image_spec spec;
  spec.ops = ops;
  spec.format = format;
  const auto cpu = plan_images({dir.file("in")}, true, dir.file("out-cpu"), format);
  const auto dev = plan_images({dir.file("in")}, true, dir.file("out-dev"), format);
  fs::remove_all(dir.path() / "out-cpu");
  fs::remove_all(dir.path() / "out-dev");
  job_report want_rep, got_rep;
  image_spec cpu_spec = spec;
  cpu_spec.threads_per_image = 0;
  run_images(cpu_spec, cpu, test::cpu_options(0, 2), &want_rep);
  spec.threads_per_image = threads_per_image;
  options o = test::device_options(mode, 0, cpu_threads);
  o.gpu_lanes = gpu_lanes;
  o.slots = slots;
  run_images(spec, dev, o, &got_rep);
  if (mode == device_mode::gpu) CHECK(got_rep.gpu_lanes > 0);
  REQUIRE(got_rep.skipped.size() == want_rep.skipped.size());
  for (std::size_t i = 0; i < want_rep.skipped.size(); ++i) {
    CHECK(got_rep.skipped[i].input == want_rep.skipped[i].input);
    CHECK(got_rep.skipped[i].reason == want_rep.skipped[i].reason);
  }
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(cpu[i].input);
    CHECK(fs::exists(cpu[i].output) == fs::exists(dev[i].output));
    if (fs::exists(cpu[i].output))
      CHECK(test::file_bytes(cpu[i].output) == test::file_bytes(dev[i].output));
  }
  return got_rep.gpu_lanes;
}

}  // namespace

TEST_CASE("GPU image lanes write the CPU's bytes for every format, depth and shape",
          "[gpu][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  struct item {
    const char* name;
    std::uint32_t w, h, ch, maxval;
    bool png;
  };
  const item items[] = {
      {"a.ppm", 37, 21, 3, 255, false},      {"b.pgm", 1, 1, 1, 255, false},
      {"c.pgm", 1, 40, 1, 1000, false},      {"d.png", 29, 3, 3, 65535, true},
      {"e.png", 17, 9, 4, 255, true},        {"f.ppm", 50, 1, 3, 65535, false},
      {"g.png", 8, 8, 2, 255, true},         {"h.ppm", 1920, 1080, 3, 255, false},
      {"i.pgm", 2001, 999, 1, 65535, false}, {"j.png", 640, 480, 3, 255, true},
  };
  std::uint64_t seed = 1;
  for (const auto& it : items)
    test::write_image(dir.file(std::string("in/") + it.name),
                      test::random_image(it.w, it.h, it.ch, it.maxval, seed++), it.png);
  int auto_joined = 0;
  for (const char* ops : {"gray,blur:sigma=2,sobel", "resize:0.5,invert", "blur:1.5,resize:2",
                          "threshold:100,resize:7x3", ""}) {
    CAPTURE(ops);
    same_as_cpu(dir, ops, device_mode::gpu);
    auto_joined += same_as_cpu(dir, ops, device_mode::automatic) > 0;
  }
  CHECK(auto_joined > 0);
  // CPU lanes of two threads an image beside the GPU lanes (4 CPU threads: 2 such lanes).
  CHECK(same_as_cpu(dir, "gray,blur:sigma=2,sobel", device_mode::automatic, image_output::same, 0,
                    0, 4, 2) > 0);
  same_as_cpu(dir, "sobel", device_mode::gpu, image_output::png);
  same_as_cpu(dir, "gray", device_mode::gpu, image_output::pnm);  // alpha dropped: all writable
  same_as_cpu(dir, "invert", device_mode::gpu, image_output::pnm, 1);  // alpha: refused
}

TEST_CASE("GPU image lanes batch many small images and report bad ones like the CPU",
          "[gpu][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  for (int i = 0; i < 300; ++i) {
    const std::uint32_t w = 1 + i % 23, h = 1 + i % 17, ch = i % 3 == 0 ? 1 : 3;
    char name[32];
    std::snprintf(name, sizeof name, "in/s%03d.%s", i,
                  i % 5 == 0 ? "png"
                  : ch == 1  ? "pgm"
                             : "ppm");
    test::write_image(dir.file(name), test::random_image(w, h, ch, i % 7 == 0 ? 65535 : 255, i),
                      i % 5 == 0);
  }
  // Bad ones among them: a sample above maxval (found on the device), a truncated raster, a
  // malformed header, a cut PNG.
  std::string over = "P5\n3 2\n100\n";
  over += std::string{10, 20, 30, 40, static_cast<char>(200), static_cast<char>(101)};
  test::write_bytes(dir.file("in/s100x.pgm"), {over.begin(), over.end()});
  auto pnm = img::encode_pnm(test::random_image(5, 5, 3, 255, 1));
  pnm.pop_back();
  test::write_bytes(dir.file("in/s101x.ppm"), pnm);
  test::write_bytes(dir.file("in/s102x.ppm"), {'P', '6', ' ', 'x'});
  auto png = img::encode_png(test::random_image(30, 30, 3, 255, 2));
  png.resize(png.size() - 20);
  test::write_bytes(dir.file("in/s103x.png"), png);
  same_as_cpu(dir, "gray,blur:sigma=1,sobel", device_mode::gpu, image_output::same, 1);
  int auto_joined = same_as_cpu(dir, "blur:0.7,invert", device_mode::automatic) > 0;
  // Few slots, so the reader's window (16 chunks) is far smaller than the job: lanes must hand on
  // the batches they hold before they wait for more (a transform retires chunks in order only).
  same_as_cpu(dir, "invert", device_mode::gpu, image_output::same, 2, 2);
  auto_joined += same_as_cpu(dir, "invert", device_mode::automatic, image_output::same, 2, 2) > 0;
  CHECK(auto_joined > 0);
  // The device's own finding names the first bad sample as the CPU decoder does.
  job_report rep;
  image_spec spec;
  spec.ops = "invert";
  run_images(spec, {{dir.file("in/s100x.pgm"), dir.file("o.pgm")}},
             test::device_options(device_mode::gpu, 0), &rep);
  REQUIRE(rep.skipped.size() == 1);
  CHECK(rep.skipped[0].reason == "PNM sample value 200 exceeds maxval 100 at pixel (1, 1)");
}

TEST_CASE("image jobs keep every CPU lane beside the GPU lanes unless told otherwise",
          "[gpu][image]") {
  // A read-bound job stops half the hardware threads' lanes once GPU lanes run (resolve()); an
  // image chain is compute, and keeps them all. Given --cpu-threads or cpu_threads_beside_gpu,
  // the caller's numbers stand.
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  for (int i = 0; i < 4; ++i)
    test::write_image(dir.file("in/i" + std::to_string(i) + ".pgm"),
                      test::random_image(64, 48, 1, 255, i), false);
  const auto files = plan_images({dir.file("in")}, true, dir.file("out"), image_output::same);
  image_spec spec;
  spec.ops = "invert";
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const auto beside = [&](options o) {
    fs::remove_all(dir.path() / "out");
    job_report rep;
    run_images(spec, files, o, &rep);
    return rep.resolved.cpu_threads_beside_gpu;
  };
  options o = test::device_options(device_mode::automatic, 0, 0);
  CHECK(beside(o) == hw);
  CHECK(resolve(o).cpu_threads_beside_gpu == std::max(1u, hw / 2));  // what other jobs get
  o.cpu_threads_beside_gpu = 1;
  CHECK(beside(o) == 1);
  o = test::device_options(device_mode::automatic, 0, 2);
  CHECK(beside(o) == 2);
}

TEST_CASE("GPU lanes' PNG codec teams decode and encode batches of PNGs like the CPU",
          "[gpu][image]") {
  // --device gpu with 8 host threads and one lane per device: each lane's codec team has 4 or 8
  // threads (2 fake devices here, 1 on the GPU machine), and a batch that starts with a PNG holds
  // that many decoded images: sizes, depths and channel counts mixed, a cut PNG among them.
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  for (int i = 0; i < 60; ++i) {
    const std::uint32_t w = 7 + (i * 37) % 300, h = 5 + (i * 53) % 200, ch = 1 + i % 4;
    char name[32];
    std::snprintf(name, sizeof name, "in/p%03d.png", i);
    test::write_image(dir.file(name),
                      test::random_image(w, h, ch, i % 6 == 0 ? 65535 : 255, 100 + i), true);
  }
  auto cut = img::encode_png(test::random_image(40, 30, 3, 255, 7));
  cut.resize(cut.size() / 2);
  test::write_bytes(dir.file("in/p030x.png"), cut);
  same_as_cpu(dir, "blur:sigma=1.5,sobel", device_mode::gpu, image_output::same, 1, 0, 8);
  same_as_cpu(dir, "invert", device_mode::gpu, image_output::pnm, 1, 0, 8);
}

TEST_CASE("GPU image lanes take a 16384 x 16384 image", "[gpu][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  const img::image big = test::random_image(16384, 16384, 1, 255, 3);
  test::write_image(dir.file("in/big.pgm"), big, false);
  image_spec spec;
  spec.ops = "blur:sigma=1,resize:0.25";
  job_report rep;
  run_images(spec, {{dir.file("in/big.pgm"), dir.file("out.pgm")}},
             test::device_options(device_mode::gpu, 0), &rep);
  CHECK(rep.skipped.empty());
  const img::image want = img::apply(big, img::parse_ops(spec.ops), 16);
  const img::image got = test::read_image(dir.file("out.pgm"));
  CHECK(got.shape == want.shape);
  CHECK(got.samples == want.samples);
}

TEST_CASE("images larger than a chunk run on CPU lanes after the GPU job and give the same bytes",
          "[gpu][image]") {
  // 64 KiB chunks: the 20 small images go to the GPU lanes, the 3 of 90-180 KiB to the second job.
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  for (int i = 0; i < 20; ++i)
    test::write_image(dir.file("in/s" + std::to_string(10 + i) + ".ppm"),
                      test::random_image(30 + i, 20, 3, 255, i), false);
  test::write_image(dir.file("in/b1.ppm"), test::random_image(200, 150, 3, 255, 31), false);
  test::write_image(dir.file("in/b2.pgm"), test::random_image(300, 200, 1, 65535, 32), false);
  test::write_image(dir.file("in/b3.ppm"), test::random_image(250, 250, 3, 255, 33), false);
  image_spec spec;
  spec.ops = "gray,blur:sigma=1.5,sobel";
  const auto cpu = plan_images({dir.file("in")}, true, dir.file("out-cpu"), spec.format);
  const auto dev = plan_images({dir.file("in")}, true, dir.file("out-dev"), spec.format);
  run_images(spec, cpu, test::cpu_options(0, 2));
  job_report rep;
  run_images(spec, dev, test::device_options(device_mode::gpu, 64 << 10), &rep);
  CHECK(rep.skipped.empty());
  CHECK(rep.gpu_lanes > 0);   // the first job's
  CHECK(rep.chunks == 23);    // both jobs'
  CHECK(rep.cpu_lanes == 1);  // the second job's one lane (the first had none)
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(cpu[i].input);
    CHECK(test::file_bytes(cpu[i].output) == test::file_bytes(dev[i].output));
  }
}

TEST_CASE("unpack_samples and pack_samples move rasters exactly", "[gpu][image][kernels]") {
  hc::stream s(0);
  const img::image im = test::random_image(97, 13, 3, 65535, 4);
  for (auto layout : {img::sample_layout::u8, img::sample_layout::u16be, img::sample_layout::u16}) {
    CAPTURE(static_cast<int>(layout));
    img::image src = im;
    if (layout == img::sample_layout::u8)
      for (auto& v : src.samples) v &= 0xFF;
    const std::size_t n = src.samples.size();
    std::vector<std::uint8_t> raster(n * img::bytes_per_sample(layout));
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t v = src.samples[i];
      if (layout == img::sample_layout::u8) raster[i] = static_cast<std::uint8_t>(v);
      if (layout == img::sample_layout::u16be) raster[2 * i] = v >> 8, raster[2 * i + 1] = v & 0xFF;
      if (layout == img::sample_layout::u16) std::memcpy(&raster[2 * i], &v, 2);
    }
    hc::device_buffer d_raster(raster.size()), d_samples(n * 2), d_back(raster.size()), d_bad(8);
    hc::copy_h2d_async(d_raster.get(), raster.data(), raster.size(), s);
    unsigned long long bad = hc::no_bad_sample;
    hc::copy_h2d_async(d_bad.get(), &bad, 8, s);
    // The first sample above maxval is found, whatever thread sees it.
    const std::uint32_t maxval = layout == img::sample_layout::u8 ? 100 : 1000;
    hc::unpack_samples(d_raster.get(), layout, n, maxval,
                       static_cast<std::uint16_t*>(d_samples.get()),
                       static_cast<unsigned long long*>(d_bad.get()), s.handle());
    hc::pack_samples(static_cast<const std::uint16_t*>(d_samples.get()), n, layout, d_back.get(),
                     s.handle());
    std::vector<std::uint16_t> samples(n);
    std::vector<std::uint8_t> back(raster.size());
    hc::copy_d2h_async(samples.data(), d_samples.get(), n * 2, s);
    hc::copy_d2h_async(back.data(), d_back.get(), back.size(), s);
    hc::copy_d2h_async(&bad, d_bad.get(), 8, s);
    s.synchronize();
    CHECK(samples == src.samples);
    CHECK(back == raster);
    std::size_t first = 0;
    while (first < n && src.samples[first] <= maxval) ++first;
    REQUIRE(first < n);
    CHECK(hc::bad_sample_index(bad) == first);
    CHECK(hc::bad_sample_value(bad) == src.samples[first]);
  }
}

#endif

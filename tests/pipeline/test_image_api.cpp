// hetpipe::run_images on CPU lanes: outputs equal host::img::apply for every format, depth and
// shape, whatever the chunk size and lane count; bad files are reported one by one and leave no
// output; plan_images maps inputs to outputs.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include <hetpipe/hetpipe.hpp>
#include <nlohmann/json.hpp>

#include "host/image_ops.hpp"
#include "support/images.hpp"
#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
namespace img = hetpipe::host::img;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

struct sample {
  std::string name;
  img::image im;
  bool png;
};

// Gray and RGB, 8 and 16 bits, PNM and PNG, odd sizes, 1x1 and 1xN.
std::vector<sample> samples() {
  return {
      {"a.ppm", test::random_image(37, 21, 3, 255, 1), false},
      {"b.pgm", test::random_image(1, 1, 1, 255, 2), false},
      {"c.pgm", test::random_image(1, 40, 1, 1000, 3), false},
      {"d.png", test::random_image(29, 3, 3, 65535, 4), true},
      {"e.png", test::random_image(17, 9, 4, 255, 5), true},
      {"f.ppm", test::random_image(50, 1, 3, 65535, 6), false},
      {"g.png", test::random_image(8, 8, 2, 255, 7), true},
  };
}

std::vector<image_file> write_samples(const test::temp_dir& dir, const std::vector<sample>& s) {
  fs::create_directories(dir.path() / "in");
  std::vector<image_file> files;
  for (const auto& x : s) {
    test::write_image(dir.file("in/" + x.name), x.im, x.png);
    files.push_back({dir.file("in/" + x.name), dir.file("out/" + x.name)});
  }
  return files;
}

std::size_t entries(const fs::path& p) {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(p), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("run_images writes each image filtered exactly as host::img::apply",
          "[pipeline][image]") {
  test::temp_dir dir;
  const auto s = samples();
  const auto files = write_samples(dir, s);
  for (const char* ops : {"gray,blur:sigma=1.5,sobel", "resize:0.5,invert", "blur:2,resize:3x5",
                          "threshold:100", ""}) {
    for (unsigned threads : {1u, 3u}) {
      CAPTURE(ops, threads);
      image_spec spec;
      spec.ops = ops;
      job_report rep;
      run_images(spec, files, test::cpu_options(0, threads), &rep);
      CHECK(rep.skipped.empty());
      CHECK(rep.chunks == s.size());
      for (std::size_t i = 0; i < s.size(); ++i) {
        CAPTURE(s[i].name);
        const auto bytes = test::file_bytes(files[i].output);
        REQUIRE(bytes.size() > 8);
        CHECK(img::sniff_format(bytes.data(), bytes.size()) ==
              (s[i].png ? img::image_format::png : img::image_format::pnm));
        const img::image want = img::apply(s[i].im, img::parse_ops(ops));
        const img::image got = img::decode_image(bytes.data(), bytes.size());
        CHECK(got.shape == want.shape);
        CHECK(got.samples == want.samples);
      }
    }
  }
}

TEST_CASE("run_images gives the same bytes for any chunk size, slot count and lane count",
          "[pipeline][image]") {
  test::temp_dir dir;
  auto files = write_samples(dir, samples());
  image_spec spec;
  spec.ops = "gray,blur:sigma=1,sobel";
  run_images(spec, files, test::cpu_options(0, 1));
  std::vector<std::vector<std::uint8_t>> first;
  for (const auto& f : files) first.push_back(test::file_bytes(f.output));
  for (auto [chunk, threads, slots] :
       {std::tuple{std::size_t{1} << 20, 2u, 1u}, std::tuple{std::size_t{64} << 10, 4u, 3u}}) {
    CAPTURE(chunk, threads, slots);
    fs::remove_all(dir.path() / "out");
    run_images(spec, files, test::cpu_options(chunk, threads, slots));
    for (std::size_t i = 0; i < files.size(); ++i)
      CHECK(test::file_bytes(files[i].output) == first[i]);
  }
}

TEST_CASE("run_images converts between PNM and PNG with --format", "[pipeline][image]") {
  test::temp_dir dir;
  const auto s = samples();
  auto files = write_samples(dir, s);
  image_spec spec;
  spec.ops = "invert";
  spec.format = image_output::png;
  const auto png = plan_images({dir.file("in")}, true, dir.file("png"), image_output::png);
  REQUIRE(png.size() == s.size());
  job_report rep;
  run_images(spec, png, test::cpu_options(0, 2), &rep);
  CHECK(rep.skipped.empty());
  for (std::size_t i = 0; i < s.size(); ++i) {
    CHECK(fs::path(png[i].output).extension() == ".png");
    const img::image got = test::read_image(png[i].output);
    img::image want = img::apply(s[i].im, img::parse_ops("invert"));
    if (want.shape.maxval != 255 && want.shape.maxval != 65535) {
      CHECK(got.shape.maxval == 65535);  // PNG has no maxval: rescaled to the full range
      continue;
    }
    CHECK(got.samples == want.samples);
  }
  // Back to PNM: the images with alpha cannot be written and are reported, the rest are exact.
  spec.format = image_output::pnm;
  const auto pnm = plan_images({dir.file("png")}, true, dir.file("pnm"), image_output::pnm);
  run_images(spec, pnm, test::cpu_options(0, 2), &rep);
  REQUIRE(rep.skipped.size() == 2);  // e (RGBA) and g (gray + alpha)
  for (const auto& sk : rep.skipped) CHECK_THAT(sk.reason, Contains("cannot be written as PNM"));
  CHECK_FALSE(fs::exists(dir.file("pnm/e.pnm")));
  CHECK(test::read_image(dir.file("pnm/a.pnm")).samples == s[0].im.samples);
  CHECK(entries(dir.path() / "pnm") == s.size() - 2);  // no temporary file left
}

TEST_CASE("run_images reports every bad file with its reason and writes the others",
          "[pipeline][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  const img::image good = test::random_image(13, 7, 3, 255, 9);
  test::write_image(dir.file("in/good.ppm"), good, false);
  auto pnm = img::encode_pnm(good);
  auto truncated = pnm;
  truncated.resize(truncated.size() - 5);
  test::write_bytes(dir.file("in/truncated.ppm"), truncated);
  test::write_bytes(dir.file("in/header.ppm"), {'P', '6', '\n', '1', '3', ' ', 'x', '\n'});
  test::write_bytes(dir.file("in/plain.ppm"), {'P', '3', '\n', '1', ' ', '1', '\n', '2', '5', '5',
                                               '\n', '0', ' ', '0', ' ', '0', '\n'});
  test::write_bytes(dir.file("in/text.png"), {'h', 'e', 'l', 'l', 'o'});
  test::write_bytes(dir.file("in/empty.pgm"), {});
  // maxval 100, one sample 200: refused with its position.
  std::string over = "P5\n3 2\n100\n";
  over += std::string{10, 20, 30, 40, static_cast<char>(200), 60};
  test::write_bytes(dir.file("in/over.pgm"), {over.begin(), over.end()});
  auto png = img::encode_png(good);
  png.resize(png.size() / 2);
  test::write_bytes(dir.file("in/cut.png"), png);

  const auto files = plan_images({dir.file("in")}, true, dir.file("out"), image_output::same);
  REQUIRE(files.size() == 8);
  image_spec spec;
  spec.ops = "blur:1";
  job_report rep;
  run_images(spec, files, test::cpu_options(0, 2), &rep);
  std::map<std::string, std::string> why;
  for (const auto& sk : rep.skipped) why[fs::path(sk.file).filename().string()] = sk.reason;
  CHECK(why.size() == 7);
  CHECK_THAT(why["truncated.ppm"], Contains("truncated"));
  CHECK_THAT(why["header.ppm"], Contains("malformed PNM header"));
  CHECK_THAT(why["plain.ppm"], Contains("unsupported PNM format P3"));
  CHECK_THAT(why["text.png"], Contains("not a PNM or PNG image"));
  CHECK_THAT(why["empty.pgm"], Contains("empty file"));
  CHECK_THAT(why["over.pgm"], Contains("exceeds maxval 100 at pixel (1, 1)"));
  CHECK_THAT(why["cut.png"], Contains("PNG"));
  CHECK(test::read_image(dir.file("out/good.ppm")).samples ==
        img::apply(good, img::parse_ops("blur:1")).samples);
  CHECK(entries(dir.path() / "out") == 1);  // no output, no temporary file for a bad one

  // Without a report, the first bad file is thrown after the good ones were written.
  fs::remove_all(dir.path() / "out");
  CHECK_THROWS_MATCHES(run_images(spec, files, test::cpu_options(0, 1)), input_error,
                       test::what(Contains("cut.png: bad PNG")));  // the first in input order
  CHECK(fs::exists(dir.file("out/good.ppm")));
}

TEST_CASE("run_images: an output folder that cannot be made fails its images, -o the batch",
          "[pipeline][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in/sub");
  const img::image im = test::random_image(5, 4, 1, 255, 3);
  test::write_image(dir.file("in/sub/a.pgm"), im, false);
  test::write_image(dir.file("in/sub/b.pgm"), im, false);
  fs::create_directories(dir.path() / "out");
  test::write_bytes(dir.file("out/sub"), {'x'});  // a file where the folder must go
  const auto files = plan_images({dir.file("in")}, true, dir.file("out"), image_output::same);
  REQUIRE(files.size() == 2);
  image_spec spec;
  spec.ops = "invert";
  job_report rep;
  // Every image goes below out/sub: that folder is not -o, and fails its images alone.
  run_images(spec, files, test::cpu_options(0, 2), &rep, dir.file("out"));
  REQUIRE(rep.skipped.size() == 2);
  for (const auto& sk : rep.skipped)
    CHECK(sk.reason == "cannot create the folder " + dir.file("out/sub") + ": not a directory");
  // -o itself: the batch, before any work.
  test::write_bytes(dir.file("file"), {'x'});
  const auto under_file =
      plan_images({dir.file("in")}, true, dir.file("file/out"), image_output::same);
  CHECK_THROWS_MATCHES(
      run_images(spec, under_file, test::cpu_options(0, 2), &rep, dir.file("file/out")), io_error,
      test::what(Contains("not a directory")));
}

TEST_CASE("run_images runs images larger than a chunk after the others, in a job of their own",
          "[pipeline][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in");
  const img::image small = test::random_image(8, 8, 1, 255, 1);
  const img::image big = test::random_image(100, 60, 3, 255, 2);
  const img::image big16 = test::random_image(70, 50, 1, 65535, 3);
  test::write_image(dir.file("in/small.pgm"), small, false);
  test::write_image(dir.file("in/big.ppm"), big, false);
  test::write_image(dir.file("in/big16.pgm"), big16, false);
  auto cut = img::encode_pnm(big);
  cut.resize(cut.size() - 7);
  test::write_bytes(dir.file("in/cut.ppm"), cut);
  std::vector<image_file> files;
  for (const char* n : {"big.ppm", "small.pgm", "gone.pgm", "cut.ppm", "big16.pgm"})
    files.push_back({dir.file(std::string("in/") + n), dir.file(std::string("out/") + n)});
  std::uint64_t bytes = 0;
  for (const auto& f : files) bytes += fs::exists(f.input) ? fs::file_size(f.input) : 0;
  image_spec spec;
  spec.ops = "gray,blur:1.5,sobel";
  const auto ops = img::parse_ops(spec.ops);
  for (unsigned threads : {1u, 3u}) {
    CAPTURE(threads);
    fs::remove_all(dir.path() / "out");
    job_report rep;
    // 4 KiB chunks: big, big16 and cut do not fit; small does.
    run_images(spec, files, test::cpu_options(4096, threads), &rep);
    REQUIRE(rep.skipped.size() == 2);
    CHECK(rep.skipped[0].input == 2);
    CHECK_THAT(rep.skipped[0].reason, Contains("no such file"));
    CHECK(rep.skipped[1].input == 3);
    CHECK_THAT(rep.skipped[1].reason, Contains("truncated"));
    CHECK(rep.chunks == 4);  // both jobs' chunks, and their bytes
    CHECK(rep.bytes == bytes);
    CHECK(test::read_image(dir.file("out/small.pgm")).samples == img::apply(small, ops).samples);
    CHECK(test::read_image(dir.file("out/big.ppm")).samples == img::apply(big, ops).samples);
    CHECK(test::read_image(dir.file("out/big16.pgm")).samples == img::apply(big16, ops).samples);
    CHECK(entries(dir.path() / "out") == 3);  // nothing for cut.ppm, no temporary file
  }
  // One trace holds both jobs: the second job's rows are named "large: ...", and every chunk has
  // its host span on a row of its job.
  {
    fs::remove_all(dir.path() / "out");
    options o = test::cpu_options(4096, 2);
    o.trace_path = dir.file("trace.json");
    job_report rep;
    run_images(spec, files, o, &rep);
    const auto doc = nlohmann::json::parse(test::file_bytes(o.trace_path));
    std::map<int, std::string> rows;
    for (const auto& e : doc["traceEvents"])
      if (e["ph"] == "M") rows[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
    int first = 0, second = 0;
    for (const auto& e : doc["traceEvents"])
      if (e["ph"] == "X" && e["name"] == "host")
        (rows[e["tid"].get<int>()].rfind("large: cpu lane ", 0) == 0 ? second : first)++;
    CHECK(first == 1);   // small.pgm
    CHECK(second == 3);  // big.ppm, cut.ppm, big16.pgm
    CHECK(rep.skipped.size() == 2);
  }
  // Without a report, the first bad file is thrown once both jobs are done.
  fs::remove_all(dir.path() / "out");
  CHECK_THROWS_MATCHES(run_images(spec, files, test::cpu_options(4096, 2)), input_error,
                       test::what(Contains("gone.pgm")));
  CHECK(fs::exists(dir.file("out/big16.pgm")));
}

TEST_CASE("plan_images keeps names and folder layout, refuses clashes", "[pipeline][image]") {
  test::temp_dir dir;
  fs::create_directories(dir.path() / "in/sub");
  const auto im = test::random_image(2, 2, 1, 255, 1);
  test::write_image(dir.file("in/x.pgm"), im, false);
  test::write_image(dir.file("in/sub/y.PGM"), im, false);
  test::write_bytes(dir.file("in/readme.txt"), {'h', 'i'});
  test::write_image(dir.file("z.pgm"), im, false);

  auto files =
      plan_images({dir.file("in"), dir.file("z.pgm")}, true, dir.file("o"), image_output::same);
  REQUIRE(files.size() == 3);  // readme.txt is not taken from a folder
  CHECK(files[0].input == dir.file("in/sub/y.PGM"));
  CHECK(files[0].output == dir.file("o/sub/y.PGM"));
  CHECK(files[1].output == dir.file("o/x.pgm"));
  CHECK(files[2].output == dir.file("o/z.pgm"));
  CHECK(plan_images({dir.file("z.pgm")}, false, dir.file("o"), image_output::png)[0].output ==
        dir.file("o/z.png"));
  // An output folder inside the input folder is not walked (it holds an earlier run's outputs).
  fs::create_directories(dir.path() / "o");
  test::write_image(dir.file("o/x.pgm"), im, false);
  files = plan_images({dir.file(".")}, true, dir.file("o"), image_output::same);
  for (const auto& f : files) CHECK(f.input.find("/o/") == std::string::npos);
  CHECK(files.size() == 3);
  // A named file is taken whatever its name (and refused later if it is no image).
  CHECK(plan_images({dir.file("in/readme.txt")}, false, "o", image_output::same).size() == 1);

  // A folder without recursive is an entry with its reason, as a missing path.
  files = plan_images({dir.file("in")}, false, dir.file("o"), image_output::same);
  REQUIRE(files.size() == 1);
  CHECK(files[0].error == "is a directory (-r walks folders)");
  CHECK(files[0].output.empty());
  CHECK_FALSE(files[0].folder);  // counted as a failed input, not as a folder -r could not read
  CHECK_THROWS_MATCHES(plan_images({dir.file("z.pgm")}, false, "", image_output::same), usage_error,
                       test::what(Contains("no output folder")));
  // A missing path is an entry with its reason (reported with the bad images; the others go on).
  files =
      plan_images({dir.file("nope"), dir.file("z.pgm")}, false, dir.file("o"), image_output::same);
  REQUIRE(files.size() == 2);
  CHECK(files[0].input == dir.file("nope"));
  CHECK(files[0].error == "no such file or directory");
  CHECK(files[0].output.empty());
  CHECK(files[1].error.empty());
  // Links to folders are not followed, as find(1) walks (a link up to the folder itself made an
  // endless walk of ever longer names).
  fs::create_directory_symlink(dir.path() / "in", dir.path() / "in/sub/up");
  fs::create_symlink(dir.path() / "z.pgm", dir.path() / "in/zlink.pgm");
  files = plan_images({dir.file("in")}, true, dir.file("o2"), image_output::same);
  REQUIRE(files.size() == 3);
  CHECK(files[0].input == dir.file("in/sub/y.PGM"));
  CHECK(files[1].input == dir.file("in/x.pgm"));
  CHECK(files[2].input == dir.file("in/zlink.pgm"));  // a link to a file is taken
  fs::remove(dir.path() / "in/sub/up");
  fs::remove(dir.path() / "in/zlink.pgm");
  CHECK_THROWS_MATCHES(plan_images({dir.file("in/x.pgm"), dir.file("in/sub/../x.pgm")}, false,
                                   dir.file("o"), image_output::same),
                       usage_error, test::what(Contains("would both be written to")));
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("in/x.pgm")}, false, dir.file("in"), image_output::same), usage_error,
      test::what(Contains("is its own input")));
  CHECK(fs::exists(dir.file("in/x.pgm")));
  // An output that is another input, which its commit would replace before that one is read
  // (in/x.pgm goes to in/sub/x.pgm, the second input); also through a linked input.
  fs::create_directories(dir.path() / "in/sub");
  test::write_image(dir.file("in/sub/x.pgm"), im, false);
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("in/x.pgm"), dir.file("in/sub/x.pgm")}, false, dir.file("in/sub"),
                  image_output::same),
      usage_error,
      test::what(Contains("the output " + dir.file("in/sub/x.pgm") + " of " + dir.file("in/x.pgm") +
                          " is the input " + dir.file("in/sub/x.pgm"))));
  fs::create_symlink(dir.file("in/sub/x.pgm"), dir.path() / "linked.pgm");
  CHECK_THROWS_MATCHES(plan_images({dir.file("in/x.pgm"), dir.file("linked.pgm")}, false,
                                   dir.file("in/sub"), image_output::same),
                       usage_error, test::what(Contains("is the input " + dir.file("linked.pgm"))));
  fs::remove(dir.path() / "linked.pgm");
  fs::remove(dir.path() / "in/sub/x.pgm");
  // The commit writes through a link to a file at an output's name: a link to the input there is
  // the input; a dangling one is replaced. A folder or FIFO there is refused before any work (a
  // FIFO held the whole batch until a reader came).
  fs::create_directories(dir.path() / "lk");
  fs::create_symlink(dir.file("in/x.pgm"), dir.path() / "lk/x.pgm");
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("in/x.pgm")}, false, dir.file("lk"), image_output::same), usage_error,
      test::what(Contains("is its own input")));
  fs::remove(dir.path() / "lk/x.pgm");
  fs::create_symlink(dir.file("in/none.pgm"), dir.path() / "lk/x.pgm");
  CHECK(plan_images({dir.file("in/x.pgm")}, false, dir.file("lk"), image_output::same).size() == 1);
  fs::remove(dir.path() / "lk/x.pgm");
  REQUIRE(::mkfifo(dir.file("lk/x.pgm").c_str(), 0600) == 0);
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("in/x.pgm")}, false, dir.file("lk"), image_output::same), usage_error,
      test::what(Contains("lk/x.pgm exists and is not a regular file")));
  fs::remove(dir.path() / "lk/x.pgm");
  fs::create_directories(dir.path() / "lk/x.pgm");
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("in/x.pgm")}, false, dir.file("lk"), image_output::same), usage_error,
      test::what(Contains("lk/x.pgm exists and is a folder")));

  // Many files are checked on several threads; the error still names the first in order.
  fs::create_directories(dir.path() / "many");
  for (int i = 0; i < 600; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "many/m%03d.pgm", i);
    test::write_bytes(dir.file(name), {'P'});
  }
  CHECK_THROWS_MATCHES(
      plan_images({dir.file("many")}, true, dir.file("many"), image_output::same), usage_error,
      test::what(Contains("the output " + dir.file("many/m000.pgm") + " is its own input")));
  CHECK(plan_images({dir.file("many")}, true, dir.file("o"), image_output::same).size() == 600);
  // Output folders are compared resolved: with a relative -o whose subfolder "sub" is a link to
  // the folder itself, two/a.pgm and two/sub/a.pgm would both be written to one file.
  fs::create_directories(dir.path() / "two/sub");
  test::write_bytes(dir.file("two/a.pgm"), {'P'});
  test::write_bytes(dir.file("two/sub/a.pgm"), {'P'});
  fs::create_directories(dir.path() / "p");
  fs::create_directory_symlink(".", dir.path() / "p/sub");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  CHECK_THROWS_MATCHES(plan_images({"two"}, true, "p", image_output::same), usage_error,
                       test::what(Contains("would both be written to")));
  fs::current_path(cwd);
  CHECK(plan_images({dir.file("two")}, true, dir.file("q"), image_output::same).size() == 2);
}

TEST_CASE("check_image_spec refuses bad ops and levels", "[pipeline][image]") {
  image_spec s;
  s.ops = "gray,blurr";
  CHECK_THROWS_AS(check_image_spec(s), usage_error);
  s.ops = "blur:sigma=0";
  CHECK_THROWS_AS(check_image_spec(s), usage_error);
  s.ops = "gray";
  s.png_level = 10;
  CHECK_THROWS_AS(check_image_spec(s), usage_error);
  s.png_level = 9;
  CHECK_NOTHROW(check_image_spec(s));
}

TEST_CASE("an image alone, its rows split among the idle lanes' threads, gives the same bytes",
          "[pipeline][image]") {
  test::temp_dir dir;
  const img::image im = test::random_image(301, 203, 3, 255, 11);
  test::write_image(dir.file("a.ppm"), im, false);
  image_spec spec;
  spec.ops = "gray,blur:sigma=2,sobel,resize:0.7";
  const std::vector<image_file> one = {{dir.file("a.ppm"), dir.file("out/a.ppm")}};
  run_images(spec, one, test::cpu_options(0, 4));  // 4 lanes, 1 image: 4 threads on its rows
  CHECK(test::read_image(dir.file("out/a.ppm")).samples ==
        img::apply(im, img::parse_ops(spec.ops)).samples);
}

TEST_CASE("a cancel stops an image in the middle of its rows, and leaves no output",
          "[pipeline][image]") {
  // An image whose chain takes its one lane about 1.7 s (2-core box; 8192^2 output rows, told 64
  // at a time): the cancel comes 0.3 s in. Before, the lane finished the image, and the job, its
  // every output in place, succeeded.
  test::temp_dir dir;
  test::write_image(dir.file("a.pgm"), test::random_image(1024, 1024, 1, 255, 12), false);
  image_spec spec;
  spec.ops = "resize:8";
  for (int i = 0; i < 24; ++i) spec.ops += ",blur:sigma=1,sobel";
  const std::vector<image_file> one = {{dir.file("a.pgm"), dir.file("out/a.pgm")}};
  options o = test::cpu_options(0, 1);
  std::atomic<bool> stop{false};
  o.cancel = &stop;
  std::thread canceller([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  CHECK_THROWS_AS(run_images(spec, one, o), cancelled);
  canceller.join();
  CHECK_FALSE(fs::exists(dir.file("out/a.pgm")));
}

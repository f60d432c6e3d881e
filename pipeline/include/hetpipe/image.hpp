// Batch image filters: a chain of ops (gray, blur, sobel, resize, invert, threshold) over many
// PNM/PNG files, one image per chunk, on CPU lanes and GPU lanes together. The definitions of the
// ops (exact integer arithmetic, identical bytes on CPU and GPU) are in host/image_ops.hpp and
// the README.
//
//   hetpipe::image_spec spec;
//   spec.ops = "gray,blur:sigma=2,sobel";
//   auto files = hetpipe::plan_images({"photos"}, true, "out", spec.format);
//   hetpipe::job_report rep;
//   hetpipe::run_images(spec, files, hetpipe::options{}, &rep, "out");
//   for (auto& s : rep.skipped) std::cerr << s.file << ": " << s.reason << "\n";
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe {

enum class image_output : std::uint8_t {
  same,  // each output in its input's format
  pnm,   // P5 (gray) or P6 (RGB); an image with alpha cannot be written (that file is skipped)
  png,
};

struct image_spec {
  std::string ops;  // "gray,blur:sigma=1.5,sobel,resize:0.5" (empty: no op, a format conversion)
  image_output format = image_output::same;
  int png_level = 6;  // zlib compression level of PNG outputs, 0..9
  // Threads that share each image's rows on a CPU lane, the lanes then being the CPU threads
  // divided by it (fewer images in flight, each done sooner: beside GPU lanes that join late,
  // fewer large images are held by CPU lanes when they come). 0: one, or the lanes' share when
  // there are fewer images than lanes. At most 4096.
  unsigned threads_per_image = 0;
};

// Throws usage_error naming the bad item of spec.ops, or a bad png_level.
void check_image_spec(const image_spec& spec);

struct image_file {
  std::string input;
  std::string output;
  // Not empty: why input cannot be read (a path that does not exist, a folder the walk could not
  // open); run_images lists it in report->skipped with this reason, output then empty.
  std::string error;
  // A folder the walk could not open (with its error): no image, though listed with them.
  bool folder = false;
};

// The inputs named by `paths` and their outputs under `outdir`. A file keeps its name; a file
// found in a folder (walked when `recursive`, sorted by name, only *.pgm *.ppm *.pnm *.png in any
// letter case; links to folders are not followed, as find(1) walks) keeps its path below that
// folder. With format pnm or png the extension becomes .pnm or .png. A path that does not exist,
// a folder without `recursive`, or a folder below one that cannot be opened, is an entry with its
// error. Throws usage_error for an empty outdir, when two inputs would write the same output, or
// when an output would replace its own input.
std::vector<image_file> plan_images(const std::vector<std::string>& paths, bool recursive,
                                    const std::string& outdir, image_output format);

// Runs the chain over every file; writes each output through a temporary file renamed on success
// (creating its folder). A bad image (malformed header, truncated pixel data, unsupported format,
// an output its format cannot hold), or one whose output cannot be written (its folder cannot be
// made, a full disk, a read-only folder), gets no output and is listed in report->skipped with its
// reason; the others are written. `outdir`, when given, is the folder plan_images wrote under:
// where it cannot be made, no image could be written, and it throws io_error before any work.
// Without a report, the first bad image is thrown after the job.
// Options: chunk_size 0 sizes the chunk to the largest file, up to max_chunk_size; slots default to
// what fits in 1 GiB of chunks. Files larger than the chunk run afterwards in a second job, one
// at a time on one CPU lane with all the CPU threads (in every device mode); the report then sums
// both jobs (bytes, chunks, seconds, lanes), and one trace holds both. Other errors
// (reading, CUDA) stop the job.
void run_images(const image_spec& spec, const std::vector<image_file>& files, const options& opt,
                job_report* report = nullptr, const std::string& outdir = {});

// A deterministic image set for samples, tests and benchmarks (the same bytes on every machine
// for the same spec): smooth gradients, shapes, edges and noise, so filters and PNG compression
// see realistic content. Files are <prefix>-<6-digit index>.<pgm|ppm|png> in outdir (created),
// each written through a temporary file renamed on success; OpenMP across images.
struct image_set_spec {
  std::uint32_t width = 640, height = 480;
  std::uint32_t channels = 3;  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA (PNM: 1 or 3)
  std::uint32_t depth = 8;     // 8 or 16 bits per sample
  std::size_t count = 1;
  image_output format = image_output::pnm;  // pnm or png (same is pnm)
  std::uint64_t seed = 1;
  std::string outdir;
  std::string prefix = "img";
  // Set to true (from any thread or a signal handler) to stop: the images being written are
  // finished (whole files only), no new one starts, and cancelled is thrown.
  std::atomic<bool>* cancel = nullptr;
};
// The most images one set holds.
inline constexpr std::size_t max_image_set = 10'000'000;
// Returns the paths written, in index order. Throws usage_error for a bad spec (an image larger
// than the machine's memory included), io_error; hetpipe::error when an image cannot be made
// under a memory limit.
std::vector<std::string> generate_images(const image_set_spec& spec);

}  // namespace hetpipe

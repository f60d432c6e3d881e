// The hetpipe command: argument parsing, output formatting, exit codes. Uses the public API only.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <new>
#include <string_view>

#include <CLI/CLI.hpp>
#include <hetpipe/hetpipe.hpp>

#include "age_cmd.hpp"
#include "checksum_cmd.hpp"
#include "count_cmd.hpp"
#include "format.hpp"
#include "gen.hpp"
#include "stats_cmd.hpp"

namespace {

std::atomic<bool> g_cancel{false};

// An unsigned option's text: digits only, at most `max` (CLI11 took "-1" as 2^64 - 1 and cut
// 2^64 down to it, and said only "Could not convert" of "abc").
CLI::Validator whole_number(std::uint64_t max) {
  return CLI::Validator(
      [max](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v > max)
          return "'" + text + "' is not a whole number from 0 to " + std::to_string(max);
        return {};
      },
      "");  // the option's type already says UINT
}

// A signed option's text: an int (the library says which range it takes).
CLI::Validator an_int() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int v = 0;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || p != text.data() + text.size())
          return "'" + text + "' is not a whole number";
        return {};
      },
      "");
}

struct common {
  std::string chunk_size, device = "auto", trace, reads;
  unsigned slots = 0, io_threads = 0, cpu_threads = 0, gpu_lanes = 0;
  bool progress = false, no_progress = false, json = false;
  int verbose = 0;
  CLI::Option* chunk_opt = nullptr;

  // device_help, reads_help, chunk_help: the words of --device, --reads and --chunk-size where
  // they differ (bench, image).
  void add(CLI::App* app, const char* device_help = "auto | cpu | gpu",
           const char* reads_help =
               "who reads large chunks while no GPU lane runs: map (CPU "
               "lanes work on the page cache, the default) | lane (CPU lanes "
               "read into their slots) | pool (libuv's threads read ahead)",
           const char* chunk_help =
               "bytes per chunk (K/M/G suffixes; default 2M with GPU lanes; without, 4M with "
               "--reads map, 1M otherwise; 4K..1G)") {
    chunk_opt = app->add_option("--chunk-size", chunk_size, chunk_help);
    app->add_option("--slots", slots, "pinned host slots in the pool (default: from threads)")
        ->check(whole_number(UINT32_MAX));
    app->add_option(
           "--io-threads", io_threads,
           "libuv thread-pool size, and a transform's commit threads (default: UV_THREADPOOL_SIZE "
           "when set, else cores, 4..16)")
        ->check(whole_number(UINT32_MAX));
    app->add_option("--cpu-threads", cpu_threads,
                    "CPU lanes (default: hardware threads; half of them go on once GPU lanes run)")
        ->check(whole_number(UINT32_MAX));
    app->add_option("--gpu-lanes", gpu_lanes, "GPU lanes per device (default 2)")
        ->check(whole_number(UINT32_MAX));
    app->add_option("--device", device, device_help)->check(CLI::IsMember({"auto", "cpu", "gpu"}));
    app->add_option("--reads", reads, reads_help)->check(CLI::IsMember({"pool", "lane", "map"}));
    app->add_flag("--progress", progress, "show progress on stderr (default when a terminal)");
    app->add_flag("--no-progress", no_progress, "never show progress");
    app->add_flag("--json", json, "print the result as JSON");
    app->add_option("--trace", trace, "write a Chrome trace-event JSON (open it in Perfetto)")
        ->check(CLI::Validator(
            [](std::string& t) { return t.empty() ? std::string("an empty file name") : ""; },
            "FILE"));
    app->add_flag("-v,--verbose", verbose, "busy time per stage and lane on stderr");
  }
  hetpipe::options to_options() const {
    hetpipe::options o;
    if (chunk_opt && chunk_opt->count() > 0) {  // given: "" and 0 are errors, not the default
      o.chunk_size = hetpipe::parse_size(chunk_size);
      if (o.chunk_size == 0) throw hetpipe::usage_error("--chunk-size must be between 4K and 1G");
    }
    o.slots = slots;
    o.io_threads = io_threads;
    o.cpu_threads = cpu_threads;
    o.gpu_lanes = gpu_lanes;
    o.device = *hetpipe::parse_device_mode(device);
    if (!reads.empty()) o.reads = *hetpipe::parse_read_mode(reads);
    o.progress = !no_progress && (progress || ::isatty(STDERR_FILENO));
    // "-" is standard output elsewhere, where results go: not a file named "-" here.
    if (trace == "-")
      throw hetpipe::usage_error(
          "--trace writes a file: name one (standard output holds the results)");
    o.trace_path = trace;
    o.verbose = verbose;
    o.cancel = &g_cancel;
    return o;
  }
};

// `bench read` / `bench copy`: what was moved, how fast (the job from its first read; its set-up,
// the pool's allocation above all, is given apart), with which lanes and chunks. To `out`: stderr
// where the copy itself goes to standard output.
void print_bench(std::FILE* out, const char* verb, std::uint64_t bytes,
                 const hetpipe::job_report& rep, bool json) {
  const double gbps = rep.seconds > 0 ? static_cast<double>(bytes) / rep.seconds * 1e-9 : 0;
  if (json) {
    const std::string text =
        hetpipe::cli::json_text(nlohmann::json{{"bytes", bytes},
                                               {"seconds", rep.seconds},
                                               {"gb_per_s", gbps},
                                               {"setup_seconds", rep.setup_seconds},
                                               {"cpu_lanes", rep.cpu_lanes},
                                               {"io_threads", rep.resolved.io_threads},
                                               {"chunk_size", rep.resolved.chunk_size}},
                                -1);
    std::fprintf(out, "%s\n", text.c_str());
  } else {
    std::fprintf(out, "%s %s in %.3f s: %.2f GB/s (set-up %.3f s before; %s, %s, chunk %s)\n", verb,
                 hetpipe::format_size(bytes).c_str(), rep.seconds, gbps, rep.setup_seconds,
                 hetpipe::cli::count_of(rep.cpu_lanes, "CPU lane").c_str(),
                 hetpipe::cli::count_of(rep.resolved.io_threads, "io thread").c_str(),
                 hetpipe::format_size(rep.resolved.chunk_size).c_str());
  }
}

// Whether `path` is where standard output goes ("-", /dev/stdout, or its file, pipe or terminal
// by another name; not a device such as /dev/null that both happen to be).
bool is_stdout(const std::string& path) {
  if (path == "-") return true;
  struct stat a {
  }, b{};
  if (::fstat(STDOUT_FILENO, &a) != 0 || ::stat(path.c_str(), &b) != 0 || a.st_dev != b.st_dev ||
      a.st_ino != b.st_ino)
    return false;
  return !S_ISCHR(a.st_mode) || ::isatty(STDOUT_FILENO) != 0;
}

std::vector<hetpipe::input> to_inputs(const std::vector<std::string>& files) {
  std::vector<hetpipe::input> in;
  for (const auto& f : files) in.push_back({f, 0, std::nullopt});
  return in;
}

// Standard streams the caller closed (`<&-`, `>&-`, `2>&-`) get /dev/null in their place, so that
// no file this process opens takes descriptor 0, 1 or 2 (libuv asserts when it closes one of
// those); main() refuses a command that would read or write a closed one.
std::array<bool, 3> reserve_std_streams() {
  std::array<bool, 3> closed{};
  for (int fd = 0; fd < 3; ++fd) {  // lowest first: open() then returns fd itself
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    closed[static_cast<std::size_t>(fd)] = true;
    const int got = ::open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
    if (got >= 0 && got != fd) {
      ::dup2(got, fd);
      ::close(got);
    }
  }
  return closed;
}

// --columns' list: names separated by commas, a name that holds a comma or a quote written as a
// CSV field ("score, z"; "" for a quote).
std::vector<std::string> column_list(const std::string& list) {
  std::vector<std::string> names;
  const auto bad = [&](const std::string& why) {
    return hetpipe::usage_error("--columns: " + why + " in '" + list + "'");
  };
  std::size_t at = 0;
  while (true) {
    std::string name;
    if (at < list.size() && list[at] == '"') {
      for (++at;; ++at) {
        if (at == list.size()) throw bad("a quote that is not closed");
        if (list[at] == '"' && (at + 1 == list.size() || list[at + 1] != '"')) break;
        name += list[at];
        if (list[at] == '"') ++at;  // "" is one quote
      }
      ++at;
      if (at < list.size() && list[at] != ',') throw bad("text after a closing quote");
    } else {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      name = list.substr(at, comma - at);
      if (name.find('"') != std::string::npos) throw bad("a quote inside a name not quoted");
      at = comma;
    }
    if (name.empty()) throw bad("an empty column name");
    names.push_back(std::move(name));
    if (at == list.size()) return names;
    ++at;  // the comma
  }
}

bool names_stdin(const std::vector<std::string>& paths) {
  return std::find(paths.begin(), paths.end(), "-") != paths.end();
}

}  // namespace

int main(int argc, char** argv) {
  const std::array<bool, 3> closed = reserve_std_streams();
  // Buffers of a few MiB come and go with every chunk or image. glibc would map each afresh and
  // the kernel zero and fault in every page again (a fifth of the time of 1080p image batches,
  // measured); kept on the heap and not trimmed, they are reused.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{
      "hetpipe: stream files through CPU threads and CUDA GPUs at the speed of the hardware"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hetpipe ") + hetpipe::version());

  // An empty file name (an unset shell variable) is refused, not taken for the option's absence:
  // --keyed "$KEYFILE" must not quietly hash without a key, and an input named "" has no name to
  // report it by.
  const CLI::Validator named([](std::string& v) { return v.empty() ? "an empty file name" : ""; },
                             "FILE");
  common stats_opt;
  std::vector<std::string> stats_files;
  std::string stats_dtype;
  hetpipe::csv_spec stats_csv;
  std::string stats_delim, stats_columns;
  bool stats_header = false, stats_no_header = false;
  auto* stats =
      app.add_subcommand("stats", "exact column statistics of .npy, CSV or raw binary files");
  stats
      ->add_option("files", stats_files,
                   "files (.npy; .csv and .tsv, or any with --csv; raw with --dtype; - = stdin)")
      ->required()
      ->check(named);
  auto* dtype_opt = stats->add_option(
      "--dtype", stats_dtype, "element type of raw files: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64");
  stats->add_flag("--csv", stats_csv.all, "read every file (and stdin) as CSV");
  stats->add_option("--delimiter", stats_delim,
                    "CSV field delimiter: one character, or 'tab' (default ',', a tab for .tsv)");
  auto* header_opt = stats->add_flag(
      "--header", stats_header,
      "the first CSV line is a header (default: when one of its fields is not a number)");
  stats->add_flag("--no-header", stats_no_header, "the first CSV line is a record")
      ->excludes(header_opt);
  stats->add_option("--columns", stats_columns,
                    "CSV columns to compute, by header name or number from 1 (comma-separated; "
                    "a name with a comma in quotes: '\"score, z\",b'), each of numbers only; "
                    "default: every column of numbers (the others are left out and named)");
  stats_opt.add(stats);

  common sum_opt;
  std::vector<std::string> sum_files;
  std::string sum_algo = "blake3", sum_keyfile, sum_context;
  std::size_t sum_length = 32;
  bool sum_recursive = false, sum_no_names = false, sum_raw = false, sum_check = false;
  hetpipe::cli::check_output sum_how;
  auto* sum = app.add_subcommand(
      "checksum", "BLAKE3, CRC32C or CRC32 digests, as b3sum / sha256sum print them");
  sum->add_option("files", sum_files,
                  "files (- = stdin; folders with -r); with --check, the SUMFILEs to verify")
      ->check(named);
  sum->add_option("-a,--algorithm", sum_algo, "blake3 | crc32c | crc32 (default blake3)")
      ->check(CLI::IsMember({"blake3", "crc32c", "crc32"}));
  auto* recursive_opt = sum->add_flag("-r,--recursive", sum_recursive,
                                      "walk folders (sorted, links to folders skipped)");
  // A switch, as sha256sum's and b3sum's -c: the files given are the lists ("-c --status" took
  // --status for the list's name when -c took a value).
  auto* check_opt = sum->add_flag(
      "-c,--check", sum_check,
      "verify the files listed in each SUMFILE ('HEX  NAME' lines; none or - = stdin)");
  sum->add_flag("--quiet", sum_how.quiet, "with --check: print only the files that fail")
      ->needs(check_opt);
  sum->add_flag("--status", sum_how.status,
                "with --check: print nothing on stdout; the exit status says whether all passed")
      ->needs(check_opt);
  sum->add_flag("--ignore-missing", sum_how.ignore_missing,
                "with --check: skip listed files that do not exist (fail if none is left)")
      ->needs(check_opt);
  recursive_opt->excludes(check_opt);  // the list names the files
  sum->add_option("-l,--length", sum_length,
                  "BLAKE3 output bytes, 1..67108864 (extended output; default 32)")
      ->check(whole_number(SIZE_MAX));
  auto* keyed_opt =
      sum->add_option("--keyed", sum_keyfile,
                      "keyed BLAKE3 with the 32-byte key in KEYFILE (- = stdin, as b3sum reads it)")
          ->check(named);
  auto* derive_opt = sum->add_option("--derive-key", sum_context,
                                     "BLAKE3 key derivation with this context string: each file "
                                     "is key material, its digest the derived key");
  derive_opt->excludes(keyed_opt);
  auto* no_names_opt =
      sum->add_flag("--no-names", sum_no_names, "print the digests alone, one per line");
  auto* raw_opt =
      sum->add_flag("--raw", sum_raw, "write the digest's bytes, not hex (one input only)");
  sum_opt.add(sum);
  for (CLI::Option* digests_only : {no_names_opt, raw_opt})
    digests_only->excludes(check_opt)->excludes(sum->get_option("--json"));

  common count_opt;
  std::vector<std::string> count_files;
  hetpipe::cli::count_output count_how;
  bool count_l = false, count_w = false, count_m = false, count_c = false;
  auto* count_cmd = app.add_subcommand(
      "count", "lines, words and bytes of text files, as wc counts them (CPU and GPU lanes)");
  count_cmd->add_option("files", count_files, "files (- = stdin, the default; folders with -r)")
      ->check(named);
  count_cmd->add_flag("-l,--lines", count_l, "print the line counts ('\\n' bytes)");
  count_cmd->add_flag("-w,--words", count_w,
                      "print the word counts (runs of bytes other than ASCII white space)");
  count_cmd->add_flag("-m,--chars", count_m,
                      "print the character counts (UTF-8: bytes outside 0x80..0xBF)");
  count_cmd->add_flag("-c,--bytes", count_c, "print the byte counts");
  count_cmd->add_flag("-r,--recursive", count_how.recursive,
                      "walk folders (sorted, links to folders skipped)");
  count_opt.add(count_cmd);

  std::string keygen_out = "-";
  auto* keygen = app.add_subcommand("keygen", "a new age X25519 identity (AGE-SECRET-KEY-1...)");
  keygen->add_option("-o,--output", keygen_out, "identity file (mode 0600; default stdout)");

  // -p and --passphrase-env, as encrypt and decrypt share them.
  auto add_passphrase = [](CLI::App* sub, bool& flag, std::string& env, const char* what) {
    sub->add_flag("-p,--passphrase", flag, what);
    sub->add_option("--passphrase-env", env,
                    "read the passphrase from this environment variable (for scripts)");
  };

  common enc_opt;
  hetpipe::encrypt_spec enc;
  std::string enc_in = "-", enc_out = "-", enc_pass_env;
  bool enc_pass = false;
  auto* encrypt = app.add_subcommand("encrypt", "age v1 encryption (interoperates with age)");
  encrypt->add_option("input", enc_in, "file to encrypt (default: stdin)")->check(named);
  encrypt->add_option("-o,--output", enc_out, "output file (default: stdout)");
  encrypt->add_option("-r,--recipient", enc.recipients, "an age1... recipient (repeatable)")
      ->allow_extra_args(false);
  encrypt
      ->add_option("-R,--recipients-file", enc.recipient_files,
                   "a file of age1... recipients (repeatable)")
      ->allow_extra_args(false);
  add_passphrase(encrypt, enc_pass, enc_pass_env, "encrypt with a passphrase (scrypt)");
  encrypt->add_option("--work-factor", enc.scrypt_log2_work, "scrypt log2(N) (default 18)")
      ->check(an_int());
  encrypt->add_flag("-a,--armor", enc.armor, "PEM-like ASCII output");
  enc_opt.add(encrypt);

  common dec_opt;
  hetpipe::decrypt_spec dec;
  std::string dec_in = "-", dec_out = "-", dec_pass_env;
  bool dec_pass = false;
  auto* decrypt = app.add_subcommand("decrypt", "age v1 decryption (binary or armored)");
  decrypt->add_option("input", dec_in, "file to decrypt (default: stdin)")->check(named);
  decrypt->add_option("-o,--output", dec_out, "output file (default: stdout)");
  decrypt->add_option("-i,--identity", dec.identity_files, "an identity file (repeatable)")
      ->allow_extra_args(false);
  add_passphrase(decrypt, dec_pass, dec_pass_env, "the file was encrypted with a passphrase");
  decrypt
      ->add_option("--max-work-factor", dec.max_scrypt_log2_work,
                   "refuse passphrase files costlier than scrypt log2(N) (default 22)")
      ->check(an_int());
  dec_opt.add(decrypt);

  common info_opt;
  auto* info =
      app.add_subcommand("info", "build, devices, and the lanes and pools a job would use");
  info_opt.add(info);
  // info runs no job: nothing to trace, time or show progress of.
  for (const char* name : {"--trace", "--verbose", "--progress", "--no-progress"})
    info->remove_option(info->get_option(name));

  common bench_opt;
  std::vector<std::string> bench_files;
  auto* bench = app.add_subcommand("bench", "measurements");
  bench->require_subcommand(1);
  auto* bench_read =
      bench->add_subcommand("read", "read-only pass through the pipeline: the ceiling");
  bench_read->add_option("files", bench_files, "files to read")->required()->check(named);
  bench_opt.add(bench_read, "auto | cpu (bench measures CPU lanes alone)",
                "who reads the chunks: lane (CPU lanes read into their slots; the default, and "
                "what map does here) | pool (libuv's threads read ahead)");
  common copy_opt;
  std::string copy_in, copy_out;
  auto* bench_copy = bench->add_subcommand(
      "copy", "copy through the pipeline and its ordered writer: the ceiling of transforms");
  bench_copy->add_option("file", copy_in, "file to copy")->required()->check(named);
  bench_copy
      ->add_option("-o,--output", copy_out,
                   "where the copy goes (- for standard output: the summary then goes to stderr)")
      ->required()
      ->check(named);
  copy_opt.add(bench_copy, "auto | cpu (bench measures CPU lanes alone)");

  hetpipe::cli::gen_spec gen;
  std::string gen_dtype = "f32", gen_count;
  auto* gen_cmd = app.add_subcommand("gen", "write deterministic sample data");
  gen_cmd->add_option("--dtype", gen_dtype, "element type")->required();
  gen_cmd->add_option("--rows", gen_count, "rows (elements for 1-D); K/M/G = 10^3/10^6/10^9")
      ->required();
  gen_cmd->add_option("--cols", gen.cols, "columns (2-D .npy)")->check(whole_number(UINT32_MAX));
  gen_cmd->add_flag("--npy", gen.npy, "write a .npy file");
  gen_cmd->add_option("--seed", gen.seed, "random seed")->check(whole_number(UINT64_MAX));
  gen_cmd
      ->add_option("--dist", gen.dist,
                   "normal (integers around 0, or 1000 unsigned; 8-bit ones mid-range) | "
                   "uniform (floats in [0, 1), integers over their whole range) | hard "
                   "(extremes, NaN, infinities, every integer bit pattern)")
      ->check(CLI::IsMember({"normal", "uniform", "hard"}));
  gen_cmd->add_option("-o,--output", gen.output, "output file")->required();

  common img_opt;
  hetpipe::image_spec img_spec;
  std::vector<std::string> img_files;
  std::string img_out, img_format = "same";
  bool img_recursive = false;
  auto* image = app.add_subcommand(
      "image", "filter chains over PNM/PNG images (gray, blur, sobel, resize, invert, threshold)");
  img_opt.add(image, "auto | cpu | gpu",
              "who reads the images while no GPU lane runs: map (the CPU lane that takes one "
              "reads it, mapping one of 8 MiB or more; the default) | lane (the CPU lane reads "
              "each into its slot) | pool (libuv's threads read ahead)",
              "bytes per chunk: an image is one chunk (K/M/G suffixes; default the largest input, "
              "up to 1G; 4K..1G)");
  image
      ->add_option("--ops", img_spec.ops, "ops in order, e.g. gray,blur:sigma=1.5,sobel,resize:0.5")
      ->required();
  image->add_option("-o,--output", img_out, "output folder (created); names are kept")->required();
  image->add_option("--format", img_format, "same | pnm | png (default: each input's own)")
      ->check(CLI::IsMember({"same", "pnm", "png"}));
  image->add_option("--png-level", img_spec.png_level, "zlib level of PNG outputs, 0..9 (6)")
      ->check(an_int());
  image
      ->add_option("--threads-per-image", img_spec.threads_per_image,
                   "threads sharing each image on a CPU lane (at most --cpu-threads), the lanes "
                   "then --cpu-threads / N; default 1, or more for fewer images than lanes. Not "
                   "for GPU lanes, nor images larger than a chunk (they get every thread)")
      ->check(whole_number(UINT32_MAX));
  image->add_flag("-r,--recursive", img_recursive,
                  "walk folders (*.pgm *.ppm *.pnm *.png), keeping their layout under -o");
  image->add_option("INPUT", img_files, "images or (with -r) folders")->required()->check(named);

  hetpipe::image_set_spec gset;
  std::string gset_size = "640x480", gset_format = "pnm";
  auto* gen_images = app.add_subcommand("gen-images", "write a deterministic set of test images");
  gen_images->add_option("--size", gset_size, "WIDTHxHEIGHT (default 640x480)");
  gen_images->add_option("--channels", gset.channels, "1 gray, 2 gray+alpha, 3 RGB, 4 RGBA")
      ->check(whole_number(UINT32_MAX));
  gen_images->add_option("--depth", gset.depth, "8 or 16 bits per sample")
      ->check(whole_number(UINT32_MAX));
  gen_images->add_option("--count", gset.count, "number of images (default 1)")
      ->check(whole_number(hetpipe::max_image_set));
  gen_images->add_option("--format", gset_format, "pnm | png")
      ->check(CLI::IsMember({"pnm", "png"}));
  gen_images->add_option("--seed", gset.seed, "random seed")->check(whole_number(UINT64_MAX));
  gen_images->add_option("--prefix", gset.prefix, "file name prefix (default img)");
  gen_images->add_option("-o,--output", gset.outdir, "output folder (created)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Bad usage, as every other error: one line, exit 2. A command that does not exist is named
    // (CLI11 says only that one is required).
    CLI::App* level = &app;
    for (int i = 1; i < argc && argv[i][0] != '-'; ++i) {
      if (level->get_subcommands({}).empty()) break;
      CLI::App* sub = nullptr;
      try {
        sub = level->get_subcommand(argv[i]);
      } catch (const CLI::OptionNotFound&) {
      }
      if (!sub) {
        hetpipe::cli::print_error("",
                                  "unknown command '" + std::string(argv[i]) + "' (see --help)");
        return 2;
      }
      level = sub;
    }
    hetpipe::cli::print_error("", std::string(e.what()) + " (see --help)");
    return 2;
  }

  // A job stops within milliseconds of a first SIGINT or SIGTERM; one still running 2 s later is
  // blocked where no flag reaches (a write to a stalled pipe) and ends as at a second signal.
  hetpipe::install_signal_handlers(&g_cancel, 2, "hetpipe: interrupted\n");
  // Disarmed when main returns, on every way out (after its line, and after standard output is
  // flushed: a stalled pipe there is what the deadline ends): a signal then ends the process at
  // once, and a late deadline cannot add a second line or change the status.
  struct disarm_at_return {
    ~disarm_at_return() { hetpipe::install_signal_handlers(nullptr); }
  } const disarm;
  int rc = 0;
  try {
    // A closed standard stream that the command would use: refused before any work.
    const bool reads_stdin = (*stats && names_stdin(stats_files)) ||
                             (*sum && (sum_files.empty() || names_stdin(sum_files))) ||
                             (*sum && *keyed_opt && sum_keyfile == "-") ||
                             (*count_cmd && (count_files.empty() || names_stdin(count_files))) ||
                             (*encrypt && enc_in == "-") || (*decrypt && dec_in == "-") ||
                             (*bench_read && names_stdin(bench_files)) ||
                             (*bench_copy && copy_in == "-");
    if (closed[0] && reads_stdin) throw hetpipe::io_error("-", "standard input is closed");
    // (image, gen and gen-images print only a summary there; check --status prints nothing)
    const bool writes_stdout = *stats || (*sum && !(*check_opt && sum_how.status)) || *info ||
                               *count_cmd || *bench_read || *bench_copy ||
                               (*keygen && keygen_out == "-") || (*encrypt && enc_out == "-") ||
                               (*decrypt && dec_out == "-");
    if (closed[1] && writes_stdout) throw hetpipe::io_error("-", "standard output is closed");
    if (*stats) {
      std::optional<hetpipe::dtype> t;
      if (dtype_opt->count() > 0) {  // given: '' is an unknown type, not the option's absence
        t = hetpipe::parse_dtype(stats_dtype);
        if (!t) throw hetpipe::usage_error("unknown --dtype '" + stats_dtype + "'");
      }
      if (stats->count("--delimiter")) {
        if (stats_delim == "tab" || stats_delim == "\\t") stats_delim = "\t";
        if (stats_delim.size() != 1)
          throw hetpipe::usage_error("--delimiter takes one character (or 'tab'), not '" +
                                     stats_delim + "'");
        stats_csv.delimiter = stats_delim[0];
      }
      if (stats_header) stats_csv.header = hetpipe::csv_spec::header_mode::present;
      if (stats_no_header) stats_csv.header = hetpipe::csv_spec::header_mode::absent;
      if (stats->count("--columns")) stats_csv.columns = column_list(stats_columns);
      rc = hetpipe::cli::print_stats(stats_files, t, stats_csv, stats_opt.to_options(),
                                     stats_opt.json, std::cout);
    } else if (*sum) {
      hetpipe::checksum_spec spec;
      spec.algo = *hetpipe::parse_checksum_algo(sum_algo);
      spec.length = sum_length;
      // validate() sees only the length, and takes 32 for the default ("-a crc32 -l 32" passed).
      if (sum->count("--length") && spec.algo != hetpipe::checksum_algo::blake3)
        throw hetpipe::usage_error("--length is for BLAKE3 only (-a blake3)");
      if (*keyed_opt && sum_keyfile == "-") {
        if (*check_opt && (sum_files.empty() || names_stdin(sum_files)))
          throw hetpipe::usage_error(
              "--keyed - and --check: standard input cannot hold both the key and a list; name "
              "the SUMFILE");
        if (!*check_opt && (sum_files.empty() || names_stdin(sum_files)))
          throw hetpipe::usage_error(
              "--keyed -: standard input holds the key; name the files to hash");
        sum_how.stdin_is_key = true;
      }
      // usage errors before the key is read (from a terminal, say)
      if (*check_opt && sum_opt.json)
        throw hetpipe::usage_error("--check prints OK/FAILED lines, not --json");
      if (*keyed_opt) spec.key = hetpipe::cli::read_key_file(sum_keyfile, &g_cancel);
      if (*derive_opt) spec.derive_key_context = sum_context;
      if (*check_opt) {
        sum_how.stdin_closed = closed[0];
        if (sum_files.empty()) sum_files.push_back("-");
        // Each list in turn, as sha256sum -c: one that cannot be read is reported and the next
        // is still checked; the status is 1 when any list failed.
        for (const std::string& list : sum_files)
          rc = std::max(
              rc, hetpipe::cli::check_sums(list, spec, sum_opt.to_options(), sum_how, std::cout));
      } else {
        if (sum_files.empty()) sum_files.push_back("-");
        hetpipe::cli::sum_output how;
        how.recursive = sum_recursive;
        how.json = sum_opt.json;
        how.raw = sum_raw;
        how.no_names = sum_no_names;
        rc = hetpipe::cli::print_sums(sum_files, spec, sum_opt.to_options(), how, std::cout);
      }
    } else if (*count_cmd) {
      // wc's columns: those asked for, or all three.
      if (count_l || count_w || count_m || count_c) {
        count_how.lines = count_l;
        count_how.words = count_w;
        count_how.chars = count_m;
        count_how.bytes = count_c;
      }
      count_how.json = count_opt.json;
      rc = hetpipe::cli::print_counts(count_files, count_opt.to_options(), count_how, std::cout);
    } else if (*keygen) {
      const std::string recipient = hetpipe::cli::write_new_key(keygen_out);
      if (keygen_out != "-") std::fprintf(stderr, "Public key: %s\n", recipient.c_str());
    } else if (*encrypt) {
      // Checked before the passphrase prompt, as every usage error is.
      if (enc_opt.json)
        throw hetpipe::usage_error("encrypt: --json has nothing to print (the output is the file)");
      if (enc_out == "-" && !enc.armor && ::isatty(STDOUT_FILENO))
        throw hetpipe::usage_error(
            "refusing to write binary ciphertext to a terminal: use -o FILE or -a");
      const bool pass = enc_pass || !enc_pass_env.empty();
      if (pass && (!enc.recipients.empty() || !enc.recipient_files.empty()))
        throw hetpipe::usage_error("a passphrase cannot be combined with recipients");
      if (pass) enc.passphrase = hetpipe::cli::read_passphrase(enc_pass_env, true, &g_cancel);
      hetpipe::encrypt(enc_in, enc_out, enc, enc_opt.to_options());
    } else if (*decrypt) {
      if (dec_opt.json)
        throw hetpipe::usage_error("decrypt: --json has nothing to print (the output is the file)");
      if (dec_pass || !dec_pass_env.empty())
        dec.passphrase = hetpipe::cli::read_passphrase(dec_pass_env, false, &g_cancel);
      else if (dec.identity_files.empty())  // asked for once the file shows it needs one
        dec.ask_passphrase = [&] {
          return hetpipe::cli::read_passphrase(dec_pass_env, false, &g_cancel);
        };
      hetpipe::decrypt(dec_in, dec_out, dec, dec_opt.to_options());
    } else if (*info) {
      const auto s = hetpipe::info(info_opt.to_options());
      if (info_opt.json)
        std::cout << hetpipe::cli::json_text(hetpipe::cli::to_json(s)) << "\n";
      else
        std::cout << hetpipe::cli::to_text(s);
    } else if (*bench_read) {
      hetpipe::job_report rep;
      const std::uint64_t bytes =
          hetpipe::read_only(to_inputs(bench_files), bench_opt.to_options(), &rep);
      print_bench(stdout, "read", bytes, rep, bench_opt.json);
    } else if (*bench_copy) {
      hetpipe::job_report rep;
      const bool to_stdout = is_stdout(copy_out);  // before the copy makes a new file there
      const std::uint64_t bytes =
          hetpipe::copy_only(to_inputs({copy_in}), {copy_out}, copy_opt.to_options(), &rep);
      print_bench(to_stdout ? stderr : stdout, "copied", bytes, rep, copy_opt.json);
    } else if (*image) {
      img_spec.format = img_format == "png"   ? hetpipe::image_output::png
                        : img_format == "pnm" ? hetpipe::image_output::pnm
                                              : hetpipe::image_output::same;
      hetpipe::check_image_spec(img_spec);
      const auto files = hetpipe::plan_images(img_files, img_recursive, img_out, img_spec.format);
      hetpipe::job_report rep;
      hetpipe::run_images(img_spec, files, img_opt.to_options(), &rep, img_out);
      for (const auto& sk : rep.skipped) hetpipe::cli::print_error(sk.file, sk.reason);
      // A folder the walk could not open is reported among the failures, but is no image.
      const auto folders = static_cast<std::size_t>(
          std::count_if(files.begin(), files.end(), [](const auto& f) { return f.folder; }));
      const std::size_t images = files.size() - folders;
      const std::size_t failed = rep.skipped.size() - folders;
      const std::size_t written = images - failed;
      if (img_opt.json) {
        nlohmann::json bad = nlohmann::json::array();
        for (const auto& sk : rep.skipped)
          bad.push_back({{"file", sk.file}, {"reason", sk.reason}});
        std::cout << hetpipe::cli::json_text(nlohmann::json{{"images", images},
                                                            {"written", written},
                                                            {"failed", bad},
                                                            {"folders_unread", folders},
                                                            {"bytes", rep.bytes},
                                                            {"seconds", rep.seconds},
                                                            {"cpu_lanes", rep.cpu_lanes},
                                                            {"gpu_lanes", rep.gpu_lanes}})
                  << "\n";
      } else if (rep.skipped.empty())
        std::printf("%s written to %s in %.3f s (%s read, %s, %s)\n",
                    hetpipe::cli::count_of(written, "image").c_str(), img_out.c_str(), rep.seconds,
                    hetpipe::format_size(rep.bytes).c_str(),
                    hetpipe::cli::count_of(rep.cpu_lanes, "CPU lane").c_str(),
                    hetpipe::cli::count_of(rep.gpu_lanes, "GPU lane").c_str());
      if (!rep.skipped.empty()) {
        // "2 of 7 images failed; the other 5 were written", "1 folder could not be read; the
        // 3 images found were written", or both.
        using hetpipe::cli::count_of;
        const char* were = written == 1 ? " was" : " were";
        std::string line;
        if (failed) line = std::to_string(failed) + " of " + count_of(images, "image") + " failed";
        if (folders)
          line += (failed ? " and " : "") + count_of(folders, "folder") + " could not be read";
        if (!written)
          line += failed ? "; none was written" : "; no image was found";
        else if (failed)
          line += "; the other " + std::to_string(written) + were + " written";
        else
          line += "; the " + count_of(written, "image") + " found" + were + " written";
        hetpipe::cli::print_error("", line);
        return 1;
      }
    } else if (*gen_images) {
      // Digits only on either side (no sign, no space), each within 32 bits (they were cut to
      // 32 bits: 4294967297x1 made 1x1 images).
      const auto x = gset_size.find('x');
      const auto side = [&](std::string_view t, std::uint32_t& v) {
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        return !t.empty() && ec == std::errc() && p == t.data() + t.size();
      };
      const std::string_view whole(gset_size);
      if (x == std::string::npos || !side(whole.substr(0, x), gset.width) ||
          !side(whole.substr(x + 1), gset.height))
        throw hetpipe::usage_error("--size must be WIDTHxHEIGHT, e.g. 1920x1080, not '" +
                                   gset_size + "'");
      gset.format = gset_format == "png" ? hetpipe::image_output::png : hetpipe::image_output::pnm;
      gset.cancel = &g_cancel;
      hetpipe::generate_images(gset);
    } else if (*gen_cmd) {
      const auto t = hetpipe::parse_dtype(gen_dtype);
      if (!t) throw hetpipe::usage_error("unknown --dtype '" + gen_dtype + "'");
      gen.type = *t;
      gen.rows = hetpipe::cli::parse_count(gen_count);
      if (gen.cols == 0) throw hetpipe::usage_error("--cols must be at least 1");
      if (gen.cols > 1) gen.npy = true;
      gen.cancel = &g_cancel;
      hetpipe::cli::generate(gen);
    }
  } catch (const hetpipe::cancelled&) {
    const int sig = hetpipe::interrupting_signal();
    std::fprintf(stderr, "hetpipe: interrupted\n");
    return 128 + (sig ? sig : SIGINT);  // 130 for SIGINT, 143 for SIGTERM
  } catch (const hetpipe::usage_error& e) {
    hetpipe::cli::print_error(e.file(), e.reason());
    return 2;
  } catch (const hetpipe::error& e) {
    hetpipe::cli::print_error(e.file(), e.reason());  // one line, whatever the name holds
    return 1;
  } catch (const std::bad_alloc&) {  // ulimit -v, or a machine out of memory
    hetpipe::cli::print_error("", "out of memory");
    return 1;
  } catch (const std::exception& e) {
    hetpipe::cli::print_error("", std::string("internal error: ") + e.what());
    return 1;
  }
  // What went to standard output must have reached it (a full disk, a closed pipe's reader gone):
  // results, or keygen's new secret key, are not reported as written when they were lost.
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::fprintf(stderr, "hetpipe: -: write error%s%s\n", errno ? ": " : "",
                 errno ? hetpipe::errno_reason(errno).c_str() : "");
    return 1;
  }
  return rc;
}

#include <hetpipe/error.hpp>
#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <thread>

#include "io/reader.hpp"

namespace hetpipe {

namespace {
// With GPU lanes, 2 MiB: H200 box, 4 GiB hot f32 file, in-run GB/s, best of 3, 1 / 2 / 4 MiB:
// stats --device gpu 31.0 / 41.7 / 35.9, CRC32C 35.1 / 40.2 / 39.4 (bench/RESULTS.md). CPU lanes
// alone read the chunks they have just been copied into: 1 MiB keeps the pool (10 slots on 2
// cores) inside the last-level cache. 2-core box, 4 GiB hot file, medians of 8 interleaved runs,
// 4 MiB -> 1 MiB: read-only 9.0 -> 11.0 GB/s, f32 stats 5.4 -> 6.4, CRC32C 6.0 -> 8.3.
constexpr std::size_t kDefaultGpuChunk = std::size_t{2} << 20;
constexpr std::size_t kDefaultCpuChunk = std::size_t{1} << 20;
// CPU lanes that map their chunks copy nothing, and what a chunk costs is its trip through the
// reader and the queue, and the page-table lock it shares with its neighbours when two lanes
// populate one 2 MiB stretch. 2-core box, 1 GiB hot, medians of 5 interleaved runs, 1 -> 4 MiB:
// BLAKE3 11.6 -> 12.7 GB/s, CRC32C 20.7 -> 31.5, f32 stats 22.7 -> 26.5; a second sweep (the box
// slower) put 2, 4 and 8 MiB within the noise of each other (bench/RESULTS.md).
constexpr std::size_t kDefaultMapChunk = std::size_t{4} << 20;
}  // namespace

options resolve(const options& requested) {
  options o = requested;
  // (a value cast from elsewhere ran as some default)
  if (o.device != device_mode::automatic && o.device != device_mode::cpu &&
      o.device != device_mode::gpu)
    throw usage_error("options::device: no such mode (" +
                      std::to_string(static_cast<int>(o.device)) + ")");
  if (o.reads != read_mode::pool && o.reads != read_mode::lane && o.reads != read_mode::map)
    throw usage_error("options::reads: no such mode (" + std::to_string(static_cast<int>(o.reads)) +
                      ")");
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  // Planned from the device nodes: starting the driver to count the devices (0.1 s) is left to
  // the GPU lanes, which auto mode brings up only for a job long enough to repay them.
  const bool gpus = o.device != device_mode::cpu && gpu_count_estimate() > 0;
  if (o.chunk_size == 0)
    o.chunk_size = gpus                        ? kDefaultGpuChunk
                   : o.reads == read_mode::map ? kDefaultMapChunk
                                               : kDefaultCpuChunk;
  if (o.chunk_size < min_chunk_size || o.chunk_size > max_chunk_size)
    throw usage_error("--chunk-size must be between 4K and 1G");
  // libuv's pool runs the reads; 16 threads were needed to pass PCIe speed on the H100 box.
  // A UV_THREADPOOL_SIZE the process was given (its user's, or an embedding program's) stands.
  if (o.io_threads == 0) {
    const unsigned given = io::given_io_threads();
    o.io_threads = given > 0 ? given : std::clamp(hw, 4u, 16u);
  }
  if (o.io_threads > 1024) throw usage_error("--io-threads must be at most 1024");
  // Beside GPU lanes, CPU lanes share the cores with the reads that feed every lane: on the H200
  // box (16 threads, 4 GiB f32 stats, hot cache) 2-8 CPU lanes kept the read ceiling (28.3 GB/s),
  // 16 dropped the job to 21.3 GB/s. Half the hardware threads, then, once GPU lanes run; before
  // (auto mode starts on its CPU lanes, and a short job never starts the GPU lanes) all of them.
  const bool lanes_given = o.cpu_threads != 0;
  if (!lanes_given) o.cpu_threads = hw;
  if (o.cpu_threads > 4096) throw usage_error("--cpu-threads must be at most 4096");
  if (o.cpu_threads_beside_gpu == 0)
    o.cpu_threads_beside_gpu = gpus && !lanes_given ? std::max(1u, hw / 2) : o.cpu_threads;
  o.cpu_threads_beside_gpu = std::min(o.cpu_threads_beside_gpu, o.cpu_threads);
  if (o.gpu_lanes == 0) o.gpu_lanes = gpus ? 2 : 0;
  if (o.gpu_lanes > 64) throw usage_error("--gpu-lanes must be at most 64");
  if (o.gpu_buffers == 0) o.gpu_buffers = 3;
  if (o.gpu_buffers < 2 || o.gpu_buffers > 64)
    throw usage_error("GPU buffers per lane must be between 2 and 64");
  // Enough slots for every read in flight plus every lane's chunk: readers never wait on lanes
  // that are busy, lanes never wait on reads that could have been issued. GPU lanes that cannot
  // run (--device cpu, no device) hold none.
  if (o.slots == 0)
    o.slots = std::max(4u, 2 * o.io_threads + o.cpu_threads + (gpus ? 2 * o.gpu_lanes : 0));
  if (o.slots > 65536) throw usage_error("--slots must be at most 65536");
  return o;
}

std::size_t parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [p, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || p == begin)
    throw usage_error("invalid size '" + std::string(text) + "' (examples: 65536, 512K, 4M, 1G)");
  std::string_view suffix(p, static_cast<std::size_t>(end - p));
  if (suffix == "iB" || suffix == "B") suffix = "";
  unsigned shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        shift = 99;
    }
    const std::string_view rest = suffix.substr(1);
    if (!(rest.empty() || rest == "B" || rest == "iB" || rest == "b")) shift = 99;
  }
  if (shift == 99 || (shift > 0 && value > (std::uint64_t{1} << (63 - shift))))
    throw usage_error("invalid size '" + std::string(text) + "' (examples: 65536, 512K, 4M, 1G)");
  return static_cast<std::size_t>(value << shift);
}

std::string format_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.4g %s", v, units[u]);
  return buf;
}

std::optional<device_mode> parse_device_mode(std::string_view text) noexcept {
  if (text == "auto") return device_mode::automatic;
  if (text == "cpu") return device_mode::cpu;
  if (text == "gpu") return device_mode::gpu;
  return std::nullopt;
}

std::string_view device_mode_name(device_mode m) noexcept {
  switch (m) {
    case device_mode::cpu:
      return "cpu";
    case device_mode::gpu:
      return "gpu";
    default:
      return "auto";
  }
}

std::optional<read_mode> parse_read_mode(std::string_view text) noexcept {
  if (text == "pool") return read_mode::pool;
  if (text == "lane") return read_mode::lane;
  if (text == "map") return read_mode::map;
  return std::nullopt;
}

std::string_view read_mode_name(read_mode m) noexcept {
  switch (m) {
    case read_mode::pool:
      return "pool";
    case read_mode::lane:
      return "lane";
    default:
      return "map";
  }
}

}  // namespace hetpipe

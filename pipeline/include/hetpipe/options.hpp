// Options every command shares. Zero means "choose for me": resolve() fills in the defaults, which
// `hetpipe info` prints.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hetpipe {

enum class device_mode : std::uint8_t {
  automatic,  // GPU lanes and CPU lanes together when a GPU is usable, CPU lanes alone otherwise
  cpu,        // CPU lanes only
  gpu,        // GPU lanes only; an error where no GPU is usable
};

// Who reads the chunks of regular files (of 256 KiB and more, by records framing) while no GPU
// lane runs. GPU lanes want their chunks read ahead, many at once: once they join, the reader
// reads every chunk (as `pool`) whatever the mode.
enum class read_mode : std::uint8_t {
  pool,  // libuv's threads read every chunk into its slot, ahead of the lanes
  lane,  // the CPU lane that works on a chunk reads it (pread) into its slot first
  map,   // the CPU lane works on the chunk straight from the page cache (io::mapped_reads)
};

struct options {
  // Bytes per chunk, min_chunk_size..max_chunk_size. Default 2 MiB beside GPU lanes; without
  // them 4 MiB with read_mode::map, 1 MiB otherwise. A records framing's chunks hold whole
  // records: the size is rounded down to a multiple of record_size (4097 bytes of 8-byte records
  // are chunks of 4096).
  std::size_t chunk_size = 0;
  unsigned slots = 0;        // pinned host slots in the pool (memory = slots × chunk_size)
  unsigned io_threads = 0;   // libuv thread-pool size (reads in flight follow from it); a
                             // transform commits its outputs on as many threads (at least 4).
                             // 0: UV_THREADPOOL_SIZE when the process has it, else from cores
  unsigned cpu_threads = 0;  // CPU lanes (OpenMP threads)
  // Of those, the CPU lanes that go on working once GPU lanes run (the others finish their chunk
  // and stop): they share the cores with the reads that feed the GPU lanes. Default: half the
  // hardware threads where GPU lanes are planned, all of cpu_threads when that was given.
  unsigned cpu_threads_beside_gpu = 0;
  unsigned gpu_lanes = 0;    // GPU lanes per device, each with its own streams and device buffers
  unsigned gpu_buffers = 0;  // device buffers per GPU lane (≥ 2: copy of n+1 overlaps kernel n)
  device_mode device = device_mode::automatic;
  // Auto mode starts on its CPU lanes and brings the GPU lanes up (the driver's start, device
  // memory, page-locking the slot pool: 0.25-0.3 s on the H200 box, and their teardown) only for
  // a job its CPU lanes would still be running this many seconds later, projected every 20 ms
  // from their rate since the first check (detail::gpu_start_rule). 0: at once, whatever the
  // job's length.
  double auto_gpu_min_remaining = 0.5;
  // Lanes read or map their own chunks while no GPU lane runs (read_mode).
  read_mode reads = read_mode::map;
  bool progress = false;   // bytes done, GB/s and ETA on stderr
  std::string trace_path;  // Chrome trace-event JSON (open it in Perfetto)
  int verbose = 0;         // 1: busy time per stage on stderr
  // Set to true (from any thread, or a signal handler) to stop the job; run() then throws
  // cancelled.
  std::atomic<bool>* cancel = nullptr;
};

// The chunk sizes resolve() accepts.
inline constexpr std::size_t min_chunk_size = 4096, max_chunk_size = std::size_t{1} << 30;

// Defaults measured on the machines we run on; see `hetpipe info` and bench/RESULTS.md.
options resolve(const options& requested);

// "4M", "512K", "1G", "65536" → bytes. Throws usage_error.
std::size_t parse_size(std::string_view text);
std::string format_size(std::uint64_t bytes);
std::optional<device_mode> parse_device_mode(std::string_view text) noexcept;
std::string_view device_mode_name(device_mode m) noexcept;
std::optional<read_mode> parse_read_mode(std::string_view text) noexcept;  // pool | lane | map
std::string_view read_mode_name(read_mode m) noexcept;

}  // namespace hetpipe

// Running an operator over inputs: the engine that overlaps reading (libuv, pinned slots) with
// computing (CPU lanes and GPU lanes pulling from one ready queue).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/operator.hpp>
#include <hetpipe/options.hpp>

namespace hetpipe {

struct input {
  std::string path;                     // "-" = standard input (read sequentially)
  std::uint64_t offset = 0;             // first byte of the data region (e.g. after a header)
  std::optional<std::uint64_t> length;  // bytes of the data region; default: to the end
  // An open descriptor (>= 0) read sequentially from where it stands instead of opening path,
  // which then names it in messages; the caller closes it. For a pipe or FIFO the caller has
  // read a header from: opened again, a FIFO whose writer has gone would never end.
  int fd = -1;
};

struct lane_report {
  std::string name;  // "cpu 0", "gpu 0.1" (device 0, lane 1)
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  double busy_seconds = 0;   // time spent computing (CPU) or waiting on the stream (GPU)
  std::uint64_t mapped = 0;  // of its chunks: worked on straight from the page cache (read_mode)
};

struct skipped_input {
  std::size_t input = 0;  // index in the job's inputs
  std::string file;
  std::string reason;
};

struct job_report {
  options resolved;         // the options in effect, defaults filled in
  std::uint64_t bytes = 0;  // input bytes processed
  std::uint64_t chunks = 0;
  double seconds = 0;             // wall time of the job, pool allocation excluded
  double setup_seconds = 0;       // pool and device buffer allocation
  double setup_gpu_seconds = 0;   // of which: GPU lanes (context, streams, device buffers)
  double setup_pool_seconds = 0;  // of which: the slot pool (pinned when GPU lanes run)
  double cuda_start_seconds = 0;  // the CUDA driver's start, once per process (before setup)
  // --device auto: how far into the job the GPU lanes joined the CPU lanes (setup_gpu_seconds is
  // then their set-up, overlapped with the job); 0 when they ran from the start or never joined.
  double gpu_join_seconds = 0;
  // --device auto: the CPU lanes' remaining time as projected at the last check before the GPU
  // lanes started, or before the job ended when they did not; -1 when no rate was measured.
  double gpu_projected_seconds = -1;
  double reader_cpu_seconds = 0;  // CPU time of the reader's event-loop thread (see -v)
  unsigned cpu_lanes = 0;
  unsigned gpu_lanes = 0;
  // Slots of the pool the GPU lanes page-locked as they first copied from them, and slots whose
  // locking failed (their copies were synchronous: slower, still correct).
  unsigned slots_pinned = 0, slots_pin_refused = 0;
  std::vector<lane_report> lanes;
  std::vector<skipped_input> skipped;  // transforms: inputs an operator refused (input_skipped)
};

// Runs a reduction; returns one merged partial per input (op.identity() for an empty input).
// Throws hetpipe::error (io_error, input_error, gpu_error, cancelled...) after every resource
// was released; an exception the operator threw comes out as it was thrown. Several jobs may run
// at once, from different threads.
std::vector<std::unique_ptr<partial>> run(const reduce_op& op, const std::vector<input>& inputs,
                                          const options& opt, job_report* report = nullptr);
// The same, and on_final(i, total) as soon as input i's last chunk was merged: during the job,
// on a lane's thread, one call at a time, inputs in the order they end; a regular file of no bytes
// before the first read. Another input that gives no chunk (an empty pipe) gets no call: its
// total is op.identity(). A throw from on_final fails the job.
using final_fn = std::function<void(std::size_t input, partial& total)>;
std::vector<std::unique_ptr<partial>> run(const reduce_op& op, const std::vector<input>& inputs,
                                          const options& opt, job_report* report,
                                          const final_fn& on_final);

// Runs a transform; input i is written to outputs[i] through a temporary file that is renamed
// onto it as soon as input i is complete ("-" writes to standard output; two inputs may not name
// one output file). A job that fails or is cancelled keeps the outputs of the inputs completed
// before, as `cp a b c DIR` does, and leaves no other file and no temporary one: with one input,
// its output is in place only when the job succeeded. An input whose operator threw
// input_skipped gets no output (its temporary file is removed) and is listed in report->skipped;
// without a report, the first such input is thrown as an input_error after the job.
void run(const transform_op& op, const std::vector<input>& inputs,
         const std::vector<std::string>& outputs, const options& opt, job_report* report = nullptr);

// The read-only ceiling: the same pipeline with an operator that does nothing (CPU lanes only;
// read_mode::map is taken as lane, so that every byte is read). Returns the bytes read.
std::uint64_t read_only(const std::vector<input>& inputs, const options& opt,
                        job_report* report = nullptr);

// The copy ceiling of transforms: the same pipeline with an operator that copies each chunk to
// its output (ordered writer, temporary file, fsync, rename; CPU lanes only). Returns the bytes
// copied.
std::uint64_t copy_only(const std::vector<input>& inputs, const std::vector<std::string>& outputs,
                        const options& opt, job_report* report = nullptr);

// SIGINT/SIGTERM set *flag (pass it as options::cancel: the job stops and removes its temporary
// files); a second signal removes them at once and exits. grace > 0: so does a process still
// running grace seconds after the first (SIGALRM; what no flag can stop, as a write to a stalled
// pipe). words: a line (kept, not copied) those forced exits write to stderr.
void install_signal_handlers(std::atomic<bool>* flag, unsigned grace = 0,
                             const char* words = nullptr);
// The signal that set that flag (SIGINT or SIGTERM), 0 before one came: a command exits with
// 128 + it, as the second signal's exit does.
int interrupting_signal() noexcept;

// Small inputs named on a command line besides the data (a key file, a sum list), "-" being
// standard input. They may be pipes, FIFOs or terminals that never deliver: a FIFO's open does
// not wait for its writer, and a wait for data ends with hetpipe::cancelled once *cancel is set
// (a first signal, with install_signal_handlers). io_error names the path ("is a directory", a
// read error).
//
// read_input: the first `limit` bytes (all of the input when shorter); reading stops there, so
// a caller that wants an exact size asks for one byte more.
std::string read_input(const std::string& path, const std::atomic<bool>* cancel, std::size_t limit);
// read_lines: each line to on_line as it arrives, as std::getline splits them ('\n' not passed
// on; a last line without one passed too).
void read_lines(const std::string& path, const std::atomic<bool>* cancel,
                const std::function<void(std::string&)>& on_line);

// One output written in order outside a job (generated data, say), with the jobs' guarantees: a
// temporary file beside `path` (mode 0666 less the umask) that a second signal removes, renamed
// onto path by commit() only; destroyed uncommitted, it is removed.
//
//   hetpipe::output_file out("data.bin");
//   out.write(std::move(bytes));  // any number of pieces, written in order, asynchronously
//   out.commit();                 // fsync, rename, fsync the folder
class output_file {
 public:
  explicit output_file(const std::string& path);
  ~output_file();
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;
  // Blocks while two pieces are waiting to be written. Throws io_error once a write failed.
  void write(std::vector<std::byte> bytes);
  // A piece's memory once it was written (its old bytes still in it), for the next piece: memory
  // already mapped. Empty when none has come back yet.
  std::vector<std::byte> spare();
  void commit();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Number of usable CUDA devices (0 without CUDA support, driver or device). Its first call starts
// the CUDA driver: 0.1 s on the H200 box.
int gpu_count() noexcept;
// The devices the driver's device nodes show, without starting the driver: an upper bound of
// gpu_count(), what resolve() plans the lanes of auto mode by (0 without CUDA support).
int gpu_count_estimate() noexcept;

}  // namespace hetpipe

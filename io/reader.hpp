// io::reader streams inputs (files, FIFOs, standard input) into the slots of a slot_pool with
// asynchronous libuv reads, cutting them into chunks as the operator's framing asks.
//
//   hetpipe::io::slot_pool pool(8, 4 << 20);
//   hetpipe::io::reader rd({{"a.bin"}, {"b.bin"}}, [](std::size_t) { return framing::records(4); },
//                          pool, {});
//   rd.start([&](io::chunk c) { queue.push(c); },            // loop thread; don't block
//            [&](std::exception_ptr e) { queue.close(e); }); // exactly once
//   // consumer: work on c.data[0, c.info.size), then pool.release(c.slot); rd.retire();
//   rd.wait();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hetpipe/framing.hpp"
#include "io/slot_pool.hpp"

namespace hetpipe::io {

struct source {
  std::string path;          // "-" = standard input
  std::uint64_t offset = 0;  // start of the data region (e.g. after an .npy header)
  std::optional<std::uint64_t> length = std::nullopt;  // bytes of the region; default: to the end
  // Set when a stat just before found a regular file: the reader then opens it without a stat of
  // its own. One system call less per small file. The file is read to the size that stat found
  // (a file appended to since: to that size; one that shrank below it fails at its read), and a
  // file found at the path that is not the one stat'ed (renamed over since) is the error "was
  // replaced during the job": its size and its content would not go together.
  bool regular = false;
  std::uint64_t size = 0;          // with `regular`: the size that stat found
  std::uint64_t dev = 0, ino = 0;  // with `regular`: the file that stat found (0, 0: not checked)
  // A regular file whose stated size is not its content (/proc's say 0, /sys's 4096): read it
  // sequentially to its end, as a pipe (by records or lines framing; a region or one chunk per
  // file still goes by the size).
  bool read_to_end = false;
  // An open descriptor (>= 0) read sequentially from where it stands, as standard input is, instead
  // of opening path (which then only names it in messages); not closed by the reader. For a
  // stream the caller has read a header from: a FIFO opened again would not see its writer's end.
  int fd = -1;
};

// data points into the slot (inside it for lines framing); info.size bytes. The consumer owns the
// slot until it calls slot_pool::release(slot), and then retires the chunk with reader::retire().
// read_begin_ns..read_end_ns (steady_clock): from the first read request for the chunk to its
// last completion, as the event loop saw them (a request may wait for a free libuv thread).
struct chunk {
  unsigned slot;
  std::byte* data;
  chunk_info info;
  std::uint64_t read_begin_ns = 0;
  std::uint64_t read_end_ns = 0;
  // A chunk delivered unread (reader_config::lane_reads): its bytes are at file offset
  // read_offset of read_fd, a descriptor of its own that the consumer reads into data (read_chunk)
  // and closes, or closes unread when it drops the chunk (drop_chunk). -1: data holds the bytes.
  int read_fd = -1;
  std::uint64_t read_offset = 0;
  // A chunk of an input some of whose chunks may be delivered unread, and so mapped by the
  // consumer (io::mapped_reads): counted down with mapped_reads::retire once done, however it was
  // read (by the reader too: a short last chunk, or any after lane reads were switched off).
  bool windowed = false;
  // A chunk delivered unopened: the whole data region of a regular file small enough for one
  // chunk, which the consumer opens, reads and closes itself (read_chunk) rather than the
  // reader's threads; many small files then take no trip through the reader's thread pool. The
  // region is the one the job's stat found (source::regular): a file that grew since is read to
  // that size, one that shrank below it or was replaced is an error.
  bool unopened = false;
  std::uint64_t file_dev = 0, file_ino = 0;  // unopened: the file the stat found (0, 0: any)
};

// Whether the consumer must read c before working on it (read_chunk): delivered unread, by
// descriptor or unopened.
inline bool needs_read(const chunk& c) {
  return c.read_fd >= 0 || c.unopened;
}

// Reads a chunk delivered unread or unopened into its slot and closes its descriptor (nothing to
// do for a chunk read by the reader). Throws io_error(path, reason) when the open or read fails
// or the file ends early; the descriptor is closed either way.
void read_chunk(chunk& c, const std::string& path);
// Opens a chunk delivered unopened (its descriptor then in read_fd, as if delivered unread), with
// read_chunk's checks and errors; nothing to do for any other chunk.
void open_chunk(chunk& c, const std::string& path);
// Closes an unread chunk's descriptor (a chunk dropped before it was read).
void drop_chunk(chunk& c) noexcept;

// Inputs read whole in one chunk of at most this many bytes share thread-pool jobs, several to a
// job (see reader.cpp): the many-small-files case.
inline constexpr std::uint64_t batched_read_max = 256 << 10;

// The bytes of every chunk but an input's last that the reader makes of an input framed by `fr`:
// chunk_size, for records framing rounded down to whole records (at least one).
std::uint64_t nominal_chunk(const framing& fr, std::size_t chunk_size) noexcept;
// How many chunks the reader makes of a region of `bytes` (none of an empty one); nullopt for
// lines framing, whose chunks depend on the data, and for a framing the reader refuses.
std::optional<std::uint64_t> chunk_count(const framing& fr, std::uint64_t bytes,
                                         std::size_t chunk_size) noexcept;

struct reader_config {
  std::size_t chunk_size =
      4 << 20;  // nominal chunk bytes (records: rounded down to a multiple, ≥ 1 record)
  unsigned max_inflight = 8;     // uv_fs_read requests in flight at once (read-ahead)
  std::uint64_t window = 64;     // at most this many chunks issued or delivered but not retired
  unsigned max_open_files = 64;  // files open (or being opened) at once
  // While *lane_reads is true, positional chunks of regular files by records framing, of at least
  // lane_read_min bytes, are delivered unread (chunk::read_fd) as soon as they have a slot: their
  // consumer reads them on its own thread, so the bytes land in the cache of the core that then
  // works on them, and the reader's threads are not woken per chunk. Inputs known to be regular
  // files (source::regular, source::size) whose region is one chunk (not lines framing) are
  // delivered unopened (chunk::unopened) instead of opened. Null: never.
  const std::atomic<bool>* lane_reads = nullptr;
  std::uint64_t lane_read_min = 256 << 10;
  // A positional chunk of at least two pieces (not lines framing) is read in pieces of this many
  // bytes, each its own request on the thread pool, so that one large chunk (an image of 64 MiB)
  // is read by as many threads as the pool has. 0: one request a chunk.
  std::uint64_t piece_bytes = 4 << 20;
};

// Reads every input in order; see reader.cpp for the framing rules. Regular files are read with
// several positional reads in flight; "-", FIFOs and devices sequentially, one read at a time.
class reader {
 public:
  // frame(i) gives input i's framing; it is called on the loop thread. Slots must hold chunk_size
  // bytes (records: the rounded chunk size), and chunk_size + max_record + 1 for lines framing,
  // else on_done gets a usage_error.
  reader(std::vector<source> inputs, std::function<framing(std::size_t)> frame, slot_pool& pool,
         reader_config cfg = {});
  ~reader();  // cancels if still running, joins the loop thread; never throws
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  // Starts the libuv loop on its own thread (once). on_chunk runs on the loop thread as each
  // chunk's read completes, in any order; it must not block for long. on_done(nullptr or the error)
  // runs exactly once on the loop thread, after the last chunk was delivered or, on the first error
  // or cancel, after every request in flight has finished and its slot went back to the pool. It
  // must not destroy the reader. If on_chunk throws, that exception becomes the job's error and the
  // reader releases the chunk's slot itself.
  void start(std::function<void(chunk)> on_chunk, std::function<void(std::exception_ptr)> on_done);
  void retire(std::uint64_t n = 1);  // thread-safe: n delivered chunks are done (window credit)
  void cancel();                     // thread-safe, idempotent; on_done(cancelled) unless done
  void wait();  // blocks until on_done has returned (returns at once if not started)
  // CPU time the loop thread used, on_chunk and on_done included: 0 until the loop has ended
  // (wait() returned). Near the job's wall time, the loop thread is what limits the job (many
  // small files: every open, read and delivery passes through it).
  double loop_cpu_seconds() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// Sets the libuv thread-pool size (UV_THREADPOOL_SIZE) if hetpipe made no libuv request yet in
// this process; returns the size in effect (libuv reads the variable once, at first use; a
// libuv user outside hetpipe that came first is not seen). n == 0 only queries. Call it early,
// before other threads start: it uses setenv.
//   set_io_threads(8) == 8 before the first reader; afterwards set_io_threads(2) == 8.
unsigned set_io_threads(unsigned n);
// The UV_THREADPOOL_SIZE this process was started with (its user's or an embedding program's
// choice), 0 when none; what set_io_threads() sets does not change the answer.
unsigned given_io_threads();

}  // namespace hetpipe::io

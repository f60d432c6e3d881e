// io::mapped_reads: CPU lanes work on chunks delivered unread (reader_config::lane_reads)
// straight from the page cache, through read-only shared mappings of the input, instead of
// copying them into their slots first (the copy was a fifth of a BLAKE3 lane's time on the
// 2-core box; bench/hash_shapes "window" against "local").
//
//   io::mapped_reads maps(frame, chunk_size);
//   auto v = maps.map(c, path);            // lane: c.read_fd >= 0
//   if (v.data) { drop_chunk(c); work(v.data, c.info.size); maps.check(v, path); }
//   else { read_chunk(c, path); work(c.data, c.info.size); }
//   if (c.windowed) maps.retire(c.info);   // once per chunk, however it was read
//
// An input is mapped in windows of whole chunks (about 1 GiB), each by the first lane that needs
// it and unmapped when its last chunk is retired. Inside a window, each block of whole chunks
// (about 64 MiB) leaves the page tables as soon as its last chunk is retired (MADV_DONTNEED, which
// holds the process's mapping lock shared), so the munmap, which holds that lock exclusively and
// stalls every lane's populate meanwhile, finds almost nothing left to clear. On the 16-core H200
// box, 64 MiB windows unmapped whole had capped 16 lanes at 30-35 GB/s while their reads reached
// 52 (CRC32C, 2026-11-27); releasing each chunk's pages instead reached 60. Blocks rather than
// chunks: each release also sends a TLB shootdown to every core the process runs on, and chunk by
// chunk that cost 10-15% on the 2-core box where the page cache maps 2 MiB at a time. Windows a
// failed or cancelled job leaves are unmapped by the destructor.
//
// A file that shrinks while mapped loses pages, and touching one raises SIGBUS. Each chunk's
// pages are populated before its work (MADV_POPULATE_READ: a file already short fails there,
// cleanly). For a file cut during the work, a SIGBUS handler installed once per process puts a
// page of zeros in place of a lost page inside a live window and marks the window damaged;
// check() then throws "file shrank while reading". Other faults go to the handler that was there
// before, or end the process as they would have (also where SIGBUS was ignored: a fault cannot be).
// At most 1024 windows are live in a process; a window past that is not mapped (read instead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "hetpipe/framing.hpp"
#include "io/reader.hpp"

namespace hetpipe::io {

class mapped_reads {
 public:
  // frame(input) and chunk_size as the reader was given them: they place each chunk in its window.
  // window_bytes and release_bytes: the windows' and their release blocks' sizes (rounded down to
  // whole chunks, at least one).
  mapped_reads(std::function<framing(std::size_t)> frame, std::size_t chunk_size,
               std::uint64_t window_bytes = std::uint64_t{1} << 30,
               std::uint64_t release_bytes = std::uint64_t{64} << 20);
  ~mapped_reads();  // unmaps the windows left
  mapped_reads(const mapped_reads&) = delete;
  mapped_reads& operator=(const mapped_reads&) = delete;

  struct window;
  struct view {
    const std::byte* data = nullptr;  // null: not mapped, read the chunk instead
    window* win = nullptr;
  };
  // Whether a chunk of records framed by `fr` starting at file offset `offset` can be mapped: its
  // records keep the alignment (up to 8 bytes) a slot would give them. Chunks of a region start at
  // multiples of the record size, so the region's offset decides for all of them.
  static bool aligned(const framing& fr, std::uint64_t offset);
  // The bytes of c (delivered unread: c.read_fd >= 0) in the page cache, or a view with null data
  // when they cannot be mapped here (more windows live than the SIGBUS guard tracks, an offset
  // not aligned for the records, a failed mmap). Throws io_error(path, "file shrank while
  // reading") when the file ends before the chunk does.
  view map(const chunk& c, const std::string& path);
  // After the work on v's bytes: throws io_error(path, "file shrank while reading") if a page of
  // its window vanished meanwhile.
  static void check(const view& v, const std::string& path);
  // Once for every chunk that may share a window with mapped ones (chunk::windowed: those
  // delivered unread, and the rest of their input's), whatever became of it (mapped, read,
  // dropped): a block's pages leave the page tables when all of its chunks are retired, and a
  // window is unmapped when all of its chunks are.
  void retire(const chunk_info& info) noexcept;

  // Windows mapped so far, and windows (mapped or counting) not yet retired: for tests.
  std::uint64_t windows_mapped() const;
  std::size_t windows_live() const;

 private:
  // Where input `input`'s chunk `index` lies: its window's key, the chunks a window holds, and
  // the input's nominal chunk (nominal_chunk).
  struct place {
    std::pair<std::size_t, std::uint64_t> key;  // (input, window number)
    std::uint64_t per = 1, nominal = 1;
    std::uint64_t per_block = 1;  // chunks a release block holds (at most per)
  };
  place locate(std::size_t input, const framing& fr, std::uint64_t index) const;
  // The window at p.key, made (unmapped, counting p.per chunks; *added true) if there is none.
  // Under mu_.
  window& find_or_add(const place& p, bool* added = nullptr);
  // The window at key, out of the map (unmapped when the caller lets it go, outside mu_). Under
  // mu_; the window must be there.
  std::unique_ptr<window> take(const std::pair<std::size_t, std::uint64_t>& key);

  std::function<framing(std::size_t)> frame_;
  std::size_t chunk_size_;
  std::uint64_t window_bytes_, release_bytes_;
  mutable std::mutex mu_;
  std::map<std::pair<std::size_t, std::uint64_t>, std::unique_ptr<window>> windows_;
  std::uint64_t mapped_ = 0;
};

}  // namespace hetpipe::io

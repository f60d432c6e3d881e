// Internal helpers shared by the io/ sources (not part of the public API).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

struct uv_loop_s;  // <uv.h>

namespace hetpipe::io::detail {

// The system's page size (4 KiB on x86-64, 16 or 64 KiB on some arm64 kernels), read once before
// main(): async-signal-safe.
std::size_t page_size() noexcept;

// A libuv error code in plain words ("no such file or directory", "is a directory"...).
std::string uv_words(int code);

// io_error(path, "file shrank while reading"): a regular file that ended before the bytes its
// size had promised (a read came back short, or a mapped page vanished).
std::exception_ptr shrank(const std::string& path);

// Called before the first libuv request of this process: freezes the thread-pool size that
// set_io_threads() reports from then on.
void note_uv_use();

// uv_loop_init after note_uv_use, or UV_EMFILE / UV_ENFILE when the process has not 4 file
// descriptors to spare. The first loop of a process makes libuv's signal pipe (2 descriptors),
// and libuv ends the process with abort() when it cannot: 4 spare cover it. A loop's own
// descriptors (its epoll, its signal pipe, an async handle's eventfd: about 6 for the reader's
// first loop) that cannot be made fail it with an error, as anything else here does.
int init_loop(uv_loop_s* loop);

// The most bytes one read or write call moves: 1 GiB (read(2) moves at most 0x7ffff000 bytes, so
// larger chunks take several calls). Tests lower it to drive the code that continues short reads.
extern std::atomic<std::size_t> max_bytes_per_call;

// Inputs the readers of this process read in a shared thread-pool job (many small files), for
// the tests to see that path taken.
extern std::atomic<std::uint64_t> batched_reads;
// Chunks the readers of this process read in pieces (reader_config::piece_bytes), likewise.
extern std::atomic<std::uint64_t> pieced_reads;

}  // namespace hetpipe::io::detail

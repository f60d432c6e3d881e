// Text counts on the GPU (CUDA-free declarations): lines, words, characters and the word flags of
// each piece of a batch, the same numbers as hetpipe::host::count_text(piece), so the host joins
// GPU and CPU pieces with host::append.
//
//   namespace hc = hetpipe::cuda;
//   hc::text_piece pieces[] = {{0, 12}, {256, 0}};
//   hc::text_count_batch(d_data, pieces, 2, d_counts, s.handle());
//   // once the stream has run, if the 12 bytes at d_data are "hello world\n":
//   // d_counts[0] == {1, 2, 1, 0, 12}, d_counts[1] == {0, 0, 0, 0, 0}
//
// How: a piece is read as 16-byte words (one per thread and step, grid-stride), each byte compared
// with its predecessor (the previous word's last byte comes from the byte before it); a block sums
// its threads' counts and adds them to the piece's result with one atomic each. Blocks along y are
// the batch's pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <hetpipe/error.hpp>

namespace hetpipe::cuda {

// Bytes [offset, offset + size) of the batch buffer; offset a multiple of 16.
struct text_piece {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

struct text_piece_counts {
  std::uint64_t lines = 0;           // '\n' bytes
  std::uint64_t words = 0;           // word starts, one at the first byte included
  std::uint64_t starts_in_word = 0;  // 1: the first byte is not white space
  std::uint64_t ends_in_word = 0;    // 1: the last byte is not white space
  std::uint64_t chars = 0;           // bytes outside 0x80..0xBF (UTF-8 code points)
};

// Pieces per kernel launch: their descriptors travel as a kernel parameter (under 4 KiB).
inline constexpr std::size_t text_pieces_per_launch = 240;

// Counts of h_pieces[0..count) (host memory, read before the call returns) of the batch at d_data
// (device memory, 16-byte aligned) into d_counts[0..count) (device memory, 8-byte aligned), which
// the call zeroes first on `stream`. Queued on `stream` (a cudaStream_t; nullptr = legacy default
// stream) on the current device, in ceil(count / text_pieces_per_launch) launches; nothing waits.
// count == 0 queues nothing. Throws hetpipe::gpu_error for a bad argument or a failed launch.
void text_count_batch(const void* d_data, const text_piece* h_pieces, std::size_t count,
                      text_piece_counts* d_counts, void* stream);

// text_count_batch's argument checks (shared with the fake runtime's stand-in).
inline void check_text_count_args(const void* d_data, const text_piece* h_pieces, std::size_t count,
                                  const text_piece_counts* d_counts) {
  if (d_data == nullptr || h_pieces == nullptr || d_counts == nullptr)
    throw gpu_error("text_count_batch: null pointer");
  if (reinterpret_cast<std::uintptr_t>(d_data) % 16 != 0 ||
      reinterpret_cast<std::uintptr_t>(d_counts) % 8 != 0)
    throw gpu_error("text_count_batch: misaligned buffer");
  for (std::size_t i = 0; i < count; ++i)
    if (h_pieces[i].offset % 16 != 0)
      throw gpu_error("text_count_batch: piece " + std::to_string(i) +
                      " does not start at a multiple of 16 bytes");
}

}  // namespace hetpipe::cuda

// BLAKE3 of a batch of pieces on the GPU (CUDA-free declarations). A piece is a subtree of one
// input's BLAKE3 tree (see host/blake3.hpp): the kernels return its chaining value, or for a piece
// that is a whole input (is_root) its root node, from which the host produces the hash or any
// extended output (host::blake3::root_bytes). Pieces of different inputs share one launch.
//
//   hetpipe::cuda::blake3_workspace ws;               // one per stream; reused across launches
//   std::vector<hetpipe::cuda::blake3_piece> pieces = {{0, 5000, 0, 1}, {8192, 4096, 12, 0}};
//   ws.launch(d_data, pieces.data(), pieces.size(), iv, 0, d_results, s.handle());
//   // copy d_results (2 x 112 bytes) back; after the stream synchronised:
//   //   results[0] is the root node of the 5000-byte input at d_data (cv, block, ...),
//   //   results[1].cv the CV of chunks 12..15 of some input, to merge with
//   host::blake3::tree_merger.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "cuda/runtime.hpp"

namespace hetpipe::cuda {

// Where a piece lies in the batch buffer and where it sits in its input's tree.
struct blake3_piece {
  std::uint64_t offset = 0;         // first byte in the device buffer (16-byte aligned is faster)
  std::uint64_t len = 0;            // >= 1, or 0 for an empty input (is_root)
  std::uint64_t chunk_counter = 0;  // index of its first 1 KiB chunk in its input (0 when root)
  std::uint32_t is_root = 0;        // 1: the piece is the whole input
  std::uint32_t reserved = 0;
};

// Per piece. Not root: cv is the piece's chaining value, the rest is zero. Root: the root node,
// field for field host::blake3::output_node (flags without ROOT).
struct blake3_result {
  std::uint32_t cv[8];
  std::uint32_t block[16];
  std::uint64_t counter;
  std::uint32_t block_len;
  std::uint32_t flags;
};
static_assert(sizeof(blake3_result) == 112, "blake3_result is shared with device code");

// Device scratch of a launch: two CVs (64 bytes) per 1 KiB chunk of the batch (an empty root
// piece counts one chunk), plus 48 bytes per piece. The workspace allocates it.
std::size_t blake3_scratch_bytes(const blake3_piece* h_pieces, std::size_t count);

// Owns the scratch, the descriptor copy and the events of blake3 launches on the current device.
// Launches through one workspace are ordered among themselves (a launch's stream waits for the
// previous launch, whatever its stream), so one workspace per stream avoids false waits.
class blake3_workspace {
 public:
  blake3_workspace() = default;
  blake3_workspace(blake3_workspace&&) noexcept = default;
  blake3_workspace& operator=(blake3_workspace&&) noexcept = default;

  // Queues, on `stream` (a cudaStream_t; nullptr = legacy default stream), the hashing of the
  // `count` pieces described by h_pieces (host memory, read before the call returns) of the bytes
  // at d_data (device memory), writing d_results[0, count) (device memory). key: the eight key
  // words (host::blake3::iv_key(), keyed(...), derive_key_words(...)); flags: the mode flags (0,
  // 16 = keyed_hash, 64 = derive_key material). Does not wait for the GPU, except to grow the
  // scratch (it then waits for this workspace's previous launch) and to reuse the pinned
  // descriptor buffer (it waits until the previous launch's descriptors were copied).
  // Throws hetpipe::gpu_error for a bad piece (len 0 and not root) or a failed CUDA call.
  void launch(const void* d_data, const blake3_piece* h_pieces, std::size_t count,
              const std::uint32_t key[8], std::uint32_t flags, blake3_result* d_results,
              void* stream);

 private:
  pinned_buffer h_desc_;
  device_buffer d_desc_;
  device_buffer d_scratch_;
  // Created at the first launch (on the device then current), so that constructing a workspace
  // needs no GPU.
  std::optional<event> copied_;  // the last launch's descriptors have left h_desc_
  std::optional<event> done_;    // the last launch has finished with d_desc_ and d_scratch_
};

}  // namespace hetpipe::cuda

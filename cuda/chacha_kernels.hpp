// ChaCha20-Poly1305 (RFC 8439) for the age v1 STREAM payload on the GPU, many 64 KiB chunks per
// launch (CUDA-free declarations).
//
// age STREAM: the payload key K seals plaintext chunk i (64 KiB, the last one 0..64 KiB) with
// ChaCha20-Poly1305, no associated data, nonce = 11-byte big-endian i || 0x01 for the final chunk
// (else 0x00); the sealed chunk is its ciphertext followed by the 16-byte tag. A batch is a run of
// consecutive chunks, all full except possibly its last:
//
//   plaintext:  chunk c at c * 65536 (the last has last_len bytes)
//   sealed:     chunk c at c * 65552: ciphertext, then its tag (the last: last_len + 16 bytes)
//
//   namespace hc = hetpipe::cuda;
//   hc::aead_batch b{.first_counter = 64, .chunks = 64, .last_len = 65536, .final_is_last = false};
//   hc::aead_workspace ws;
//   ws.seal(key, b, d_plain, d_sealed, s.handle());           // d_sealed: hc::sealed_bytes(b)
//   ws.open(key, b, d_sealed, d_plain, d_ok, s.handle());     // d_ok[c] = 1: chunk c authentic
//
// How: one thread block (256 threads) per chunk; every thread computes four ChaCha20 blocks in
// registers, the warps trade the keystream through shared memory so that loads and stores are
// coalesced 16-byte words, and Poly1305 is evaluated in parallel: each lane runs Horner with r^32
// over every 32nd 16-byte block of its warp's 8 KiB, and the lanes' and warps' partial sums are
// weighted by powers of r and added (exact arithmetic mod 2^130 - 5; see chacha_device.cuh).
// The key travels as a kernel parameter only; no key material stays in device memory (the
// shared-memory copies of the keystream and the one-time keys are cleared before a block exits).
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include <hetpipe/error.hpp>

namespace hetpipe::cuda {

constexpr std::size_t age_chunk_bytes = 65536;
constexpr std::size_t age_tag_bytes = 16;
constexpr std::size_t age_sealed_chunk_bytes = age_chunk_bytes + age_tag_bytes;  // 65552

// A run of consecutive STREAM chunks in one contiguous buffer (layout above).
struct aead_batch {
  std::uint64_t first_counter = 0;  // STREAM counter of the batch's first chunk
  std::uint32_t chunks = 0;         // number of chunks; 0 queues nothing
  std::uint32_t last_len = 65536;   // plaintext bytes of the last chunk, 0..65536
  bool final_is_last = false;       // the last chunk is the payload's final one (nonce flag 0x01)
};
// age itself allows a short (or empty) chunk only as the payload's final one and an empty one only
// as the sole chunk of an empty payload; the kernels compute whatever the batch describes.

// Bytes of the batch's plaintext and of its sealed form (ciphertext and tags).
constexpr std::size_t plain_bytes(const aead_batch& b) {
  return b.chunks == 0 ? 0 : (std::size_t{b.chunks} - 1) * age_chunk_bytes + b.last_len;
}
constexpr std::size_t sealed_bytes(const aead_batch& b) {
  return b.chunks == 0
             ? 0
             : (std::size_t{b.chunks} - 1) * age_sealed_chunk_bytes + b.last_len + age_tag_bytes;
}

// Seals and opens batches on the current device. Holds no device memory and no key: the key is
// passed by value into the launch's parameters. Calls only queue work (no host synchronisation);
// buffers must stay untouched until the stream has run. Buffers may have any alignment (16-byte
// aligned d_plain and d_sealed take the fast path; cudaMalloc memory is). Throws
// hetpipe::gpu_error for a bad batch (last_len > 65536, chunk count beyond 2^31 - 1, counter
// overflow) or a failed launch.
// The argument checks of seal and open (d_ok: open's flags; nullptr for seal), shared by every
// implementation (the kernels, the tests' stand-ins).
inline void check_aead_args(const aead_batch& b, const void* d_in, const void* d_out,
                            const std::uint32_t* d_ok, bool opening) {
  if (b.last_len > age_chunk_bytes)
    throw gpu_error("aead: last_len " + std::to_string(b.last_len) + " exceeds 65536");
  if (b.chunks > static_cast<std::uint32_t>(INT_MAX))
    throw gpu_error("aead: " + std::to_string(b.chunks) + " chunks in one batch");
  if (b.chunks != 0 && b.first_counter > UINT64_MAX - (b.chunks - 1))
    throw gpu_error("aead: STREAM counter overflows 2^64");
  if (d_in == nullptr || d_out == nullptr) throw gpu_error("aead: null buffer");
  if (opening && (d_ok == nullptr || reinterpret_cast<std::uintptr_t>(d_ok) % 4 != 0))
    throw gpu_error("aead: d_ok is null or not 4-byte aligned");
}

class aead_workspace {
 public:
  aead_workspace() = default;
  aead_workspace(aead_workspace&&) noexcept = default;
  aead_workspace& operator=(aead_workspace&&) noexcept = default;

  // d_plain (device, plain_bytes(b)) -> d_sealed (device, sealed_bytes(b)), on `stream` (a
  // cudaStream_t; nullptr = legacy default stream).
  void seal(const std::uint8_t key[32], const aead_batch& b, const void* d_plain, void* d_sealed,
            void* stream);

  // d_sealed (device, sealed_bytes(b)) -> d_plain (device, plain_bytes(b)) and d_ok[0, b.chunks)
  // (device, 4-byte aligned): 1 when chunk c's tag verifies, else 0. The plaintext of a chunk that
  // fails is overwritten with zeros (never release it anyway: check d_ok first).
  void open(const std::uint8_t key[32], const aead_batch& b, const void* d_sealed, void* d_plain,
            std::uint32_t* d_ok, void* stream);
};

// Single-message ChaCha20-Poly1305 (RFC 8439 section 2.8) with associated data and any 12-byte
// nonce, for tests and RFC vectors (one thread computes the tag: slow). d_sealed receives len
// bytes of ciphertext then the 16-byte tag. d_aad may be nullptr when aad_len == 0.
void aead_seal_one(const std::uint8_t key[32], const std::uint8_t nonce[12], const void* d_aad,
                   std::size_t aad_len, const void* d_plain, std::size_t len, void* d_sealed,
                   void* stream);

// Poly1305 (RFC 8439 section 2.5) of d_msg[0, len) under the 32-byte one-time key (r || s) into
// d_tag[0, 16) (device). One thread; for tests.
void poly1305_one(const std::uint8_t key[32], const void* d_msg, std::size_t len, void* d_tag,
                  void* stream);

}  // namespace hetpipe::cuda

// The checksum, age and text count kernels (cuda/crc_kernels.hpp, blake3_kernels.hpp,
// chacha_kernels.hpp, text_kernels.hpp) on
// the fake CUDA runtime, for test_fake_gpu: linked instead of their .cu objects, as fake_cuda.cpp
// is instead of runtime.cpp's. Each launch becomes the host implementation of the same thing
// (host::crc_update, host::blake3::piece_cv / piece_root, host::age::seal_chunk / open_chunk,
// host::count_text),
// queued on the stream over the fake device memory, with the same argument checks. The operators'
// device code (batches, offsets, result buffers, collecting) then runs for real; the kernels are
// the [gpu] tests' business.
#include <cstring>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/blake3_kernels.hpp"
#include "cuda/chacha_kernels.hpp"
#include "cuda/crc_kernels.hpp"
#include "cuda/text_kernels.hpp"
#include "host/age.hpp"
#include "host/blake3.hpp"
#include "host/crc.hpp"
#include "host/text_count.hpp"
#include "support/fake_cuda.hpp"

namespace hetpipe::cuda {

namespace fc = fake_cuda;
namespace b3 = host::blake3;

// ---- CRC

std::size_t crc_workspace_bytes(std::size_t count) {
  return 16 * count + 16;
}

namespace {

void crc_queue(crc_kind kind, const void* d_data, std::vector<crc_piece> pieces,
               std::uint32_t* d_crc, void* stream) {
  if (d_data == nullptr || d_crc == nullptr) throw gpu_error("crc: null pointer");
  if (reinterpret_cast<std::uintptr_t>(d_crc) % 4 != 0)
    throw gpu_error("crc: results not 4-byte aligned");
  fc::launch(stream, [kind, d_data, pieces = std::move(pieces), d_crc] {
    fc::check_device(d_crc, pieces.size() * sizeof *d_crc);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const auto* p = static_cast<const std::uint8_t*>(d_data) + pieces[i].offset;
      if (pieces[i].len) fc::check_device(p, pieces[i].len);
      d_crc[i] = host::crc_update(static_cast<host::crc_kind>(kind), 0, p, pieces[i].len);
    }
  });
}

}  // namespace

void crc_batch(crc_kind kind, const void* d_data, const crc_piece* d_pieces, std::size_t count,
               void*, std::size_t, std::uint32_t* d_crc, void* stream) {
  if (count == 0) return;
  fc::check_device(d_pieces, count * sizeof *d_pieces);  // read when the launch runs, as on a GPU
  std::vector<crc_piece> pieces(d_pieces, d_pieces + count);
  crc_queue(kind, d_data, std::move(pieces), d_crc, stream);
}

void crc_batch_from_host(crc_kind kind, const void* d_data, const crc_piece* h_pieces,
                         std::size_t count, void*, std::size_t, std::uint32_t* d_crc,
                         void* stream) {
  if (count == 0) return;
  crc_queue(kind, d_data, {h_pieces, h_pieces + count}, d_crc, stream);
}

void crc_workspace::launch(crc_kind kind, const void* d_data, const crc_piece* h_pieces,
                           std::size_t count, std::uint32_t* d_crc, void* stream) {
  if (count == 0) return;
  if (h_pieces == nullptr) throw gpu_error("crc: null pieces");
  crc_queue(kind, d_data, {h_pieces, h_pieces + count}, d_crc, stream);
}

// ---- BLAKE3

std::size_t blake3_scratch_bytes(const blake3_piece* h_pieces, std::size_t count) {
  std::size_t chunks = 0;
  for (std::size_t i = 0; i < count; ++i)
    chunks += std::max<std::size_t>(1, (h_pieces[i].len + b3::chunk_len - 1) / b3::chunk_len);
  return 64 * chunks + 48 * count;
}

void blake3_workspace::launch(const void* d_data, const blake3_piece* h_pieces, std::size_t count,
                              const std::uint32_t key[8], std::uint32_t flags,
                              blake3_result* d_results, void* stream) {
  if (count == 0) return;
  for (std::size_t i = 0; i < count; ++i)
    if (h_pieces[i].len == 0 && !h_pieces[i].is_root)
      throw gpu_error("blake3: piece " + std::to_string(i) + " is empty but not a whole input");
  b3::key_words k;
  std::copy(key, key + 8, k.begin());
  fc::launch(stream, [d_data, pieces = std::vector<blake3_piece>(h_pieces, h_pieces + count), k,
                      flags, d_results] {
    fc::check_device(d_results, pieces.size() * sizeof *d_results);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const blake3_piece& p = pieces[i];
      const auto* data = static_cast<const std::uint8_t*>(d_data) + p.offset;
      if (p.len) fc::check_device(data, p.len);
      blake3_result r{};
      if (p.is_root) {
        const b3::output_node n = b3::piece_root(data, p.len, k, flags);
        std::copy(n.input_cv.begin(), n.input_cv.end(), r.cv);
        std::copy(n.block.begin(), n.block.end(), r.block);
        r.counter = n.counter;
        r.block_len = n.block_len;
        r.flags = n.flags;
      } else {
        const b3::cv c = b3::piece_cv(data, p.len, p.chunk_counter, k, flags);
        std::copy(c.begin(), c.end(), r.cv);
      }
      d_results[i] = r;
    }
  });
}

// ---- ChaCha20-Poly1305 over age STREAM chunks

namespace {

host::age::stream_key key_of(const std::uint8_t key[32]) {
  host::age::stream_key k;
  std::memcpy(k.bytes.data(), key, 32);
  return k;
}

}  // namespace

void aead_workspace::seal(const std::uint8_t key[32], const aead_batch& b, const void* d_plain,
                          void* d_sealed, void* stream) {
  if (b.chunks == 0) return;
  check_aead_args(b, d_plain, d_sealed, nullptr, false);
  fc::launch(stream, [k = key_of(key), b, d_plain, d_sealed] {
    const auto* in = static_cast<const std::uint8_t*>(d_plain);
    auto* out = static_cast<std::uint8_t*>(d_sealed);
    fc::check_device(in, plain_bytes(b));
    fc::check_device(out, sealed_bytes(b));
    for (std::uint32_t c = 0; c < b.chunks; ++c) {
      const bool last_of_batch = c + 1 == b.chunks;
      host::age::seal_chunk(k, b.first_counter + c, last_of_batch && b.final_is_last,
                            in + std::size_t{c} * age_chunk_bytes,
                            last_of_batch ? b.last_len : age_chunk_bytes,
                            out + std::size_t{c} * age_sealed_chunk_bytes);
    }
  });
}

void aead_workspace::open(const std::uint8_t key[32], const aead_batch& b, const void* d_sealed,
                          void* d_plain, std::uint32_t* d_ok, void* stream) {
  if (b.chunks == 0) return;
  check_aead_args(b, d_sealed, d_plain, d_ok, true);
  fc::launch(stream, [k = key_of(key), b, d_sealed, d_plain, d_ok] {
    const auto* in = static_cast<const std::uint8_t*>(d_sealed);
    auto* out = static_cast<std::uint8_t*>(d_plain);
    fc::check_device(in, sealed_bytes(b));
    fc::check_device(out, plain_bytes(b));
    fc::check_device(d_ok, b.chunks * sizeof *d_ok);
    for (std::uint32_t c = 0; c < b.chunks; ++c) {
      const bool last_of_batch = c + 1 == b.chunks;
      d_ok[c] =
          host::age::open_chunk(k, b.first_counter + c, last_of_batch && b.final_is_last,
                                in + std::size_t{c} * age_sealed_chunk_bytes,
                                (last_of_batch ? b.last_len : age_chunk_bytes) + age_tag_bytes,
                                out + std::size_t{c} * age_chunk_bytes)
              ? 1
              : 0;
    }
  });
}

// ---- Text counts

void text_count_batch(const void* d_data, const text_piece* h_pieces, std::size_t count,
                      text_piece_counts* d_counts, void* stream) {
  if (count == 0) return;
  check_text_count_args(d_data, h_pieces, count, d_counts);
  fc::launch(stream,
             [d_data, pieces = std::vector<text_piece>(h_pieces, h_pieces + count), d_counts] {
               fc::check_device(d_counts, pieces.size() * sizeof *d_counts);
               for (std::size_t i = 0; i < pieces.size(); ++i) {
                 const auto* p = static_cast<const std::uint8_t*>(d_data) + pieces[i].offset;
                 if (pieces[i].size) fc::check_device(p, pieces[i].size);
                 const host::text_tally t = host::count_text(p, pieces[i].size);
                 d_counts[i] = {t.lines, t.words, t.starts_in_word ? 1u : 0u,
                                t.ends_in_word ? 1u : 0u, t.chars};
               }
             });
}

}  // namespace hetpipe::cuda

// BLAKE3 on the CPU, written from the specification, cut into the pieces a chunk-parallel
// checksum needs: the chaining value (CV) of any subtree piece of the input, an in-order merger of
// piece CVs into the root, and root output of any length at any offset (XOF). CUDA-free.
//
// A piece is the byte range [i*S, min((i+1)*S, len)) of the input for a power-of-two multiple S
// of chunk_len. Pieces can be hashed in any order on any thread; their CVs are pushed in order:
//
//   using namespace hetpipe::host;
//   const auto key = blake3::iv_key();
//   if (len <= S) {                                          // one piece: it is the root
//     node = blake3::piece_root(data, len, key, 0);
//   } else {
//     blake3::tree_merger m(key, 0);
//     for (i...) m.push(blake3::piece_cv(data + i*S, n_i, i*S / blake3::chunk_len, key, 0),
//                       (n_i + blake3::chunk_len - 1) / blake3::chunk_len);
//     node = m.finish();
//   }
//   blake3::root_bytes(node, 0, out, 32);   // == blake3::hash(data, len)
//   // hash("", 0) = af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hetpipe::host::blake3 {

inline constexpr std::size_t chunk_len = 1024;
inline constexpr std::size_t block_len = 64;
inline constexpr std::size_t out_len = 32;
inline constexpr std::size_t key_len = 32;

// Domain flags of the specification. A mode is one of 0 (hash), flag_keyed_hash,
// flag_derive_key_context or flag_derive_key_material; the functions below add the others.
inline constexpr std::uint32_t flag_chunk_start = 1u << 0;
inline constexpr std::uint32_t flag_chunk_end = 1u << 1;
inline constexpr std::uint32_t flag_parent = 1u << 2;
inline constexpr std::uint32_t flag_root = 1u << 3;
inline constexpr std::uint32_t flag_keyed_hash = 1u << 4;
inline constexpr std::uint32_t flag_derive_key_context = 1u << 5;
inline constexpr std::uint32_t flag_derive_key_material = 1u << 6;

// Eight little-endian words: a key, or a chaining value.
using key_words = std::array<std::uint32_t, 8>;
using cv = std::array<std::uint32_t, 8>;

// The builds of the many-lane compression this CPU runs, best first (of "avx512-16", "avx512",
// "avx2", "avx2-16", "baseline"); hashing uses the first unless use_build picks another. For
// tests and benchmarks: not to be called while another thread hashes. All give the same bytes.
std::vector<std::string_view> builds();
bool use_build(std::string_view name);  // false when this CPU cannot run it
// The build hashing uses: use_build's, else the one the environment variable HETPIPE_BLAKE3 names
// (to compare builds inside a job: benchmarks), else the first of builds(). Throws usage_error
// when HETPIPE_BLAKE3 names none of builds().
std::string_view current_build();

key_words iv_key();                                  // the IV: key of hash and derive_key_context
key_words keyed(const std::uint8_t key[32]);         // key of keyed_hash (mode flag_keyed_hash)
std::array<std::uint8_t, 32> cv_bytes(const cv& c);  // little-endian bytes (a derived key)

// The last compression before the output: enough to produce the root output (root_bytes) or, for
// a node that is not the root, its chaining value. `flags` never holds flag_root.
struct output_node {
  cv input_cv{};
  std::array<std::uint32_t, 16> block{};  // message words, zero-padded after block_len bytes
  std::uint32_t block_len = 0;
  std::uint64_t counter = 0;  // chunk counter (0 for parents); root output ignores it
  std::uint32_t flags = 0;
};

// Chaining value of a non-root node.
cv chaining_value(const output_node& n);

// Root output bytes [offset, offset + len) of the extended output whose root node is n; the
// first 32 bytes are the hash. Any offset and length (2^64 bytes at most in total).
void root_bytes(const output_node& n, std::uint64_t offset, std::uint8_t* out, std::size_t len);

// The parent node of two child CVs (mode flags only in `flags`), as a CV (not the root) or as the
// root's output node. GPU lanes that return several CVs of one piece are finished with these.
cv parent_cv(const cv& left, const cv& right, const key_words& key, std::uint32_t flags);
output_node parent_node(const cv& left, const cv& right, const key_words& key, std::uint32_t flags);

// Non-root chaining value of the subtree holding data[0, len), len >= 1, whose first chunk has
// index chunk_counter in the whole input. The piece must be a subtree of the input's tree (see
// above). Thread-safe, no allocation (about 4 KiB of stack).
cv piece_cv(const std::uint8_t* data, std::size_t len, std::uint64_t chunk_counter,
            const key_words& key, std::uint32_t flags);

// Root node of a whole input data[0, len) (len may be 0).
output_node piece_root(const std::uint8_t* data, std::size_t len, const key_words& key,
                       std::uint32_t flags);

// Merges the CVs of the pieces of one input, pushed in input order, into the root node. Every
// piece but the last must have a power-of-two number of chunks and start at a multiple of it; the
// last may be any size up to the smallest power of two that divides the chunks before it (the
// piece layout above always satisfies this). At least two pieces: a single piece is its own root
// (piece_root). Violations throw std::invalid_argument / std::logic_error.
class tree_merger {
 public:
  tree_merger(const key_words& key, std::uint32_t flags) : key_(key), flags_(flags) {}
  void push(const cv& piece, std::uint64_t chunks);
  output_node finish() const;  // leaves the merger as it is
  std::uint64_t chunks() const noexcept { return total_; }
  std::size_t pieces() const noexcept { return pieces_; }

 private:
  key_words key_;
  std::uint32_t flags_;
  std::array<cv, 65> stack_{};  // CVs of complete subtrees, largest first, then the last piece
  std::size_t depth_ = 0;
  std::uint64_t total_ = 0;  // chunks pushed
  std::uint64_t last_ = 0;   // chunks of the last piece pushed
  std::size_t pieces_ = 0;
};

// One-shots.
std::array<std::uint8_t, 32> hash(const void* data, std::size_t len);
std::array<std::uint8_t, 32> keyed_hash(const std::uint8_t key[32], const void* data,
                                        std::size_t len);
// Extended output of data under key and mode flags (0 / flag_keyed_hash / flag_derive_key_*).
void xof(const key_words& key, std::uint32_t flags, const void* data, std::size_t len,
         std::uint8_t* out, std::size_t out_len);
// derive_key: context string, key material, out_len bytes of derived key.
void derive_key(std::string_view context, const void* material, std::size_t len, std::uint8_t* out,
                std::size_t out_len);
// The key that derive_key uses for `context` (mode flag_derive_key_material), for piecewise use.
key_words derive_key_words(std::string_view context);

}  // namespace hetpipe::host::blake3

// Whole-file digests computed chunk-parallel on CPU and GPU lanes and merged exactly: the chunk
// size, the lanes and the thread count never change a digest.
//
//   hetpipe::checksum_spec spec;                        // BLAKE3, 32 bytes
//   auto r = hetpipe::checksum({"a.bin", "b.bin"}, spec, hetpipe::options{});
//   std::string hex = hetpipe::to_hex(r[0].digest);     // what b3sum prints
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe {

enum class checksum_algo : std::uint8_t {
  blake3,  // BLAKE3 (hash, keyed_hash or derive_key), = b3sum
  crc32c,  // CRC-32C (Castagnoli, iSCSI), check value 0xE3069283
  crc32,   // CRC-32 (reflected 0x04C11DB7), = zlib's crc32()
};

std::optional<checksum_algo> parse_checksum_algo(std::string_view name) noexcept;
std::string_view checksum_algo_name(checksum_algo a) noexcept;

// The longest BLAKE3 output checksum() gives (--length): 64 MiB per file.
inline constexpr std::size_t max_checksum_length = std::size_t{1} << 26;

struct checksum_spec {
  checksum_algo algo = checksum_algo::blake3;
  std::size_t length = 32;                          // BLAKE3 output bytes (extended output)
  std::optional<std::array<std::uint8_t, 32>> key;  // BLAKE3 keyed_hash
  // BLAKE3 derive_key with this context string: each file is key material, its digest the
  // derived key (b3sum --derive-key). Not with `key`.
  std::optional<std::string> derive_key_context;
};

struct checksum_result {
  std::string file;
  std::vector<std::uint8_t> digest;  // CRCs: 4 bytes, big-endian (the 8 hex digits as printed)
  std::uint64_t bytes = 0;
};

// Throws usage_error when the spec cannot be honoured (--length out of range, a key or --length
// for a CRC, a key and a context at once); checksum() checks the same first.
void validate(const checksum_spec& spec);

// Digests of each file ("-" = standard input, read sequentially). BLAKE3 pieces must be aligned
// subtrees, so the chunk size is rounded down to a power of two (at least 4 KiB). Throws
// hetpipe::error naming the file on any failure.
std::vector<checksum_result> checksum(const std::vector<std::string>& files,
                                      const checksum_spec& spec, const options& opt,
                                      job_report* report = nullptr);
// As checksum(), handing each file's result to `sink` (with its index in `files`) as soon as it is
// final rather than all at the end: during the job, one call at a time, files in the order they
// end (empty files first; an empty pipe after the job). Each digest is made just before its call,
// so a caller that lets it go holds one at a time (64 MiB ones with --length). On a failure, the
// files handed over before it keep their results.
using checksum_sink = std::function<void(std::size_t index, checksum_result&& result)>;
void checksum_each(const std::vector<std::string>& files, const checksum_spec& spec,
                   const options& opt, const checksum_sink& sink, job_report* report = nullptr);

// Lower-case hex of `bytes`.
std::string to_hex(const std::vector<std::uint8_t>& bytes);

// The files named by `paths`, in order; folders are walked (sorted by name, recursively) when
// `recursive`, else they are an io_error "is a directory". "-" passes through. Throws io_error
// for a path that does not exist.
std::vector<std::string> expand_paths(const std::vector<std::string>& paths, bool recursive);

// expand_paths that goes on past a path it cannot expand (missing, a folder without
// `recursive`, a folder the walk cannot open or read): that path has an entry of its own whose
// `error` says why (empty for the files).
struct expanded_path {
  std::string path;
  std::string error;  // empty: a file (or "-")
  int code = 0;       // with error: its negative errno, as io_error::code() gives it
  // Its bytes can be read only once: standard input, a pipe, FIFO, socket or character device
  // (a regular file or block device can be read again).
  bool once = false;
};
std::vector<expanded_path> expand_paths_each(const std::vector<std::string>& paths, bool recursive);

}  // namespace hetpipe

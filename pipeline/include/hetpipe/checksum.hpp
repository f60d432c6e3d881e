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

// As checksum_each(), going on past the files that cannot be read, as sha256sum does: `done` gets
// each file once, by index, with its result as soon as it is final (from a lane's thread, one
// call at a time; an empty pipe's after its job, from this thread), or no result and why it could
// not be read (from this thread, between jobs). A file that fails midway costs its job one more
// run over the files not yet done (the work on those is lost); before it every other file is
// tried (opened, 8 bytes read), so that many files that fail at once cost one run in all, not one
// each. The jobs go in the files' order, so results come about in that order: each run of files
// one job, and each input whose bytes can be read only once (standard input, pipes, FIFOs,
// character devices) a job of its own, never read twice. read_once[i] says which those are where
// the caller knows (expanded_path::once, input_open_error); empty, each file is stat'ed for it.
// options::trace_path holds every job's rows, written once they all ran. Throws what is no one
// file's failure (a bad spec, a trace that cannot be written, a cancel).
using checksum_outcome = std::function<void(
    std::size_t index, std::optional<checksum_result>&& result, const std::string& reason)>;
void checksum_files(const std::vector<std::string>& files, const checksum_spec& spec,
                    const options& opt, const checksum_outcome& done,
                    const std::vector<bool>& read_once = {});

// errno when `file` cannot be opened for reading (0 when it can; "-" can): stat first, as a
// folder opens but cannot be read and opening a FIFO would wait for its writer (FIFOs and devices
// are not opened). *once: whether its bytes can be read only once (standard input, a pipe, FIFO,
// socket or character device). With first_read, a regular file's first 8 bytes are read too (a
// file that opens and fails at its first read: /proc/PID/mem). Only errors that say the file
// cannot be read count: not EAGAIN (nothing to read yet) nor EINVAL (a read of that size
// refused, as the /proc/kpage* files refuse reads of other than whole 8-byte words).
int input_open_error(const std::string& file, bool* once, bool first_read = false);

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

// How an input is cut into chunks, and what a chunk knows about itself. The operator decides the
// framing; the reader (io/) honours it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetpipe {

enum class framing_kind : std::uint8_t {
  records,     // byte ranges whose sizes are multiples of record_size (binary arrays)
  whole_file,  // one chunk per input (small files, images); the input must fit one slot
  lines,       // '\n'-terminated records; a record belongs to the chunk in which it starts
               // (so a chunk may hold none: size 0, and the input's `last` chunk may be such an
               // empty one: `last` says no chunk follows, not that the data ends with '\n'; an
               // empty chunk's offset is where it would have started). A slot then holds
               // chunk_size + max_record + 1 bytes; max_record is at most 1 GiB
};

struct framing {
  framing_kind kind = framing_kind::records;
  std::size_t record_size = 1;  // records: bytes per record (an input's size must be a multiple)
  std::size_t max_record = 1u << 20;  // lines: the longest record accepted, else an error

  static constexpr framing records(std::size_t size) { return {framing_kind::records, size, 0}; }
  static constexpr framing whole_file() { return {framing_kind::whole_file, 1, 0}; }
  static constexpr framing lines(std::size_t max_record = 1u << 20) {
    return {framing_kind::lines, 1, max_record};
  }
};

// Where a chunk came from. Sequence numbers are given in reader order (input by input, offset by
// offset), so merging or writing in `seq` order is deterministic whatever lane did the work.
struct chunk_info {
  std::size_t input = 0;     // index of the input in the job
  std::uint64_t seq = 0;     // job-wide sequence number
  std::uint64_t index = 0;   // chunk number within its input
  std::uint64_t offset = 0;  // byte offset of the chunk's first byte within the input's data region
  std::size_t size = 0;      // bytes in the chunk
  bool last = false;         // the last chunk of its input
};

}  // namespace hetpipe

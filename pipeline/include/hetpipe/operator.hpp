// The operator interface: built-in operators (stats, ...) and a user's own go through it alike and
// get the same overlap of reading and computing, scheduling, progress and tracing.
//
//   reduce_op:    chunk → partial (on a CPU lane: host(); on a GPU lane: device_reducer), partials
//                 merged per input in sequence order (deterministic even for non-associative
//                 merges).
//   transform_op: chunk → output bytes, written to the input's output in order.
//
// Nothing here needs CUDA headers. A device implementation receives device pointers and a CUDA
// stream as an opaque handle (cast it to cudaStream_t in a .cu file).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include <hetpipe/framing.hpp>

namespace hetpipe {

// An operator's per-chunk result, and an input's running total. Operators subclass it.
class partial {
 public:
  virtual ~partial() = default;
};

struct stream_ref {
  void* handle = nullptr;  // cudaStream_t
  int device = 0;
  void* copy_back = nullptr;      // engine's cudaEvent_t for mark_copy_back (may be null)
  bool* copy_back_set = nullptr;  // set by mark_copy_back
};

// Marks on `s` where an operator's copies of results back to the host begin: call it after its
// last kernel and before its first device-to-host copy. The trace then shows the kernel and the
// D2H copy as two spans; without the mark, the kernel span includes the copy back.
void mark_copy_back(stream_ref s);

// Device half of a reduction, one per GPU lane (so it may own device scratch and pinned result
// buffers). `buffer` in [0, buffers) names the lane's in-flight slot: results of a launch with
// buffer b must stay intact until collect(b) was called.
class device_reducer {
 public:
  virtual ~device_reducer() = default;
  // Enqueue the work on `stream` over `d_data` (info.size bytes, device-resident), including the
  // copy of the results to host memory. Must not synchronise.
  virtual void launch(const chunk_info& info, const std::byte* d_data, stream_ref stream,
                      unsigned buffer) = 0;
  // Called after everything launch() enqueued for `buffer` has completed.
  virtual std::unique_ptr<partial> collect(const chunk_info& info, unsigned buffer) = 0;

  // Small chunks in one launch (optional). With max_batch() > 1, a GPU lane that takes a chunk
  // also takes the chunks already waiting, up to max_batch() in all and as many as fit its device
  // buffer, copies them back to back (chunk i at d_data + offsets[i], offsets multiples of 256)
  // and calls launch_batch() and collect_batch() once for all of them: 100 000 small files cost
  // a few hundred launches, not 100 000. collect_batch appends one partial per chunk, in order.
  virtual std::size_t max_batch() const { return 1; }
  virtual void launch_batch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                            const std::byte* d_data, stream_ref stream, unsigned buffer) {
    launch(infos[0], d_data + offsets[0], stream, buffer);
  }
  virtual void collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                             std::vector<std::unique_ptr<partial>>& out) {
    out.push_back(collect(infos[0], buffer));
  }
};

// A device_reducer that works in batches only (max_batch() > 1): it implements launch_batch()
// and collect_batch(), and a lone chunk goes through them as a batch of one.
class batch_device_reducer : public device_reducer {
 public:
  void launch(const chunk_info& info, const std::byte* d_data, stream_ref stream,
              unsigned buffer) final {
    const std::size_t zero = 0;
    launch_batch({&info, 1}, {&zero, 1}, d_data, stream, buffer);
  }
  std::unique_ptr<partial> collect(const chunk_info& info, unsigned buffer) final {
    std::vector<std::unique_ptr<partial>> out;
    collect_batch({&info, 1}, buffer, out);
    return out.empty() ? nullptr : std::move(out.front());
  }
  void launch_batch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                    const std::byte* d_data, stream_ref stream, unsigned buffer) override = 0;
  void collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                     std::vector<std::unique_ptr<partial>>& out) override = 0;
};

class reduce_op {
 public:
  virtual ~reduce_op() = default;
  // How input `input` is cut into chunks: the same answer every time. Called from several
  // threads, concurrently (the reader's, the lanes').
  virtual framing frame(std::size_t input) const = 0;
  // The running total of an input before any chunk (what an empty input reports). Called for
  // every input when the job starts, on the thread that called run().
  virtual std::unique_ptr<partial> identity(std::size_t input) const = 0;
  // One chunk on a CPU lane; never null. Called concurrently from several threads. `data` is
  // valid during the call only (its slot or mapping serves another chunk next) and has no
  // alignment beyond a byte's: load wider values with memcpy.
  virtual std::unique_ptr<partial> host(const chunk_info& info,
                                        std::span<const std::byte> data) const = 0;
  // total ⊕= next. Called for each input's chunks in index order, one call at a time (under the
  // job's lock, on the lane that finished the chunk, while other lanes run host()).
  virtual void merge(partial& total, partial& next) const = 0;
  // A device implementation for a GPU lane on `device`, or nullptr (CPU lanes only).
  // `max_chunk` bounds info.size.
  virtual std::unique_ptr<device_reducer> make_device_reducer(int device, std::size_t max_chunk,
                                                              unsigned buffers) const {
    (void)device, (void)max_chunk, (void)buffers;
    return nullptr;
  }
};

// Device half of a transform, one per GPU lane. A batch is one chunk, or several small ones (see
// device_reducer::max_batch); `buffer` in [0, buffers) names the lane's in-flight slot, as for a
// reducer: what launch() wrote for `buffer` must stay intact until its chunks were collected.
class device_transformer {
 public:
  virtual ~device_transformer() = default;
  virtual std::size_t max_batch() const { return 1; }
  // Whether this chunk should rather run on the host (transform_op::host, on the lane's thread),
  // e.g. an image too large for the device's memory. Called before stage().
  virtual bool prefer_host(const chunk_info& info, std::span<const std::byte> data) {
    (void)info, (void)data;
    return false;
  }
  // The bytes stage() will give for this chunk, or an estimate (optional; default its size), from
  // a cheap look at it (an image's header), on the lane's thread. A GPU lane packs waiting chunks
  // into one batch while their staged bytes fit 64 MiB (or one chunk, if larger), so that a batch
  // of small files that decode to large images stays bounded.
  virtual std::size_t staged_bytes(const chunk_info& info, std::span<const std::byte> data) {
    (void)info;
    return data.size();
  }
  // What a batch that starts with this chunk may stage, and read, in bytes (optional; 0: the
  // default above). A transformer whose prepare() or finish() spreads costly per-chunk work over a
  // team of threads asks for enough chunks to keep its team busy (a team decoding PNGs asks for
  // as many decoded images as it has threads).
  virtual std::size_t batch_budget(const chunk_info& info, std::span<const std::byte> data) {
    (void)info, (void)data;
    return 0;
  }
  // Host work over a batch before its stage() calls, on the lane's thread (optional): the chunks
  // about to be staged, in the order stage() will see them (chunks run on the host through
  // prefer_host are not among them). Per-chunk work that costs (decoding a compressed image) can
  // be spread over threads here and its results kept for stage(). Must not throw input_skipped:
  // keep a chunk's failure and throw it from that chunk's stage().
  virtual void prepare(std::span<const chunk_info> infos,
                       std::span<const std::span<const std::byte>> data, unsigned buffer) {
    (void)infos, (void)data, (void)buffer;
  }
  // Host work before the copy to the device, on the lane's thread (optional): returns the bytes to
  // copy for this chunk, either `data` itself, a part of it, or host memory the transformer owns
  // for `buffer` (pinned, for full copy speed) that stays valid until the next stage() call for
  // the same buffer (the copy is asynchronous: it may still run after launch()). They may be larger
  // than the chunk: the lane's device buffer grows to fit. Decoding a compressed image goes here,
  // overlapping the device's work on other chunks. May throw input_skipped: the chunk then leaves
  // the batch.
  virtual std::span<const std::byte> stage(const chunk_info& info, std::span<const std::byte> data,
                                           unsigned buffer) {
    (void)info, (void)buffer;
    return data;
  }
  // Enqueue on `stream` the work over the batch (chunk i's staged bytes at d_data + offsets[i],
  // device-resident) and the copy of its outputs into host memory the transformer owns for
  // `buffer`. Must not synchronise (except, rarely, to grow its own buffers).
  virtual void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                      const std::byte* d_data, stream_ref stream, unsigned buffer) = 0;
  // After everything launch() enqueued for `buffer` has completed, before the batch's collect()
  // calls, on the lane's thread (optional): per-chunk work on the results (encoding an image) can
  // be spread over threads here. Must not throw input_skipped: keep a chunk's failure for its
  // collect().
  virtual void finish(std::span<const chunk_info> infos, unsigned buffer) {
    (void)infos, (void)buffer;
  }
  // After everything launch() enqueued for `buffer` has completed: append the output of the
  // batch's chunk `i` (infos[i]) to `out`. Called for i = 0, 1, ... in order; may throw
  // input_skipped (that chunk's input gets no output) or any error (the job fails).
  virtual void collect(const chunk_info& info, std::size_t i, unsigned buffer,
                       std::vector<std::byte>& out) = 0;
};

// An in-order stage between a transform's chunk outputs and its output file
// (transform_op::make_output_filter).
class output_filter {
 public:
  virtual ~output_filter() = default;
  // Each piece of the output in order, the prologue first, from one thread at a time; it may
  // change the piece's size. A throw fails the output (an io_error naming it).
  virtual void put(std::vector<std::byte>& piece) = 0;
  // What follows the last piece.
  virtual void finish(std::vector<std::byte>& tail) = 0;
};

class transform_op {
 public:
  virtual ~transform_op() = default;
  // As reduce_op::frame: the same answer every time, from any thread.
  virtual framing frame(std::size_t input) const = 0;
  // Output bytes of one chunk on a CPU lane (`out` comes empty, perhaps with memory reserved from
  // an earlier chunk). Called concurrently. `data` as for reduce_op::host. May throw
  // input_skipped (that input gets no output; transforms only: in a reduction any throw fails
  // the job).
  virtual void host(const chunk_info& info, std::span<const std::byte> data,
                    std::vector<std::byte>& out) const = 0;
  // Bytes an output starts with, before the first chunk's output (a file header). Called once per
  // input, from any thread.
  virtual void prologue(std::size_t input, std::vector<std::byte>& out) const {
    (void)input, (void)out;
  }
  // What follows the prologue when the input is empty (it produces no chunk), e.g. the one empty,
  // authenticated final record of an encrypted stream.
  virtual void empty_output(std::size_t input, std::vector<std::byte>& out) const {
    (void)input, (void)out;
  }
  virtual std::unique_ptr<device_transformer> make_device_transformer(int device,
                                                                      std::size_t max_chunk,
                                                                      unsigned buffers) const {
    (void)device, (void)max_chunk, (void)buffers;
    return nullptr;
  }
  // Whether an output that cannot be written (its temporary file cannot be created, a write or
  // the rename fails: a full disk, a read-only folder) fails only its own input, which is then
  // listed in job_report::skipped as a refused input is, while the job goes on with the others
  // (a batch of independent files). By default it fails the job.
  virtual bool outputs_fail_alone() const { return false; }
  // A stage the output of `input` goes through in order on its way to the file, after the
  // chunks' outputs are put in order (a text encoding of the whole output, as age's armor). By
  // default none.
  virtual std::unique_ptr<output_filter> make_output_filter(std::size_t input) const {
    (void)input;
    return nullptr;
  }
};

}  // namespace hetpipe

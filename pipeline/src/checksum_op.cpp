// hetpipe::checksum: CRC32, CRC32C and BLAKE3 as a reduction over chunks.
//
// Every chunk is a piece of its file; pieces are digested anywhere (CPU lanes through host/, GPU
// lanes through cuda/) and merged per file in chunk order:
//   CRC:    crc(a‖b) = crc_combine(crc(a), crc(b), |b|), exact GF(2) arithmetic;
//   BLAKE3: with a power-of-two chunk size every piece is a subtree of the file's tree whose
//           first BLAKE3 chunk is offset / 1024; the pieces' chaining values go through
//           host::blake3::tree_merger, and a file of one piece is hashed as the root directly.
#include <hetpipe/checksum.hpp>
#include <hetpipe/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "host/blake3.hpp"
#include "host/crc.hpp"
#include "pipeline/src/engine.hpp"
#include "pipeline/src/stat_all.hpp"
#include "pipeline/src/trace.hpp"
#include "pipeline/src/walk.hpp"
#if HETPIPE_WITH_CUDA
#include "cuda/blake3_kernels.hpp"
#include "cuda/crc_kernels.hpp"
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {
namespace {

namespace b3 = host::blake3;

struct crc_partial final : partial {
  std::uint32_t crc = 0;
  std::uint64_t bytes = 0;
};

struct blake3_partial final : partial {
  // A piece: its chaining value, or (root) the root node of a file that is one piece.
  bool root = false;
  b3::output_node node{};
  b3::cv value{};
  std::uint64_t chunks = 0;  // BLAKE3 chunks in the piece
  std::uint64_t bytes = 0;
  // A file's running total: the pieces merged so far. Made for a file of two pieces or more
  // only: held in place, its stack of 65 CVs made every partial 2.3 KiB, and a job over 16 384
  // small files faulted in and zeroed that much again for each file's total and each piece.
  std::unique_ptr<b3::tree_merger> merger;
};

host::crc_kind crc_kind_of(checksum_algo a) {
  return a == checksum_algo::crc32 ? host::crc_kind::crc32 : host::crc_kind::crc32c;
}

std::uint64_t blake3_chunks(std::uint64_t bytes) {
  return (bytes + b3::chunk_len - 1) / b3::chunk_len;
}

// The piece of one chunk: the root when the chunk is the whole file.
std::unique_ptr<blake3_partial> blake3_piece(const chunk_info& info, const std::uint8_t* data,
                                             const b3::key_words& key, std::uint32_t mode) {
  auto out = std::make_unique<blake3_partial>();
  out->bytes = info.size;
  out->chunks = blake3_chunks(info.size);
  if (info.index == 0 && info.last) {
    out->root = true;
    out->node = b3::piece_root(data, info.size, key, mode);
  } else if (info.size > 0) {
    out->value = b3::piece_cv(data, info.size, info.offset / b3::chunk_len, key, mode);
  }
  return out;
}

class checksum_op final : public reduce_op {
 public:
  explicit checksum_op(const checksum_spec& spec) : spec_(spec) {
    // A bad HETPIPE_BLAKE3 is an error before the job, not inside a lane.
    if (spec.algo == checksum_algo::blake3) (void)b3::current_build();
    if (spec.key) {
      key_ = b3::keyed(spec.key->data());
      mode_ = b3::flag_keyed_hash;
    } else if (spec.derive_key_context) {
      key_ = b3::derive_key_words(*spec.derive_key_context);
      mode_ = b3::flag_derive_key_material;
    } else {
      key_ = b3::iv_key();
    }
  }
  framing frame(std::size_t) const override { return framing::records(1); }
  std::unique_ptr<partial> identity(std::size_t) const override {
    if (spec_.algo == checksum_algo::blake3) return std::make_unique<blake3_partial>();
    return std::make_unique<crc_partial>();
  }
  std::unique_ptr<partial> host(const chunk_info& info,
                                std::span<const std::byte> data) const override {
    const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
    if (spec_.algo == checksum_algo::blake3) return blake3_piece(info, p, key_, mode_);
    auto out = std::make_unique<crc_partial>();
    out->crc = host::crc_update(crc_kind_of(spec_.algo), 0, p, data.size());
    out->bytes = data.size();
    return out;
  }
  void merge(partial& total, partial& next) const override {
    if (spec_.algo != checksum_algo::blake3) {
      auto& t = static_cast<crc_partial&>(total);
      auto& n = static_cast<crc_partial&>(next);
      t.crc = host::crc_combine(crc_kind_of(spec_.algo), t.crc, n.crc, n.bytes);
      t.bytes += n.bytes;
      return;
    }
    auto& t = static_cast<blake3_partial&>(total);
    auto& n = static_cast<blake3_partial&>(next);
    t.bytes += n.bytes;
    if (n.root) {
      t.root = true;
      t.node = n.node;
      return;
    }
    if (n.bytes == 0) return;  // an empty last piece (a stream that ended on a chunk boundary)
    if (!t.merger) t.merger = std::make_unique<b3::tree_merger>(key_, mode_);
    t.merger->push(n.value, n.chunks);
  }
  std::unique_ptr<device_reducer> make_device_reducer(int device, std::size_t max_chunk,
                                                      unsigned buffers) const override;

  // The digest of a file's merged total.
  std::vector<std::uint8_t> digest(partial& total) const {
    std::vector<std::uint8_t> out;
    if (spec_.algo != checksum_algo::blake3) {
      const std::uint32_t c = static_cast<crc_partial&>(total).crc;
      return {std::uint8_t(c >> 24), std::uint8_t(c >> 16), std::uint8_t(c >> 8), std::uint8_t(c)};
    }
    auto& t = static_cast<blake3_partial&>(total);
    b3::output_node node;
    if (t.root)
      node = t.node;
    else if (t.merger && t.merger->pieces() >= 2)
      node = t.merger->finish();
    else if (!t.merger)
      node = b3::piece_root(nullptr, 0, key_, mode_);  // empty input
    else  // one non-root piece and nothing else: only a stream can end like this
      throw std::logic_error("checksum: a single piece was not marked as the whole input");
    out.resize(spec_.length);
    b3::root_bytes(node, 0, out.data(), out.size());
    return out;
  }
  std::uint64_t bytes(partial& total) const {
    if (spec_.algo != checksum_algo::blake3) return static_cast<crc_partial&>(total).bytes;
    return static_cast<blake3_partial&>(total).bytes;
  }

  const checksum_spec& spec() const { return spec_; }
  const b3::key_words& key() const { return key_; }
  std::uint32_t mode() const { return mode_; }

 private:
  checksum_spec spec_;
  b3::key_words key_{};
  std::uint32_t mode_ = 0;
};

#if HETPIPE_WITH_CUDA
// One GPU lane's digests: one piece per chunk, many small chunks (files) per launch, the results
// copied back on the lane's stream.
class checksum_device final : public batch_device_reducer {
 public:
  static constexpr std::size_t batch_limit = 4096;

  checksum_device(const checksum_op& op, unsigned buffers)
      : op_(op), blake_(op.spec().algo == checksum_algo::blake3) {
    const std::size_t result_bytes =
        batch_limit * (blake_ ? sizeof(cuda::blake3_result) : sizeof(std::uint32_t));
    for (unsigned b = 0; b < buffers; ++b) {
      slots_.push_back(std::make_unique<slot>());
      slot& s = *slots_.back();
      s.d_result = cuda::device_buffer(result_bytes);
      s.h_result = cuda::pinned_buffer(result_bytes);
    }
  }
  std::size_t max_batch() const override { return batch_limit; }
  void launch_batch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                    const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    slot& s = *slots_[buffer];
    const std::size_t n = infos.size();
    if (blake_) {
      s.b3_pieces.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const bool root = infos[i].index == 0 && infos[i].last;
        s.b3_pieces[i] = {offsets[i], infos[i].size, root ? 0 : infos[i].offset / b3::chunk_len,
                          root ? 1u : 0u, 0};
      }
      s.blake3.launch(d_data, s.b3_pieces.data(), n, op_.key().data(), op_.mode(),
                      static_cast<cuda::blake3_result*>(s.d_result.get()), stream.handle);
    } else {
      s.crc_pieces.resize(n);
      for (std::size_t i = 0; i < n; ++i) s.crc_pieces[i] = {offsets[i], infos[i].size};
      const auto kind =
          op_.spec().algo == checksum_algo::crc32 ? cuda::crc_kind::crc32 : cuda::crc_kind::crc32c;
      s.crc.launch(kind, d_data, s.crc_pieces.data(), n,
                   static_cast<std::uint32_t*>(s.d_result.get()), stream.handle);
    }
    const std::size_t each = blake_ ? sizeof(cuda::blake3_result) : sizeof(std::uint32_t);
    mark_copy_back(stream);
    cuda::copy_d2h_async(s.h_result.get(), s.d_result.get(), n * each, stream.handle);
  }
  void collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                     std::vector<std::unique_ptr<partial>>& out) override {
    const slot& s = *slots_[buffer];
    for (std::size_t i = 0; i < infos.size(); ++i) {
      const chunk_info& info = infos[i];
      if (!blake_) {
        auto p = std::make_unique<crc_partial>();
        p->crc = static_cast<const std::uint32_t*>(s.h_result.get())[i];
        p->bytes = info.size;
        out.push_back(std::move(p));
        continue;
      }
      const auto& r = static_cast<const cuda::blake3_result*>(s.h_result.get())[i];
      auto p = std::make_unique<blake3_partial>();
      p->bytes = info.size;
      p->chunks = blake3_chunks(info.size);
      if (info.index == 0 && info.last) {
        p->root = true;
        std::copy(std::begin(r.cv), std::end(r.cv), p->node.input_cv.begin());
        std::copy(std::begin(r.block), std::end(r.block), p->node.block.begin());
        p->node.block_len = r.block_len;
        p->node.counter = r.counter;
        p->node.flags = r.flags;
      } else {
        std::copy(std::begin(r.cv), std::end(r.cv), p->value.begin());
      }
      out.push_back(std::move(p));
    }
  }

 private:
  struct slot {
    cuda::blake3_workspace blake3;  // their pinned descriptor copies keep launches asynchronous
    cuda::crc_workspace crc;
    cuda::device_buffer d_result;
    cuda::pinned_buffer h_result;
    std::vector<cuda::blake3_piece> b3_pieces;
    std::vector<cuda::crc_piece> crc_pieces;
  };
  const checksum_op& op_;
  bool blake_;
  std::vector<std::unique_ptr<slot>> slots_;
};
#endif

std::unique_ptr<device_reducer> checksum_op::make_device_reducer(int, std::size_t,
                                                                 unsigned buffers) const {
#if HETPIPE_WITH_CUDA
  return std::make_unique<checksum_device>(*this, buffers);
#else
  (void)buffers;
  return nullptr;
#endif
}

std::size_t floor_pow2(std::size_t x) {
  return x == 0 ? 0 : std::size_t{1} << (std::bit_width(x) - 1);
}

}  // namespace

std::optional<checksum_algo> parse_checksum_algo(std::string_view name) noexcept {
  if (name == "blake3") return checksum_algo::blake3;
  if (name == "crc32c") return checksum_algo::crc32c;
  if (name == "crc32") return checksum_algo::crc32;
  return std::nullopt;
}

std::string_view checksum_algo_name(checksum_algo a) noexcept {
  switch (a) {
    case checksum_algo::blake3:
      return "blake3";
    case checksum_algo::crc32c:
      return "crc32c";
    case checksum_algo::crc32:
      return "crc32";
  }
  return "?";
}

std::string to_hex(const std::vector<std::uint8_t>& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * bytes.size());
  for (std::uint8_t b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

namespace {

// Whether a file of this type can be read only once (a pipe, FIFO, socket or character device):
// a regular file or block device can be read again.
bool reads_once(mode_t mode) {
  return !S_ISREG(mode) && !S_ISBLK(mode);
}

}  // namespace

std::vector<expanded_path> expand_paths_each(const std::vector<std::string>& paths,
                                             bool recursive) {
  std::vector<expanded_path> out;
  const std::vector<detail::path_stat> stats = detail::stat_all(paths);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    const mode_t mode = stats[i].st.st_mode;
    if (p == "-") {
      out.push_back({p, {}, 0, true});
    } else if (const int err = stats[i].error) {
      out.push_back({p, errno_reason(err), -err});
    } else if (!S_ISDIR(mode)) {
      out.push_back({p, {}, 0, reads_once(mode)});
    } else if (!recursive) {
      out.push_back({p, "is a directory (-r walks folders)", -EISDIR});
    } else {
      detail::walk(p, {[&out](std::string f) { out.push_back({std::move(f)}); },
                       [&out](const std::string& dir, int err) {
                         out.push_back({dir, errno_reason(err), -err});
                       },
                       {}});
    }
  }
  return out;
}

std::vector<std::string> expand_paths(const std::vector<std::string>& paths, bool recursive) {
  std::vector<std::string> out;
  for (auto& e : expand_paths_each(paths, recursive)) {
    if (!e.error.empty()) throw io_error(e.path, e.error, e.code);
    out.push_back(std::move(e.path));
  }
  return out;
}

void validate(const checksum_spec& spec) {
  if (spec.algo == checksum_algo::blake3) {
    // Each digest is held whole, and printed as hex (about 7 bytes of memory per output byte in
    // all): a bound keeps a typo (-l 4294967296, or -1 wrapped to 2^64 - 1) from an out-of-memory
    // kill. b3sum streams any length; longer outputs are not supported here.
    if (spec.length == 0 || spec.length > max_checksum_length)
      throw usage_error("--length must be between 1 and " + std::to_string(max_checksum_length) +
                        " bytes");
    if (spec.key && spec.derive_key_context)
      throw usage_error("--keyed and --derive-key are two modes: give one");
  } else {
    if (spec.key) throw usage_error("a key is for BLAKE3 only (-a blake3)");
    if (spec.derive_key_context) throw usage_error("--derive-key is for BLAKE3 only (-a blake3)");
    if (spec.length != 32) throw usage_error("--length is for BLAKE3 only (-a blake3)");
  }
}

std::vector<checksum_result> checksum(const std::vector<std::string>& files,
                                      const checksum_spec& spec, const options& opt,
                                      job_report* report) {
  std::vector<checksum_result> results(files.size());
  checksum_each(
      files, spec, opt, [&](std::size_t i, checksum_result&& r) { results[i] = std::move(r); },
      report);
  return results;
}

namespace {

// checksum_each with a trace shared by several jobs (none: options::trace_path's own).
void checksum_each_traced(const std::vector<std::string>& files, const checksum_spec& spec,
                          const options& opt, const checksum_sink& sink, job_report* report,
                          detail::tracer* trace) {
  validate(spec);
  options o = opt;
  if (o.chunk_size != 0) {
    // Checked as every job's options are (resolve: 4K..1G), then rounded: BLAKE3 pieces must be
    // whole subtrees, a power of two of 1 KiB chunks.
    (void)resolve(o);
    o.chunk_size = floor_pow2(o.chunk_size);
  }
  std::vector<input> inputs;
  inputs.reserve(files.size());
  for (const auto& f : files) inputs.push_back({f, 0, std::nullopt});
  checksum_op op(spec);
  std::vector<bool> handed(files.size(), false);  // written under the merger's lock, then read here
  const auto hand = [&](std::size_t i, partial& total) {
    handed[i] = true;
    sink(i, checksum_result{files[i], op.digest(total), op.bytes(total)});
  };
  auto totals = detail::run_reduce(op, inputs, o, report, hand, trace);
  for (std::size_t i = 0; i < files.size(); ++i)
    if (!handed[i]) hand(i, *totals[i]);  // an empty stream
}

}  // namespace

void checksum_each(const std::vector<std::string>& files, const checksum_spec& spec,
                   const options& opt, const checksum_sink& sink, job_report* report) {
  checksum_each_traced(files, spec, opt, sink, report, nullptr);
}

int input_open_error(const std::string& file, bool* once, bool first_read) {
  *once = file == "-";
  if (*once) return 0;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  *once = reads_once(st.st_mode);
  if (S_ISREG(st.st_mode)) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno;
    int err = 0;
    if (char bytes[8]; first_read && ::pread(fd, bytes, sizeof bytes, 0) < 0)
      err = errno == EAGAIN || errno == EINVAL ? 0 : errno;
    ::close(fd);
    return err;
  }
  return 0;
}

void checksum_files(const std::vector<std::string>& files, const checksum_spec& spec,
                    const options& opt, const checksum_outcome& done,
                    const std::vector<bool>& read_once) {
  validate(spec);
  if (!read_once.empty() && read_once.size() != files.size())
    throw std::invalid_argument("checksum_files: read_once has " +
                                std::to_string(read_once.size()) + " entries for " +
                                std::to_string(files.size()) + " files");
  // One trace for every job, opened before the first (a path naming any of the files, of a
  // later job too, is refused before anything is written over it); none without files.
  options o = opt;
  std::optional<detail::tracer> trace;
  if (!opt.trace_path.empty() && !files.empty()) {
    trace.emplace(true);
    trace->open(opt.trace_path, files, {});
    o.trace_path.clear();
  }
  std::vector<bool> once = read_once;
  if (once.empty())  // one entry per path without recursion
    for (const auto& e : expand_paths_each(files, false)) once.push_back(e.once);
  std::vector<char> handed(files.size(), 0);  // written by one thread at a time
  const auto fail = [&](std::size_t i, const std::string& reason) {
    if (handed[i]) return;
    handed[i] = 1;
    done(i, std::nullopt, reason);
  };
  bool ran = false;  // a job ran (none: no trace either)
  // One job over files[which], run again without a file that failed.
  const auto digest = [&](std::vector<std::size_t> which) {
    bool prechecked = false;
    while (!which.empty()) {
      std::vector<std::string> left;
      left.reserve(which.size());
      for (const std::size_t i : which) left.push_back(files[i]);
      ran = true;
      try {
        checksum_each_traced(
            left, spec, o,
            [&](std::size_t k, checksum_result&& r) {
              handed[which[k]] = 1;
              done(which[k], std::move(r), {});
            },
            nullptr, trace ? &*trace : nullptr);
        return;
      } catch (const io_error& e) {
        // The failing file: the first of that name not done (a name may be given twice).
        std::size_t k = 0;
        while (k < left.size() && (left[k] != e.file() || handed[which[k]])) ++k;
        if (k == left.size()) throw;  // not one file's (standard output, say)
        fail(which[k], e.reason());
        for (const std::size_t i : which) {
          if (handed[i]) continue;
          if (files[i] == "-") {
            fail(i, "standard input cannot be read again");
          } else if (once[i]) {
            fail(i, "cannot be read again (not a regular file)");
          } else if (!prechecked) {
            bool ignored = false;
            if (const int err = input_open_error(files[i], &ignored, true))
              fail(i, errno_reason(err));
          }
        }
        prechecked = true;
        std::erase_if(which, [&](std::size_t i) { return handed[i] != 0; });
      }
    }
  };
  std::vector<std::size_t> run;  // the run of files up to the next read-once input
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!once[i]) {
      run.push_back(i);
      continue;
    }
    digest(std::exchange(run, {}));  // none: no job
    digest({i});
  }
  digest(std::move(run));
  if (trace && ran) trace->write();
}

}  // namespace hetpipe

// hetpipe::run_images: a transform with one chunk per image file.
//
// CPU lane: the chain of host::img::apply row by row, from a PNM's raster where it lies in the slot
// straight into the output file's bytes; a PNG is decoded first and encoded after.
// GPU lane: before a batch's copy, the PNGs among its images are decoded into pinned staging by
// a team of host threads (prepare), while the device works on the previous batch; a PNM's raster
// is copied as it lies in the pinned slot. On the device the raster is widened to uint16, the
// whole chain runs in the lane's image_workspace and the result is narrowed to its output
// layout; one copy back per batch; then the team encodes the batch's PNG outputs (finish) and the
// lane's thread writes the PNM headers. Small images go several per batch.
#include <hetpipe/error.hpp>
#include <hetpipe/image.hpp>

#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "host/image.hpp"
#include "host/image_ops.hpp"
#include "host/parallel.hpp"
#include "pipeline/src/engine.hpp"
#include "pipeline/src/paths.hpp"
#include "pipeline/src/stat_all.hpp"
#include "pipeline/src/walk.hpp"
#if HETPIPE_WITH_CUDA
#include "cuda/image_kernels.hpp"
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {
namespace {

namespace img = host::img;
namespace fs = std::filesystem;

// What an input becomes: its decoded shape, the chain's output shape and the output's encoding.
struct plan {
  img::image_shape in, out;
  img::image_format format = img::image_format::pnm;  // of the output
};

class image_op final : public transform_op {
 public:
  // threads: OpenMP threads per image on a CPU lane (more than one when there are fewer images
  // than lanes); codec_threads: threads of a GPU lane's team that decodes and encodes PNGs.
  image_op(const image_spec& spec, const std::vector<image_file>& files, int threads,
           int codec_threads)
      : ops_(img::parse_ops(spec.ops)),
        format_(spec.format),
        level_(spec.png_level),
        threads_(threads),
        codec_threads_(codec_threads),
        files_(files) {}

  framing frame(std::size_t) const override { return framing::whole_file(); }
  // An image that cannot be written (a full disk, a read-only folder) fails alone, as a bad one.
  bool outputs_fail_alone() const override { return true; }

  const std::vector<img::op>& ops() const { return ops_; }
  int level() const { return level_; }
  int codec_threads() const { return codec_threads_; }
  const std::string& file(std::size_t input) const { return files_[input].input; }

  // The output shape and format of an input of shape `in` read as `from`; throws input_error.
  plan make_plan(const img::image_shape& in, img::image_format from) const {
    plan p;
    p.in = in;
    p.out = img::chain_shape(in, ops_);
    p.format =
        format_ == image_output::same
            ? from
            : (format_ == image_output::png ? img::image_format::png : img::image_format::pnm);
    if (p.format == img::image_format::pnm) (void)img::pnm_header_text(p.out);  // alpha: refused
    // A result this machine cannot hold (a large upscale of a small file): refused alone, rather
    // than a failed allocation, or the kernel's out-of-memory kill, ending the whole batch. Its
    // encoded bytes, and but from PNM to PNM (made row by row) its samples (16 bits each), are
    // what one image needs at the least.
    const bool rows = from == img::image_format::pnm && p.format == img::image_format::pnm;
    const double need = static_cast<double>(p.out.samples()) *
                        ((p.out.maxval > 255 ? 2.0 : 1.0) + (rows ? 0.0 : 2.0));
    const std::uint64_t ram = detail::physical_memory();
    if (ram > 0 && need > static_cast<double>(ram))
      throw input_error("", "its " + std::to_string(p.out.width) + "x" +
                                std::to_string(p.out.height) + " result needs " +
                                format_size(static_cast<std::uint64_t>(need)) +
                                ", more than this machine's memory");
    return p;
  }

  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    try {
      const img::image_format from = img::sniff_format(data.data(), data.size());
      // The lanes are an OpenMP region already: the bands' region nests inside it (this lane's
      // own setting; other lanes and threads are not touched).
      if (threads_ > 1 && omp_get_max_active_levels() < 2) omp_set_max_active_levels(2);
      if (from == img::image_format::pnm) {
        // The header and plan are checked before the samples, as on a GPU lane (which checks the
        // samples on the device): the same file gets the same reason on either.
        const img::pnm_header h = img::read_pnm_header(data.data(), data.size());
        const plan p = make_plan(h.shape, from);
        const img::raster_view raster{h.shape, data.data() + h.raster_offset,
                                      img::pnm_layout(h.shape)};
        const img::row_progress rows = told_rows(p);
        if (p.format == img::image_format::pnm) {
          // From the file's raster to the output's, row by row: no image of samples between.
          const std::string head = img::pnm_header_text(p.out);
          out.resize(img::pnm_size(p.out));
          std::memcpy(out.data(), head.data(), head.size());
          img::apply(raster, ops_, threads_, out.data() + head.size(), img::pnm_layout(p.out),
                     rows);
          return;
        }
        img::image res = img::apply(raster, ops_, threads_, rows);
        encode(res, p, out, rows);
        return;
      }
      // A PNG (decode_image names the reason for anything else), its rows told as they are
      // decoded too: counted from its header's plan. A plan that fails is made again once the
      // samples are decoded, so that their errors come first, as on a GPU lane.
      if (from != img::image_format::png) (void)img::decode_image(data.data(), data.size());
      const img::image_shape header = img::read_png_shape(data.data(), data.size());
      std::optional<plan> p;
      try {
        p = make_plan(header, from);
      } catch (const input_error&) {
      }
      const img::row_progress rows = p ? told_rows(*p, header.height) : img::row_progress{};
      img::image in = img::decode_png(data.data(), data.size(), rows);
      if (!p) p = make_plan(in.shape, from);
      img::image res = img::apply(in, ops_, threads_, rows);
      img::recycle_samples(std::move(in.samples));
      encode(res, *p, out, rows);
    } catch (const input_error& e) {
      throw input_skipped(file(info.input), e.reason());
    } catch (const std::bad_alloc&) {  // under a memory limit (ulimit -v, cgroups): this one fails
      throw input_skipped(file(info.input), "not enough memory for this image and its result");
    }
  }

  // The chunk's progress (detail::chunk_progress) in rows: a PNG input's as they are decoded
  // (decoded_rows), the chain's output rows, and a PNG output's again as they are compressed
  // (zlib at level 6 takes far longer than the chain).
  static img::row_progress told_rows(const plan& p, std::uint64_t decoded_rows = 0) {
    return detail::chunk_progress::in_parts(
        decoded_rows + std::uint64_t{p.out.height} * (p.format == img::image_format::png ? 2 : 1));
  }

  // res as p's output format, into out; res's samples go back for the thread's next image.
  void encode(img::image& res, const plan& p, std::vector<std::byte>& out,
              const img::row_progress& rows) const {
    if (p.format == img::image_format::png) {
      const std::vector<std::uint8_t> png = img::encode_png(res, level_, rows);
      const auto* b = reinterpret_cast<const std::byte*>(png.data());
      out.assign(b, b + png.size());
    } else {
      out.resize(img::pnm_size(res.shape));  // written once, straight into the output
      img::encode_pnm(res, out.data());
    }
    img::recycle_samples(std::move(res.samples));
  }

  // An empty file produces no chunk.
  void empty_output(std::size_t input, std::vector<std::byte>&) const override {
    throw input_skipped(file(input), "empty file (not a PNM or PNG image)");
  }

  std::unique_ptr<device_transformer> make_device_transformer(int, std::size_t,
                                                              unsigned buffers) const override;

 private:
  std::vector<img::op> ops_;
  image_output format_;
  int level_;
  int threads_;
  int codec_threads_;
  const std::vector<image_file>& files_;
};

// Runs body(k) for every k in `items` on up to `threads` OpenMP threads (the calling thread's own
// team). body keeps the input errors it expects; any other exception is rethrown here, the first
// one met, once every thread has finished.
template <class Body>
void on_team(const std::vector<std::size_t>& items, int threads, Body&& body) {
  host::parallel_for(items.size(), threads, [&](std::size_t i) { body(items[i]); });
}

#if HETPIPE_WITH_CUDA
class image_device final : public device_transformer {
 public:
  static constexpr std::size_t batch = 64;
  static constexpr std::size_t align = 256;

  image_device(const image_op& op, unsigned buffers) : op_(op), bufs_(buffers) {
    for (auto& b : bufs_) {
      b.d_bad = cuda::device_buffer(batch * sizeof(unsigned long long));
      b.h_bad = cuda::pinned_buffer(batch * sizeof(unsigned long long));
    }
  }

  std::size_t max_batch() const override { return batch; }

  // An image for which this lane would allocate more device memory than half of what the device
  // has free now runs on the lane's thread instead: it works there, where the device could run
  // out of memory and fail the job. Other lanes' growth shows in the free memory. The lane grows
  // the workspace (its two images and its scratch: blur's row sums, resize's first pass and taps;
  // image_workspace::growth), the input's samples and the packed output, each as grown_size says.
  // A file that does not parse goes to stage(), which reports it.
  bool prefer_host(const chunk_info&, std::span<const std::byte> data) override {
    std::uint64_t need = 0;
    try {
      img::image_shape s;
      const img::image_format from = img::sniff_format(data.data(), data.size());
      if (from == img::image_format::pnm)
        s = img::read_pnm_header(data.data(), data.size()).shape;
      else if (from == img::image_format::png)
        s = img::read_png_shape(data.data(), data.size());
      else
        return false;
      const img::image_shape out = img::chain_shape(s, op_.ops());
      const auto more = [](const auto& b, std::size_t bytes) {
        return cuda::grown_size(b.size(), bytes) - b.size();
      };
      need = ws_.growth(s, op_.ops()) + more(d_samples_, s.samples() * sizeof(std::uint16_t));
      // The outputs of a batch share a buffer: this one's alone, in whichever buffer it lands.
      const std::size_t out_bytes =
          (out.samples() * img::bytes_per_sample(img::pnm_layout(out)) + align - 1) / align * align;
      std::size_t out_more = 0;
      for (const buf& b : bufs_) out_more = std::max(out_more, more(b.d_out, out_bytes));
      need += out_more;
    } catch (const input_error&) {
      return false;
    }
    return need > cuda::current_device_free_memory() / 2;
  }

  // A PNG is staged decoded (two bytes per sample); anything else as it lies.
  std::size_t staged_bytes(const chunk_info&, std::span<const std::byte> data) override {
    if (img::sniff_format(data.data(), data.size()) != img::image_format::png) return data.size();
    try {
      return img::read_png_shape(data.data(), data.size()).samples() * sizeof(std::uint16_t);
    } catch (const input_error&) {
      return data.size();  // stage() reports it
    }
  }

  // A batch that starts with a PNG holds as many decoded images of its size as the codec team
  // has threads: prepare() and finish() then keep the whole team busy (a batch of one PNG kept
  // one thread of it decoding and encoding while the others waited: 5.3 s for 32 HD PNGs on the
  // H100 machine's 2 GPU lanes, against 0.86 s on its 16 CPU lanes). At most 128 MiB decoded, or
  // one image: each of the lane's buffers grows its pinned staging and device input to the batch
  // (8 HD RGB PNGs decode to 100 MB).
  std::size_t batch_budget(const chunk_info& info, std::span<const std::byte> data) override {
    constexpr std::size_t cap = std::size_t{128} << 20;
    const int team = op_.codec_threads();
    if (team < 2 || img::sniff_format(data.data(), data.size()) != img::image_format::png) return 0;
    const std::size_t one = (staged_bytes(info, data) + align - 1) / align * align;
    return std::min(one * static_cast<std::size_t>(team), std::max(one, cap));
  }

  // The batch's PNGs: shapes from their headers, places in the buffer's one pinned staging
  // buffer (grown here, on the lane's thread, to the batch's total: the engine bounds what a batch
  // stages), then decoded by the team straight into it. A failure is kept for stage().
  void prepare(std::span<const chunk_info> infos, std::span<const std::span<const std::byte>> data,
               unsigned buffer) override {
    buf& b = bufs_[buffer];
    b.prepared.assign(infos.size(), decoded{});
    b.next = 0;
    b.team_items.clear();
    std::size_t total = 0;
    for (std::size_t k = 0; k < infos.size(); ++k) {
      decoded& d = b.prepared[k];
      d.seq = infos[k].seq;
      if (img::sniff_format(data[k].data(), data[k].size()) != img::image_format::png) continue;
      d.png = true;
      try {
        d.shape = img::read_png_shape(data[k].data(), data[k].size());
        d.offset = total;
        total += (d.shape.samples() * sizeof(std::uint16_t) + align - 1) / align * align;
        b.team_items.push_back(k);
      } catch (const input_error& e) {
        d.error = e.reason();
      }
    }
    grow(b.staging, total);
    const img::row_progress stop = detail::chunk_progress::stops();
    on_team(b.team_items, op_.codec_threads(), [&](std::size_t k) {
      decoded& d = b.prepared[k];
      try {
        img::decode_png(data[k].data(), data[k].size(), staged_samples(b, d), d.shape.samples(),
                        stop);
      } catch (const input_error& e) {
        d.error = e.reason();
      }
    });
  }

  std::span<const std::byte> stage(const chunk_info& info, std::span<const std::byte> data,
                                   unsigned buffer) override {
    buf& b = bufs_[buffer];
    if (b.next >= b.prepared.size() || b.prepared[b.next].seq != info.seq)
      throw gpu_error("image: a chunk staged without prepare()");
    const std::size_t k = b.next++;
    const decoded& d = b.prepared[k];
    item it;
    try {
      if (!d.png) {
        // A PNM, or neither (decode_image names the reason, as on a CPU lane).
        if (img::sniff_format(data.data(), data.size()) != img::image_format::pnm)
          (void)img::decode_image(data.data(), data.size());
        const img::pnm_header h = img::read_pnm_header(data.data(), data.size());
        it.p = op_.make_plan(h.shape, img::image_format::pnm);
        it.layout = img::pnm_layout(h.shape);
        it.staged =
            data.subspan(h.raster_offset, h.shape.samples() * img::bytes_per_sample(it.layout));
      } else {
        if (!d.error.empty()) throw input_error("", d.error);
        it.p = op_.make_plan(d.shape, img::image_format::png);
        it.layout = img::sample_layout::u16;
        it.staged = {reinterpret_cast<const std::byte*>(staged_samples(b, d)),
                     d.shape.samples() * sizeof(std::uint16_t)};
      }
    } catch (const input_error& e) {
      throw input_skipped(op_.file(info.input), e.reason());
    }
    b.pending.push_back(it);
    return it.staged;
  }

  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_data, stream_ref stream, unsigned buffer) override {
    buf& b = bufs_[buffer];
    b.launched.swap(b.pending);
    b.pending.clear();
    if (b.launched.size() != infos.size()) throw gpu_error("image: batch does not match its stage");
    std::size_t total = 0;
    for (item& it : b.launched) {
      it.out_layout = it.p.format == img::image_format::pnm ? img::pnm_layout(it.p.out)
                      : it.p.out.maxval > 255               ? img::sample_layout::u16
                                                            : img::sample_layout::u8;
      it.out_offset = total;
      it.out_bytes = it.p.out.samples() * img::bytes_per_sample(it.out_layout);
      total += (it.out_bytes + align - 1) / align * align;
    }
    // Buffer `buffer` is idle (its previous batch was collected): growing it waits for nothing.
    grow(b.d_out, total);
    grow(b.h_out, total);
    auto* bad = static_cast<unsigned long long*>(b.d_bad.get());
    cuda::memset_async(bad, 0xFF, infos.size() * sizeof(unsigned long long), stream.handle);
    for (std::size_t i = 0; i < infos.size(); ++i) {
      const item& it = b.launched[i];
      const std::uint64_t n = it.p.in.samples();
      if (d_samples_.size() < n * 2) {
        cuda::stream_synchronize(stream.handle);  // the lane's previous image may still read it
        grow(d_samples_, n * 2);
      }
      auto* samples = static_cast<std::uint16_t*>(d_samples_.get());
      cuda::unpack_samples(d_data + offsets[i], it.layout, n, it.p.in.maxval, samples, bad + i,
                           stream.handle);
      const cuda::image_result r = ws_.run(samples, it.p.in, op_.ops(), stream.handle);
      cuda::pack_samples(r.d_samples, it.p.out.samples(), it.out_layout,
                         static_cast<std::byte*>(b.d_out.get()) + it.out_offset, stream.handle);
    }
    mark_copy_back(stream);
    cuda::copy_d2h_async(b.h_out.get(), b.d_out.get(), total, stream.handle);
    cuda::copy_d2h_async(b.h_bad.get(), bad, infos.size() * sizeof(unsigned long long),
                         stream.handle);
  }

  // The batch's PNG outputs, encoded by the team; a failure is kept for collect().
  void finish(std::span<const chunk_info> infos, unsigned buffer) override {
    buf& b = bufs_[buffer];
    if (b.launched.size() != infos.size())
      throw gpu_error("image: batch does not match its launch");
    const auto* bad = static_cast<const unsigned long long*>(b.h_bad.get());
    std::vector<std::size_t>& pngs = b.team_items;
    pngs.clear();
    for (std::size_t i = 0; i < infos.size(); ++i) {
      item& it = b.launched[i];
      it.encoded.clear();
      it.error.clear();
      if (it.p.format == img::image_format::png && bad[i] == cuda::no_bad_sample) pngs.push_back(i);
    }
    const img::row_progress stop = detail::chunk_progress::stops();
    on_team(pngs, op_.codec_threads(), [&](std::size_t i) {
      item& it = b.launched[i];
      try {
        it.encoded =
            img::encode_png(it.p.out, static_cast<const std::byte*>(b.h_out.get()) + it.out_offset,
                            it.out_layout, op_.level(), stop);
      } catch (const input_error& e) {
        it.error = e.reason();
      }
    });
  }

  void collect(const chunk_info& info, std::size_t i, unsigned buffer,
               std::vector<std::byte>& out) override {
    buf& b = bufs_[buffer];
    item& it = b.launched[i];
    const unsigned long long bad = static_cast<const unsigned long long*>(b.h_bad.get())[i];
    if (bad != cuda::no_bad_sample)
      throw input_skipped(
          op_.file(info.input),
          img::pnm_bad_sample(it.p.in, cuda::bad_sample_index(bad), cuda::bad_sample_value(bad)));
    const auto* raster = static_cast<const std::byte*>(b.h_out.get()) + it.out_offset;
    try {
      if (it.p.format == img::image_format::pnm) {
        const std::string head = img::pnm_header_text(it.p.out);
        const auto* h = reinterpret_cast<const std::byte*>(head.data());
        out.reserve(head.size() + it.out_bytes);
        out.assign(h, h + head.size());
        out.insert(out.end(), raster, raster + it.out_bytes);
      } else {
        if (!it.error.empty()) throw input_error("", it.error);
        const auto* p = reinterpret_cast<const std::byte*>(it.encoded.data());
        out.assign(p, p + it.encoded.size());
        std::vector<std::uint8_t>().swap(it.encoded);
      }
    } catch (const input_error& e) {
      throw input_skipped(op_.file(info.input), e.reason());
    }
  }

 private:
  struct item {
    plan p;
    img::sample_layout layout = img::sample_layout::u8;  // of the staged raster
    std::span<const std::byte> staged;
    img::sample_layout out_layout = img::sample_layout::u8;
    std::size_t out_offset = 0, out_bytes = 0;
    std::vector<std::uint8_t> encoded;  // PNG output (finish)
    std::string error;                  // why it could not be encoded
  };
  // A chunk as prepare() left it: a PNG's shape, decoded into staging at offset, or why not.
  struct decoded {
    std::uint64_t seq = 0;
    bool png = false;
    img::image_shape shape;
    std::size_t offset = 0;
    std::string error;
  };
  struct buf {
    std::vector<decoded> prepared;        // the batch being staged, in order
    std::size_t next = 0;                 // prepared[next] is the next stage()'s
    std::vector<item> pending, launched;  // staged for the next launch; in flight
    cuda::pinned_buffer staging;          // the batch's decoded PNG samples
    std::vector<std::size_t> team_items;  // what the codec team works on (prepare, finish)
    cuda::device_buffer d_out, d_bad;
    cuda::pinned_buffer h_out, h_bad;
  };
  static std::uint16_t* staged_samples(buf& b, const decoded& d) {
    return reinterpret_cast<std::uint16_t*>(static_cast<std::byte*>(b.staging.get()) + d.offset);
  }
  template <class Buffer>
  static void grow(Buffer& b, std::size_t n) {
    if (b.size() >= n) return;
    const std::size_t size = cuda::grown_size(b.size(), n);  // as prefer_host counts it
    b = Buffer();  // freed first: the two need not fit at once
    b = Buffer(size);
  }

  const image_op& op_;
  std::vector<buf> bufs_;
  cuda::image_workspace ws_;
  cuda::device_buffer d_samples_;
};
#endif

std::unique_ptr<device_transformer> image_op::make_device_transformer(int, std::size_t,
                                                                      unsigned buffers) const {
#if HETPIPE_WITH_CUDA
  return std::make_unique<image_device>(*this, buffers);
#else
  (void)buffers;
  return nullptr;
#endif
}

bool is_image_name(const fs::path& p) {
  const std::string ext = detail::lower_extension(p);
  return ext == ".pgm" || ext == ".ppm" || ext == ".pnm" || ext == ".png";
}

fs::path with_format(fs::path p, image_output format) {
  if (format == image_output::pnm) p.replace_extension(".pnm");
  if (format == image_output::png) p.replace_extension(".png");
  return p;
}

}  // namespace

void check_image_spec(const image_spec& spec) {
  const auto ops = host::img::parse_ops(spec.ops);
  for (const auto& o : ops)
    if (o.kind == host::img::op_kind::blur) (void)host::img::make_blur_kernel(o.sigma);
  if (spec.png_level < 0 || spec.png_level > 9)
    throw usage_error("the PNG compression level must be in 0..9, not " +
                      std::to_string(spec.png_level));
  if (spec.threads_per_image > 4096)
    throw usage_error("--threads-per-image must be at most 4096, not " +
                      std::to_string(spec.threads_per_image));
}

std::vector<image_file> plan_images(const std::vector<std::string>& paths, bool recursive,
                                    const std::string& outdir, image_output format) {
  if (outdir.empty()) throw usage_error("image: no output folder");
  std::vector<image_file> out;
  const fs::path dest(outdir);
  const std::vector<detail::path_stat> stats = detail::stat_all(paths);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    if (p == "-") throw usage_error("image: standard input is not supported; name the files");
    if (stats[i].error) {  // reported with the bad images; the others go on
      out.push_back({p, {}, errno_reason(stats[i].error)});
      continue;
    }
    if (!S_ISDIR(stats[i].st.st_mode)) {
      out.push_back({p, (dest / with_format(fs::path(p).filename(), format)).string()});
      continue;
    }
    if (!recursive) {  // failed alone, as a path that does not exist
      out.push_back({p, {}, "is a directory (-r walks folders)"});
      continue;
    }
    // The output folder inside an input folder is not walked: a second run would take the first
    // one's outputs as inputs (as `cp -r` refuses to copy a folder into itself).
    struct stat dest_st {};
    const bool dest_exists = ::stat(outdir.c_str(), &dest_st) == 0;
    detail::walk(p, {[&](std::string f) {
                       if (!is_image_name(f)) return;
                       const fs::path rel = fs::path(f).lexically_relative(p);
                       out.push_back({std::move(f), (dest / with_format(rel, format)).string()});
                     },
                     [&](const std::string& dir, int err) {
                       out.push_back({dir, {}, errno_reason(err), true});
                     },
                     [&](const std::string& dir) {
                       struct stat st {};
                       return dest_exists && ::stat(dir.c_str(), &st) == 0 &&
                              st.st_dev == dest_st.st_dev && st.st_ino == dest_st.st_ino;
                     }});
  }
  // Two inputs into one output, or an output over an input (its own, or another one, which the
  // commit would replace before it is read): refused before anything runs, the first in order.
  // Two outputs are compared by their folders' canonical paths and their names; the folders are
  // resolved once each (a file's own resolution took 5 stats and 3 readlinks). An output over an
  // input is found by files: the inputs' (stat, links followed) and what each output's commit
  // replaces, the file at its name or, through a link there, the file the link names (io::writer
  // writes through a link to a file; a dangling one it replaces). Both sets are stat'ed on
  // several threads for many files.
  std::vector<std::string> ins, outs;
  ins.reserve(out.size());
  outs.reserve(out.size());
  for (const auto& f : out) {
    ins.push_back(f.input);
    outs.push_back(f.output);
  }
  const std::vector<detail::path_stat> in_st = detail::stat_all(ins);
  const std::vector<detail::path_stat> out_st = detail::stat_all(outs, false);
  std::map<std::pair<dev_t, ino_t>, std::size_t> input_files;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!in_st[i].error && out[i].error.empty())
      input_files.emplace(std::pair{in_st[i].st.st_dev, in_st[i].st.st_ino}, i);
  std::map<std::string, std::size_t> seen;
  std::map<fs::path, fs::path> folders;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].error.empty()) continue;  // no output
    const fs::path o(out[i].output);
    auto [folder, fresh_folder] = folders.try_emplace(o.parent_path());
    if (fresh_folder)
      folder->second =
          fs::weakly_canonical(fs::absolute(o.has_parent_path() ? o.parent_path() : "."));
    const std::string key = (folder->second / o.filename()).string();
    if (auto [at, fresh] = seen.emplace(key, i); !fresh) {
      if (out[at->second].input == out[i].input)
        throw usage_error("image: " + out[i].input + " is given twice");
      throw usage_error("image: " + out[at->second].input + " and " + out[i].input +
                        " would both be written to " + out[i].output);
    }
    if (out_st[i].error) continue;  // a new output
    // What stands at the name already must be a file (or a link to one, written through): a FIFO
    // there would hold the whole batch until a reader came, a folder fail it midway.
    struct stat named = out_st[i].st;
    const bool dangling = S_ISLNK(named.st_mode) && ::stat(out[i].output.c_str(), &named) != 0;
    if (!dangling && !S_ISREG(named.st_mode) && !S_ISLNK(named.st_mode))
      throw usage_error("image: the output " + out[i].output + " exists and is " +
                        (S_ISDIR(named.st_mode) ? "a folder" : "not a regular file") +
                        " (choose another -o folder)");
    if (dangling) continue;  // replaced by the commit
    const auto over = input_files.find({named.st_dev, named.st_ino});
    if (over == input_files.end()) continue;
    if (over->second == i)
      throw usage_error("image: the output " + out[i].output + " is its own input " + out[i].input +
                        " (choose another -o folder)");
    throw usage_error("image: the output " + out[i].output + " of " + out[i].input +
                      " is the input " + out[over->second].input +
                      ", which it would replace before it is read (choose another -o folder)");
  }
  return out;
}

void run_images(const image_spec& spec, const std::vector<image_file>& files, const options& opt,
                job_report* report, const std::string& outdir) {
  check_image_spec(spec);
  // The options as given, before any work: a chunk size out of range (4K..1G) would otherwise
  // only be replaced, every image larger than it going to the second job.
  (void)resolve(opt);
  // Files that cannot be read are reported like bad images. One image is one chunk: the chunk is
  // sized to the largest file it holds, at most max_chunk_size (or the --chunk-size given). Larger
  // files (a 16384^2 RGB image of 16-bit samples is 1.5 GiB) run after the others, in a job of
  // their own on CPU lanes (below).
  std::vector<skipped_input> early;
  std::vector<std::size_t> normal, large;  // indices into files
  std::uint64_t largest_normal = 0, largest_large = 0;
  const std::uint64_t cap = opt.chunk_size ? opt.chunk_size : max_chunk_size;
  // stat before open (on several threads for many files): opening a FIFO would wait for a writer.
  std::vector<std::string> paths;
  paths.reserve(files.size());
  for (const auto& f : files) paths.push_back(f.input);
  const std::vector<detail::path_stat> stats = detail::stat_all(paths);
  // Each regular file opened once, to see that it can be (on several threads for many files).
  std::vector<int> open_error(files.size(), 0);
  host::parallel_for(files.size(), detail::path_threads(files.size()), [&](std::size_t i) {
    if (stats[i].error || !S_ISREG(stats[i].st.st_mode) || !files[i].error.empty()) return;
    const int fd = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      open_error[i] = errno;
    else
      ::close(fd);
  });
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& f = files[i].input;
    const struct stat& st = stats[i].st;
    if (!files[i].error.empty()) {  // plan_images found it unreadable
      early.push_back({i, f, files[i].error});
      continue;
    }
    if (stats[i].error) {
      early.push_back({i, f, errno_reason(stats[i].error)});
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      early.push_back({i, f, "not a regular file"});
      continue;
    }
    if (open_error[i]) {
      early.push_back({i, f, errno_reason(open_error[i])});
      continue;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > cap) {
      large.push_back(i);
      largest_large = std::max(largest_large, size);
    } else {
      normal.push_back(i);
      largest_normal = std::max(largest_normal, size);
    }
  }
  if (!large.empty() || !normal.empty()) {
    // Folders only now: a job refused (--device gpu without a GPU) creates none.
    if (opt.device == device_mode::gpu && gpu_count() == 0) detail::throw_no_gpu();
    // The -o folder first: when it cannot be made, no image can be written, and the batch fails
    // with one line. A folder below it that cannot be made (a file stands at its name) fails its
    // own images alone.
    // Each output folder once: why its images cannot be written there ("" once made, and
    // something can be created in it: a read-only, immutable or another user's folder would let
    // each image be filtered, then fail on its own line).
    std::map<fs::path, std::string> made;
    const auto make = [&](const fs::path& folder) -> const std::string& {
      auto [at, fresh] = made.try_emplace(folder);
      if (fresh && !folder.empty()) {
        std::error_code ec;
        fs::create_directories(folder, ec);
        if (ec)
          at->second =
              "cannot create the folder " + folder.string() + ": " + errno_reason(ec.value());
        else if (::access(folder.c_str(), W_OK | X_OK) != 0)
          at->second = "cannot create files in " + folder.string() + ": " + errno_reason(errno);
      }
      return at->second;
    };
    if (!outdir.empty()) {
      std::error_code ec;
      fs::create_directories(outdir, ec);
      if (ec) throw io_error(outdir, errno_reason(ec.value()), -ec.value());
    }
    std::error_code ec_ignored;
    std::size_t in_outdir = 0, planned = 0;  // images whose folder is -o itself, and all
    for (std::vector<std::size_t>* set : {&normal, &large})
      std::erase_if(*set, [&](std::size_t i) {
        ++planned;
        const fs::path parent = fs::path(files[i].output).parent_path();
        const std::string& why = make(parent);
        if (why.empty()) return false;
        in_outdir += !outdir.empty() && fs::equivalent(parent, outdir, ec_ignored);
        early.push_back({i, files[i].input, why});
        return true;
      });
    // Every image bound for -o, where nothing can be created: one line for the batch.
    if (planned > 0 && in_outdir == planned && ::access(outdir.c_str(), W_OK | X_OK) != 0)
      throw io_error(outdir, "cannot create files in it: " + errno_reason(errno), -errno);
  }
  // Auto mode leaves the GPU lanes down when PNGs, read or written, are at least one image in
  // eight: decoding and encoding them (zlib) is CPU work on any lane, and most of such a job. HD
  // RGB images, gray,blur:sigma=2,sobel on one lane of the 2-core box: 3 ms an image from PPM to
  // PGM, 35 ms from PNG (the decoder's), 170 ms to PNG at level 6. A GPU lane's codec team takes
  // its threads from the CPU lanes: on the H200 box 96 HD PNGs took 2.38 s in cpu mode, 3.18 s in
  // auto mode (ninth session). --device gpu still runs them there, and so does auto mode told to
  // start its GPU lanes at once (auto_gpu_min_remaining 0).
  const auto png = [](const std::string& name) { return detail::lower_extension(name) == ".png"; };
  std::size_t pngs = 0;
  for (const std::size_t i : normal)
    pngs += spec.format == image_output::png || png(files[i].input) || png(files[i].output);
  const bool png_bound = opt.device == device_mode::automatic && opt.auto_gpu_min_remaining > 0 &&
                         pngs > 0 && pngs * 8 >= normal.size() && gpu_count_estimate() > 0;
  if (png_bound && opt.verbose > 0)
    std::fprintf(stderr,
                 "hetpipe: auto mode: %zu of %zu images are PNGs, read or written: their coding is "
                 "CPU work, so no GPU lanes\n",
                 pngs, normal.size());
  const auto chunk_for = [](std::uint64_t largest) {
    constexpr std::uint64_t page = 4096;
    return static_cast<std::size_t>(std::max(page, (largest + page - 1) / page * page));
  };
  job_report rep;    // both jobs': the first's, then the second's added
  bool ran = false;  // a job ran
  // Both jobs in one trace: opened before either writes anything, written once both succeeded
  // (a failed job leaves an old file as it was); the second job's rows are named "large: ...".
  std::optional<detail::tracer> both;
  if (!opt.trace_path.empty() && !normal.empty() && !large.empty()) {
    both.emplace(true);
    std::vector<std::string> ins, outs;
    for (const auto& f : files) {
      ins.push_back(f.input);
      outs.push_back(f.output);
    }
    both->open(opt.trace_path, ins, outs);
  }
  // Runs the chain over files[set[k]] with options o (resolved), image threads per image and
  // codec threads per GPU lane's team; adds the job's figures and skipped files to `rep`.
  const auto run_set = [&](const std::vector<std::size_t>& set, options o, bool slots_given,
                           int per_image, int codec, const char* prefix) {
    if (both) o.trace_path.clear();
    std::vector<image_file> run_files;
    std::vector<input> inputs;
    std::vector<std::string> outputs;
    for (const std::size_t i : set) {
      run_files.push_back(files[i]);
      inputs.push_back({files[i].input, 0, std::nullopt});
      outputs.push_back(files[i].output);
    }
    const image_op op(spec, run_files, per_image, codec);
    job_report r;
    detail::run_transform(op, inputs, outputs, o, slots_given, &r, both ? &*both : nullptr, prefix);
    std::vector<skipped_input> skipped = std::move(r.skipped);
    for (auto& sk : skipped) sk.input = set[sk.input];
    if (!ran) {
      rep = std::move(r);
      rep.skipped.clear();
    } else {
      rep.bytes += r.bytes;
      rep.chunks += r.chunks;
      rep.seconds += r.seconds;
      rep.setup_seconds += r.setup_seconds;
      rep.setup_gpu_seconds += r.setup_gpu_seconds;
      rep.gpu_projected_seconds = std::max(rep.gpu_projected_seconds, r.gpu_projected_seconds);
      rep.setup_pool_seconds += r.setup_pool_seconds;
      rep.reader_cpu_seconds += r.reader_cpu_seconds;
      rep.cpu_lanes = std::max(rep.cpu_lanes, r.cpu_lanes);
      rep.slots_pinned += r.slots_pinned;
      rep.slots_pin_refused += r.slots_pin_refused;
      rep.lanes.insert(rep.lanes.end(), r.lanes.begin(), r.lanes.end());
    }
    rep.skipped.insert(rep.skipped.end(), skipped.begin(), skipped.end());
    ran = true;
  };
  if (!normal.empty()) {
    options o = opt;
    if (png_bound) o.device = device_mode::cpu;
    // Image chains are compute, not reads: every CPU lane goes on beside the GPU lanes unless the
    // caller said otherwise (H200 box, 2026-11-29, auto mode, one run each: 32 8192^2 PGMs 0.599 s
    // with half the lanes stopping, 0.463 s with all 16 on (cpu mode 0.531 s); 1000 HD PPMs 0.772
    // against 0.759 s). Read-bound jobs keep resolve()'s half.
    if (o.cpu_threads_beside_gpu == 0 && o.cpu_threads == 0)
      o.cpu_threads_beside_gpu = std::max(1u, std::thread::hardware_concurrency());
    if (o.chunk_size == 0) o.chunk_size = chunk_for(largest_normal);
    // The slots are the engine's to choose (engine::run: large chunks, within 1 GiB).
    // Fewer images than CPU lanes (one huge image, say): each image's rows are split among the
    // idle lanes' share of threads. spec.threads_per_image: that many threads an image (at most
    // the CPU threads), on fewer lanes; beside GPU lanes at least one such lane goes on.
    options r = resolve(o);
    const unsigned team = o.device == device_mode::gpu || spec.threads_per_image == 0
                              ? 0
                              : std::min(spec.threads_per_image, r.cpu_threads);
    if (team > 1) {
      r.cpu_threads = std::max(1u, r.cpu_threads / team);
      r.cpu_threads_beside_gpu = std::max(1u, r.cpu_threads_beside_gpu / team);
    }
    const std::size_t lanes = o.device == device_mode::gpu ? 0 : r.cpu_threads;
    const int per_image =
        team > 0 ? static_cast<int>(team)
                 : (normal.size() < lanes ? static_cast<int>(lanes / normal.size()) : 1);
    // A GPU lane's PNG codec team: the threads no CPU lane uses once the GPU lanes run, shared
    // among the GPU lanes (with --device gpu, --cpu-threads when given bounds the threads, as it
    // does CPU lanes').
    const unsigned threads = o.device == device_mode::gpu && o.cpu_threads
                                 ? o.cpu_threads
                                 : std::max(1u, std::thread::hardware_concurrency());
    const unsigned gpu_lanes = o.device == device_mode::cpu
                                   ? 0
                                   : r.gpu_lanes * static_cast<unsigned>(gpu_count_estimate());
    const unsigned beside =  // threads
        lanes ? r.cpu_threads_beside_gpu * std::max(1u, team) : 0;
    const int codec =
        gpu_lanes
            ? static_cast<int>(std::max(1u, (threads - std::min(threads, beside)) / gpu_lanes))
            : 1;
    run_set(normal, r, opt.slots != 0, per_image, codec, "");
  }
  if (!large.empty()) {
    // Images larger than a chunk: one at a time, each mapped whole (or read, as --reads says) by
    // one CPU lane and its rows split among all the CPU threads, in every device mode. A GPU lane
    // would page-lock slots of the image's size first (about 0.5 s per GiB), and its device
    // memory could not hold the chain of such an image on many cards. Two slots, which a CPU-only
    // job with --reads map leaves untouched.
    options o = opt;
    o.device = device_mode::cpu;
    o.chunk_size = max_chunk_size;  // resolve() checks the chunk size a user may give
    o.slots = 2;
    options r = resolve(o);
    r.chunk_size = chunk_for(largest_large);
    const int threads = static_cast<int>(r.cpu_threads);
    r.cpu_threads = r.cpu_threads_beside_gpu = 1;
    run_set(large, r, true, threads, 1, "large: ");
  }
  if (both) both->write();
  if (!ran) rep.resolved = resolve(opt);
  rep.skipped.insert(rep.skipped.end(), early.begin(), early.end());
  std::sort(rep.skipped.begin(), rep.skipped.end(),
            [](const auto& a, const auto& b) { return a.input < b.input; });
  if (report) {
    *report = std::move(rep);
  } else if (!rep.skipped.empty()) {
    throw input_error(rep.skipped.front().file, rep.skipped.front().reason);
  }
}

}  // namespace hetpipe

// The do-nothing operator behind `hetpipe bench read` (every operator is measured against it) and
// the copy behind `hetpipe bench copy` (what a transform's output path allows); the public
// wrappers of io's signal handlers and small-input reads.
#include <mutex>

#include <hetpipe/error.hpp>
#include <hetpipe/pipeline.hpp>

#include "io/small_read.hpp"
#include "io/writer.hpp"

namespace hetpipe {

namespace {

struct byte_count final : partial {
  std::uint64_t bytes = 0;
};

class nop_op final : public reduce_op {
 public:
  framing frame(std::size_t) const override { return framing::records(1); }
  std::unique_ptr<partial> identity(std::size_t) const override {
    return std::make_unique<byte_count>();
  }
  std::unique_ptr<partial> host(const chunk_info& info, std::span<const std::byte>) const override {
    auto p = std::make_unique<byte_count>();
    p->bytes = info.size;
    return p;
  }
  void merge(partial& total, partial& next) const override {
    static_cast<byte_count&>(total).bytes += static_cast<byte_count&>(next).bytes;
  }
};

class copy_op final : public transform_op {
 public:
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info&, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    out.assign(data.begin(), data.end());
  }
};

options cpu_lanes_only(const options& opt, const char* what) {
  if (opt.device == device_mode::gpu)
    throw usage_error(std::string(what) + ": use --device cpu or auto");
  options o = opt;
  o.device = device_mode::cpu;
  return o;
}

}  // namespace

std::uint64_t copy_only(const std::vector<input>& inputs, const std::vector<std::string>& outputs,
                        const options& opt, job_report* report) {
  job_report rep;
  run(copy_op(), inputs, outputs,
      cpu_lanes_only(opt, "bench copy measures reading and writing alone"), &rep);
  if (report) *report = rep;
  return rep.bytes;
}

std::uint64_t read_only(const std::vector<input>& inputs, const options& opt, job_report* report) {
  options o = cpu_lanes_only(opt, "bench read measures reading alone");
  // The ceiling moves every byte into a lane's cache: lanes that mapped their chunks and did
  // nothing with them would touch no byte at all.
  if (o.reads == read_mode::map) o.reads = read_mode::lane;
  nop_op op;
  std::uint64_t total = 0;
  for (auto& p : run(op, inputs, o, report)) total += static_cast<byte_count&>(*p).bytes;
  return total;
}

void install_signal_handlers(std::atomic<bool>* flag, unsigned grace, const char* words) {
  io::install_signal_handlers(flag, grace, words);
}

int interrupting_signal() noexcept {
  return io::interrupting_signal();
}

std::string read_input(const std::string& path, const std::atomic<bool>* cancel,
                       std::size_t limit) {
  return io::read_small_file(path, cancel, limit);
}

void read_lines(const std::string& path, const std::atomic<bool>* cancel,
                const std::function<void(std::string&)>& on_line) {
  io::for_each_line(path, cancel, on_line);
}

struct output_file::impl {
  explicit impl(const std::string& path) : w(path, 2) {
    w.recycle([this](std::vector<std::byte>&& v) {
      std::lock_guard lock(mutex);
      if (spare.size() < 2) spare.push_back(std::move(v));
    });
  }
  // Declared before the writer, which may still hand a piece back while it is destroyed.
  std::mutex mutex;
  std::vector<std::vector<std::byte>> spare;  // written pieces' memory, from the writer's thread
  io::writer w;
  std::uint64_t next = 0;
};

output_file::output_file(const std::string& path) : impl_(std::make_unique<impl>(path)) {}
std::vector<std::byte> output_file::spare() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->spare.empty()) return {};
  std::vector<std::byte> v = std::move(impl_->spare.back());
  impl_->spare.pop_back();
  return v;
}
output_file::~output_file() = default;  // the writer, uncommitted, removes its temporary file
void output_file::write(std::vector<std::byte> bytes) {
  impl_->w.write(impl_->next++, std::move(bytes));
}
void output_file::commit() {
  impl_->w.commit();
}

}  // namespace hetpipe

// GPU lanes without a GPU: the engine's lane code against the fake CUDA runtime
// (support/fake_cuda.hpp), with operators whose "kernels" are host functions queued on the lane's
// stream. What it proves: every chunk is copied from its pinned slot before the slot is reused,
// computed once and collected from the right buffer; small chunks batch; staged (grown) chunks,
// host-preferred and skipped chunks keep the output in order; every failure (launch, kernel
// fault, collect, device memory, cancellation) ends the job with its error, no output file and no
// leaked memory; CPU lanes beside slow GPU lanes take their share; the trace shows copy, kernel and
// copy back in order. It cannot prove a real kernel right: the [gpu] tests do that on a device.
#define CATCH_CONFIG_EXTERNAL_INTERFACES  // TestEventListenerBase, for the hang watchdog
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include <hetpipe/hetpipe.hpp>

#include "cuda/runtime.hpp"
#include "pipeline/src/engine.hpp"
#include "support/fake_cuda.hpp"
#include "support/images.hpp"
#include "support/matchers.hpp"
#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
namespace fc = hetpipe::fake_cuda;

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser: a byte's position, scrambled
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// "f3" (GCC 12 warns falsely about "f" + std::to_string(i)).
std::string numbered(const char* prefix, std::size_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// ---- A reduction: position-weighted byte sums. A byte missed, repeated, misplaced or read from a
// reused slot changes the result; merges check that chunks arrive in input order.

struct raw_sums {
  std::uint64_t sum = 0, weighted = 0, bytes = 0;
};

raw_sums sum_bytes(std::uint64_t offset, const std::uint8_t* p, std::size_t n) {
  raw_sums r;
  for (std::size_t i = 0; i < n; ++i) {
    r.sum += p[i];
    r.weighted += (p[i] + 1u) * mix(offset + i);
  }
  r.bytes = n;
  return r;
}

struct sums final : partial {
  raw_sums s;
  std::uint64_t first = 0;  // offset of the chunk (of the first merged chunk)
  std::uint64_t end = 0;    // offset after the last merged chunk
  bool in_order = true;
};

struct hooks {
  // Called in every device kernel and host call, with the chunk (failure injection, delays).
  std::function<void(const chunk_info&)> kernel, host;
  // Called on the lane's thread with a batch's first chunk, once it is queued and when it is
  // collected.
  std::function<void(const chunk_info&)> launched, collected;
  // Called as each GPU lane's reducer is made (a slow or failing device set-up).
  std::function<void()> make;
  std::optional<std::uint64_t> fail_launch_seq, fail_collect_seq;
};

class sums_op;

class sums_device final : public device_reducer {
 public:
  sums_device(const sums_op& op, std::size_t batch, unsigned buffers);
  std::size_t max_batch() const override { return batch_; }
  void launch(const chunk_info& info, const std::byte* d_data, stream_ref stream,
              unsigned buffer) override {
    const std::size_t zero = 0;
    launch_batch({&info, 1}, {&zero, 1}, d_data, stream, buffer);
  }
  void launch_batch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                    const std::byte* d_data, stream_ref stream, unsigned buffer) override;
  std::unique_ptr<partial> collect(const chunk_info&, unsigned) override {
    throw std::logic_error("collect_batch is used");
  }
  void collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                     std::vector<std::unique_ptr<partial>>& out) override;

 private:
  const sums_op& op_;
  std::size_t batch_;
  std::vector<cuda::device_buffer> d_res_;
  std::vector<cuda::pinned_buffer> h_res_;
};

class sums_op final : public reduce_op {
 public:
  std::size_t batch = 1;
  hooks on;
  mutable std::atomic<std::uint64_t> device_chunks{0}, host_chunks{0};

  framing frame(std::size_t) const override { return framing::records(1); }
  std::unique_ptr<partial> identity(std::size_t) const override { return std::make_unique<sums>(); }
  std::unique_ptr<partial> host(const chunk_info& info,
                                std::span<const std::byte> data) const override {
    if (on.host) on.host(info);
    auto p = std::make_unique<sums>();
    p->s = sum_bytes(info.offset, reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
    p->first = info.offset;
    p->end = info.offset + data.size();
    host_chunks++;
    return p;
  }
  void merge(partial& total, partial& next) const override {
    auto& t = static_cast<sums&>(total);
    auto& n = static_cast<sums&>(next);
    t.in_order = t.in_order && n.in_order && t.end == n.first;
    t.end = n.end;
    t.s.sum += n.s.sum;
    t.s.weighted += n.s.weighted;
    t.s.bytes += n.s.bytes;
  }
  std::unique_ptr<device_reducer> make_device_reducer(int, std::size_t,
                                                      unsigned buffers) const override {
    if (on.make) on.make();
    return std::make_unique<sums_device>(*this, batch, buffers);
  }
};

sums_device::sums_device(const sums_op& op, std::size_t batch, unsigned buffers)
    : op_(op), batch_(batch) {
  for (unsigned b = 0; b < buffers; ++b) {
    d_res_.emplace_back(batch * sizeof(raw_sums));
    h_res_.emplace_back(batch * sizeof(raw_sums));
  }
}

void sums_device::launch_batch(std::span<const chunk_info> infos,
                               std::span<const std::size_t> offsets, const std::byte* d_data,
                               stream_ref stream, unsigned buffer) {
  // (No Catch assertions here: lanes run on their own threads, and Catch's are not thread-safe.)
  if (infos.size() > batch_) throw std::logic_error("a batch larger than max_batch()");
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (op_.on.fail_launch_seq == infos[i].seq) throw gpu_error("launch refused (test)");
    const auto* p = reinterpret_cast<const std::uint8_t*>(d_data + offsets[i]);
    auto* out = static_cast<raw_sums*>(d_res_[buffer].get()) + i;
    fc::launch(stream.handle, [this, p, out, info = infos[i]] {
      fc::check_device(p, info.size);
      fc::check_device(out, sizeof *out);
      if (op_.on.kernel) op_.on.kernel(info);
      *out = sum_bytes(info.offset, p, info.size);
    });
  }
  mark_copy_back(stream);
  cuda::copy_d2h_async(h_res_[buffer].get(), d_res_[buffer].get(), infos.size() * sizeof(raw_sums),
                       stream.handle);
  if (op_.on.launched) op_.on.launched(infos.front());
}

void sums_device::collect_batch(std::span<const chunk_info> infos, unsigned buffer,
                                std::vector<std::unique_ptr<partial>>& out) {
  if (op_.on.collected && !infos.empty()) op_.on.collected(infos.front());
  const auto* r = static_cast<const raw_sums*>(h_res_[buffer].get());
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (op_.on.fail_collect_seq == infos[i].seq) throw std::runtime_error("collect failed (test)");
    auto p = std::make_unique<sums>();
    p->s = r[i];
    p->first = infos[i].offset;
    p->end = infos[i].offset + infos[i].size;
    out.push_back(std::move(p));
    op_.device_chunks++;
  }
}

// ---- A transform: each byte XOR its scrambled position, then the chunk's index as 8 bytes
// (order-sensitive and size-changing). On the device, every third chunk is staged "encoded" at
// twice its size in the transformer's pinned memory (a decoded image is larger than its file):
// the lane's device buffer must grow. Chunks may be sent to the host, and inputs refused.

void xor_chunk(const chunk_info& info, const std::uint8_t* in, std::uint8_t* out) {
  for (std::size_t i = 0; i < info.size; ++i)
    out[i] = static_cast<std::uint8_t>(in[i] ^ mix(info.offset + i));
  std::memcpy(out + info.size, &info.index, 8);
}

class xor_op;

class xor_device final : public device_transformer {
 public:
  xor_device(const xor_op& op, unsigned buffers)
      : op_(op),
        staging_(buffers),
        expanded_(buffers),
        fresh_(buffers, true),
        out_(buffers),
        d_out_(buffers),
        h_out_(buffers),
        prepared_(buffers),
        next_(buffers),
        finished_(buffers) {}
  std::size_t max_batch() const override;
  bool prefer_host(const chunk_info& info, std::span<const std::byte>) override;
  std::size_t staged_bytes(const chunk_info& info, std::span<const std::byte> data) override;
  std::size_t batch_budget(const chunk_info&, std::span<const std::byte>) override;
  void prepare(std::span<const chunk_info> infos, std::span<const std::span<const std::byte>> data,
               unsigned buffer) override;
  void finish(std::span<const chunk_info> infos, unsigned buffer) override;
  std::span<const std::byte> stage(const chunk_info& info, std::span<const std::byte> data,
                                   unsigned buffer) override;
  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_data, stream_ref stream, unsigned buffer) override;
  void collect(const chunk_info& info, std::size_t i, unsigned buffer,
               std::vector<std::byte>& out) override;

 private:
  const xor_op& op_;
  std::vector<std::vector<cuda::pinned_buffer>> staging_;  // per buffer: this batch's staged
  std::vector<std::set<std::uint64_t>> expanded_;          // per buffer: seqs staged encoded
  std::vector<bool> fresh_;                                // per buffer: launched since staging
  std::vector<std::vector<std::size_t>> out_;              // per buffer: output offsets
  std::vector<cuda::device_buffer> d_out_;
  std::vector<cuda::pinned_buffer> h_out_;
  // The protocol around a batch: prepare() sees the chunks stage() then sees, in order and with
  // the same bytes; finish() comes once before the batch's collect() calls.
  std::vector<std::vector<std::pair<std::uint64_t, const std::byte*>>> prepared_;
  std::vector<std::size_t> next_;
  std::vector<std::vector<std::uint64_t>> finished_;  // the seqs finish() saw, until launch()
};

class xor_op final : public transform_op {
 public:
  std::size_t batch = 1;
  bool expand = true;        // every third chunk staged encoded at twice its size
  bool host_seventh = true;  // every seventh chunk preferred on the host
  std::set<std::size_t> skip_at_stage, skip_at_collect;  // inputs refused (on the host too)
  hooks on;
  mutable std::atomic<std::uint64_t> device_chunks{0}, host_chunks{0}, prepared{0}, finished{0};
  // Device chunks whose output vector came with room for the output (memory of a written one).
  mutable std::atomic<std::uint64_t> device_reused{0};
  mutable std::atomic<std::uint64_t> refused_at_stage{0};  // by a GPU lane's stage()
  std::size_t staged_hint = 0;  // staged_bytes() of every chunk, when not 0
  std::size_t budget = 0;       // batch_budget() of every chunk
  mutable std::atomic<std::size_t> largest_batch{0};

  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    if (on.host) on.host(info);
    if (skip_at_stage.count(info.input) || skip_at_collect.count(info.input))
      throw input_skipped(numbered("input ", info.input), "refused (test)");
    out.resize(data.size() + 8);
    xor_chunk(info, reinterpret_cast<const std::uint8_t*>(data.data()),
              reinterpret_cast<std::uint8_t*>(out.data()));
    host_chunks++;
  }
  std::unique_ptr<device_transformer> make_device_transformer(int, std::size_t,
                                                              unsigned buffers) const override {
    return std::make_unique<xor_device>(*this, buffers);
  }
};

std::size_t xor_device::max_batch() const {
  return op_.batch;
}

bool xor_device::prefer_host(const chunk_info& info, std::span<const std::byte>) {
  return op_.host_seventh && info.seq % 7 == 3;
}

std::size_t xor_device::staged_bytes(const chunk_info&, std::span<const std::byte> data) {
  return op_.staged_hint ? op_.staged_hint : data.size();
}

std::size_t xor_device::batch_budget(const chunk_info&, std::span<const std::byte>) {
  return op_.budget;
}

void xor_device::prepare(std::span<const chunk_info> infos,
                         std::span<const std::span<const std::byte>> data, unsigned buffer) {
  if (infos.empty() || infos.size() != data.size() || infos.size() > op_.batch)
    throw std::logic_error("prepare(): a batch of " + std::to_string(infos.size()));
  if (next_[buffer] != prepared_[buffer].size())
    throw std::logic_error("prepare() before the last batch was staged");
  prepared_[buffer].clear();
  next_[buffer] = 0;
  for (std::size_t k = 0; k < infos.size(); ++k) {
    if (op_.host_seventh && infos[k].seq % 7 == 3)
      throw std::logic_error("prepare() of a chunk run on the host");
    if (data[k].size() != infos[k].size) throw std::logic_error("prepare(): wrong size");
    prepared_[buffer].emplace_back(infos[k].seq, data[k].data());
  }
  op_.prepared += infos.size();
}

void xor_device::finish(std::span<const chunk_info> infos, unsigned buffer) {
  if (!finished_[buffer].empty()) throw std::logic_error("finish() twice for one batch");
  for (const auto& info : infos) finished_[buffer].push_back(info.seq);
  op_.finished += infos.size();
}

std::span<const std::byte> xor_device::stage(const chunk_info& info,
                                             std::span<const std::byte> data, unsigned buffer) {
  const std::size_t k = next_[buffer]++;
  if (k >= prepared_[buffer].size() ||
      prepared_[buffer][k] != std::make_pair(info.seq, data.data()))
    throw std::logic_error("stage() of a chunk prepare() did not see, or out of its order");
  if (fresh_[buffer]) {  // the previous batch on this buffer was copied long ago
    staging_[buffer].clear();
    expanded_[buffer].clear();
    fresh_[buffer] = false;
  }
  if (op_.skip_at_stage.count(info.input)) {
    ++op_.refused_at_stage;
    throw input_skipped(numbered("input ", info.input), "refused (test)");
  }
  if (!op_.expand || info.seq % 3 != 1) return data;
  cuda::pinned_buffer& s = staging_[buffer].emplace_back(2 * data.size() + 1);
  auto* p = static_cast<std::uint8_t*>(s.get());
  for (std::size_t i = 0; i < data.size(); ++i) {
    p[2 * i] = static_cast<std::uint8_t>(data[i]) ^ 0x5A;
    p[2 * i + 1] = static_cast<std::uint8_t>(~static_cast<std::uint8_t>(data[i]));
  }
  expanded_[buffer].insert(info.seq);
  return {static_cast<const std::byte*>(s.get()), 2 * data.size()};
}

void xor_device::launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
                        const std::byte* d_data, stream_ref stream, unsigned buffer) {
  if (infos.size() > op_.batch) throw std::logic_error("a batch larger than max_batch()");
  for (std::size_t m = op_.largest_batch; m < infos.size();)
    if (op_.largest_batch.compare_exchange_weak(m, infos.size())) break;
  if (next_[buffer] != prepared_[buffer].size())
    throw std::logic_error("launch() before every prepared chunk was staged");
  fresh_[buffer] = true;
  finished_[buffer].clear();
  std::vector<std::size_t>& out = out_[buffer];
  out.clear();
  std::size_t total = 0;
  for (const auto& info : infos) {
    if (op_.on.fail_launch_seq == info.seq) throw gpu_error("launch refused (test)");
    out.push_back(total);
    total += info.size + 8;
  }
  if (d_out_[buffer].size() < total) {  // grows rarely; cudaFree synchronises
    d_out_[buffer] = cuda::device_buffer(total);
    h_out_[buffer] = cuda::pinned_buffer(total);
  }
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const bool encoded = expanded_[buffer].count(infos[i].seq) > 0;
    const auto* src = reinterpret_cast<const std::uint8_t*>(d_data + offsets[i]);
    auto* dst = static_cast<std::uint8_t*>(d_out_[buffer].get()) + out[i];
    fc::launch(stream.handle, [this, src, dst, encoded, info = infos[i]] {
      fc::check_device(src, encoded ? 2 * info.size : info.size);
      fc::check_device(dst, info.size + 8);
      if (op_.on.kernel) op_.on.kernel(info);
      std::vector<std::uint8_t> plain;
      const std::uint8_t* in = src;
      if (encoded) {
        plain.resize(info.size);
        for (std::size_t j = 0; j < info.size; ++j) {
          plain[j] = src[2 * j] ^ 0x5A;
          if (src[2 * j + 1] != static_cast<std::uint8_t>(~plain[j]))
            throw std::logic_error("staged bytes damaged before the kernel ran");
        }
        in = plain.data();
      }
      xor_chunk(info, in, dst);
    });
  }
  mark_copy_back(stream);
  cuda::copy_d2h_async(h_out_[buffer].get(), d_out_[buffer].get(), total, stream.handle);
}

void xor_device::collect(const chunk_info& info, std::size_t i, unsigned buffer,
                         std::vector<std::byte>& out) {
  if (i >= finished_[buffer].size() || finished_[buffer][i] != info.seq)
    throw std::logic_error("collect() of a chunk finish() did not see");
  if (op_.on.fail_collect_seq == info.seq) throw std::runtime_error("collect failed (test)");
  if (op_.skip_at_collect.count(info.input))
    throw input_skipped(numbered("input ", info.input), "refused (test)");
  const auto* p = static_cast<const std::byte*>(h_out_[buffer].get()) + out_[buffer][i];
  if (out.capacity() >= info.size + 8) op_.device_reused++;
  out.assign(p, p + info.size + 8);
  op_.device_chunks++;
}

// Where two byte strings first differ (the shorter one's size when one is a prefix), or -1; cheaper
// to report than the bytes themselves.
long first_difference(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  const auto d = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (d.first == a.end() && d.second == b.end()) return -1;
  return static_cast<long>(d.first - a.begin());
}

std::vector<std::uint8_t> expected_xor(const std::vector<std::uint8_t>& in, std::size_t chunk) {
  std::vector<std::uint8_t> out;
  for (std::size_t off = 0, k = 0; off < in.size(); off += chunk, ++k) {
    chunk_info info;
    info.index = k;
    info.offset = off;
    info.size = std::min(chunk, in.size() - off);
    const std::size_t at = out.size();
    out.resize(at + info.size + 8);
    xor_chunk(info, in.data() + off, out.data() + at);
  }
  return out;
}

// Files f0, f1, ... of random bytes of the given sizes in dir: the inputs and their sums.
struct summed_inputs {
  std::vector<input> inputs;
  std::vector<raw_sums> want;
};
summed_inputs write_inputs(const test::temp_dir& dir, const std::vector<std::size_t>& sizes,
                           std::uint64_t seed) {
  summed_inputs r;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto bytes = test::random_bytes(sizes[i], seed + i);
    test::write_bytes(dir.file(numbered("f", i)), bytes);
    r.inputs.push_back({dir.file(numbered("f", i))});
    r.want.push_back(sum_bytes(0, bytes.data(), bytes.size()));
  }
  return r;
}

// Each input's merged sums, in order, equal to the ones computed from its bytes.
void check_sums(const std::vector<std::unique_ptr<partial>>& got,
                const std::vector<raw_sums>& want) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& s = static_cast<const sums&>(*got[i]);
    CHECK(s.in_order);
    CHECK(s.s.bytes == want[i].bytes);
    CHECK(s.s.sum == want[i].sum);
    CHECK(s.s.weighted == want[i].weighted);
  }
}

options lane_options(device_mode m, std::size_t chunk, unsigned slots, unsigned lanes,
                     unsigned buffers, unsigned cpu_threads = 2) {
  options o;
  o.device = m;
  o.chunk_size = chunk;
  o.slots = slots;
  o.gpu_lanes = lanes;
  o.gpu_buffers = buffers;
  o.cpu_threads = cpu_threads;
  o.auto_gpu_min_remaining = 0;  // auto mode: GPU lanes however short the job
  return o;
}

std::set<std::string> names_in(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.insert(e.path().filename().string());
  return out;
}

// After every job: no memory error, nothing left allocated, every H2D copy from pinned memory.
void check_device_clean() {
  const auto v = fc::violations();
  for (const auto& s : v) UNSCOPED_INFO("violation: " << s);
  CHECK(v.empty());
  const auto c = fc::stats();
  CHECK(c.live_device_allocs == 0);
  CHECK(c.live_pinned_allocs == 0);
  CHECK(c.pageable_h2d == 0);
}

// A test case of this binary that still runs after 200 s has hung (the longest takes about 20 s):
// print every thread's stack (with gdb, where installed) and the fake streams, then abort, so that
// CTest shows where instead of a bare timeout at 300 s.
std::atomic<std::int64_t> case_started{0};  // steady_clock seconds at the current case's start

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct hang_watchdog : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo&) override {
    case_started = now_s();
    static const bool started = [] {
      std::thread([] {
        while (now_s() - case_started < 200) std::this_thread::sleep_for(std::chrono::seconds(5));
        std::fprintf(stderr, "test_fake_gpu: a test case still runs after 200 s; fake streams:\n%s",
                     fc::describe_streams().c_str());
        const std::string gdb = "gdb -p " + std::to_string(::getpid()) +
                                " -batch -ex 'thread apply all bt' 1>&2 2>/dev/null";
        if (std::system(gdb.c_str()) != 0) std::fprintf(stderr, "(no gdb for the stacks)\n");
        std::abort();
      }).detach();
      return true;
    }();
    (void)started;
  }
};
CATCH_REGISTER_LISTENER(hang_watchdog)

struct fake_device_fixture {
  fake_device_fixture() { fc::reset(); }
  ~fake_device_fixture() { fc::reset(); }
};

}  // namespace

TEST_CASE_METHOD(fake_device_fixture, "the fake device is what the engine sees", "[fake_gpu]") {
  CHECK(gpu_count() == fc::device_count);
  // A stream runs its work in order and asynchronously; an event orders a second stream.
  cuda::set_device(0);
  cuda::stream a(0), b(0);
  cuda::device_buffer d(64);
  cuda::pinned_buffer h(64);
  std::memset(h.get(), 7, 64);
  std::atomic<bool> release{false};
  fc::launch(a.handle(), [&] {
    while (!release) std::this_thread::yield();
  });
  cuda::copy_h2d_async(d.get(), h.get(), 64, a);
  cuda::event copied;
  copied.record(a);
  copied.make_wait(b);
  cuda::pinned_buffer back(64);
  cuda::copy_d2h_async(back.get(), d.get(), 64, b);
  CHECK_FALSE(a.idle());
  CHECK_FALSE(copied.ready());
  release = true;
  b.synchronize();
  CHECK(static_cast<const unsigned char*>(back.get())[63] == 7);
  // Out of bounds is a violation and a sticky error.
  CHECK_THROWS_AS(cuda::copy_h2d_async(static_cast<std::byte*>(d.get()) + 1, h.get(), 64, a),
                  gpu_error);
  CHECK(fc::violations().size() == 1);
  CHECK_THROWS_AS(a.synchronize(), gpu_error);
}

TEST_CASE_METHOD(fake_device_fixture,
                 "GPU lanes reduce every chunk once, in order, whatever the lanes, buffers, "
                 "slots and batches",
                 "[fake_gpu]") {
  test::temp_dir dir;
  const std::vector<std::size_t> sizes = {0, 1, 255, 4096, 100'000, (1u << 20) + 7};
  const auto [inputs, want] = write_inputs(dir, sizes, 100);
  fc::set_jitter(20);
  for (device_mode m : {device_mode::gpu, device_mode::automatic})
    for (std::size_t chunk : {std::size_t{4096}, std::size_t{65536}})
      for (unsigned slots : {1u, 4u})
        for (unsigned lanes : {1u, 2u})
          for (unsigned buffers : {2u, 3u})
            for (std::size_t batch : {std::size_t{1}, std::size_t{16}}) {
              INFO(device_mode_name(m) << " chunk " << chunk << " slots " << slots << " lanes "
                                       << lanes << " buffers " << buffers << " batch " << batch);
              sums_op op;
              op.batch = batch;
              job_report rep;
              const auto before = fc::stats();
              auto got = run(op, inputs, lane_options(m, chunk, slots, lanes, buffers), &rep);
              REQUIRE(got.size() == inputs.size());
              check_sums(got, want);
              std::uint64_t chunks = 0;
              for (std::size_t size : sizes) chunks += (size + chunk - 1) / chunk;
              CHECK(rep.chunks == chunks);
              CHECK(rep.gpu_lanes == lanes * fc::device_count);
              CHECK(op.device_chunks + op.host_chunks == chunks);
              if (m == device_mode::gpu) CHECK(op.host_chunks == 0);
              // The pool's slots are page-locked as GPU lanes first copy from them, a block of
              // 8 MiB at a time (slots of the chunk size, or of the largest input when every input
              // is smaller; here the largest input is not): these pools are one block, locked
              // whole, once.
              const auto after = fc::stats();
              const std::uint64_t registers = after.host_registers - before.host_registers;
              const std::uint64_t locked =
                  after.host_registered_bytes - before.host_registered_bytes;
              CHECK(registers <= 1);
              CHECK(locked == registers * slots * chunk);
              if (m == device_mode::gpu) CHECK(registers == 1);
              check_device_clean();
            }
}

TEST_CASE_METHOD(fake_device_fixture,
                 "GPU lanes page-lock large slots a block of 8 MiB at a time, each block once",
                 "[fake_gpu]") {
  // Slots of 4 MiB: blocks of two. Lanes take slots in any order; every block is locked whole,
  // once, and every copy comes from locked memory (check_device_clean).
  test::temp_dir dir;
  const std::size_t chunk = std::size_t{4} << 20;
  const auto bytes = test::random_bytes(6 * chunk, 17);
  test::write_bytes(dir.file("x"), bytes);
  const auto want = sum_bytes(0, bytes.data(), bytes.size());
  STATIC_REQUIRE(detail::pin_run_bytes == 2 * (std::size_t{4} << 20));
  for (unsigned lanes : {1u, 2u}) {
    INFO(lanes << " lanes per device");
    const auto before = fc::stats();
    sums_op op;
    auto got = run(op, {{dir.file("x")}}, lane_options(device_mode::gpu, chunk, 6, lanes, 2));
    CHECK(static_cast<const sums&>(*got[0]).s.weighted == want.weighted);
    const auto after = fc::stats();
    const std::uint64_t registers = after.host_registers - before.host_registers;
    CHECK(registers >= 1);
    CHECK(registers <= 3);
    CHECK(after.host_registered_bytes - before.host_registered_bytes == registers * 2 * chunk);
    check_device_clean();
  }
}

TEST_CASE_METHOD(fake_device_fixture,
                 "slots the driver will not page-lock are copied from as they are, and reported",
                 "[fake_gpu]") {
  // cudaHostRegister refused: the job's sums are the same, each block is tried once (state 2:
  // not tried again), the report and -v say so, and no refused block is unregistered at the end
  // (the fake records that as a violation).
  test::temp_dir dir;
  const std::size_t chunk = std::size_t{4} << 20;
  const auto bytes = test::random_bytes(6 * chunk + 123, 23);
  test::write_bytes(dir.file("x"), bytes);
  const auto want = sum_bytes(0, bytes.data(), bytes.size());
  fc::refuse_host_register(true);
  sums_op op;
  job_report rep;
  auto got = run(op, {{dir.file("x")}}, lane_options(device_mode::gpu, chunk, 6, 2, 2), &rep);
  CHECK(static_cast<const sums&>(*got[0]).s.weighted == want.weighted);
  const auto c = fc::stats();
  CHECK(rep.slots_pinned == 0);
  CHECK(rep.slots_pin_refused >= 2);  // a block of two slots at least
  CHECK(rep.slots_pin_refused <= 6);
  CHECK(c.host_registers == (rep.slots_pin_refused + 1) / 2);  // blocks of two 4 MiB slots
  CHECK(c.pageable_h2d >= 7);                                  // every chunk's copy
  const auto v = fc::violations();
  for (const auto& x : v) UNSCOPED_INFO("violation: " << x);
  CHECK(v.empty());
  CHECK(c.live_device_allocs == 0);
  CHECK(c.live_pinned_allocs == 0);
}

TEST_CASE_METHOD(fake_device_fixture,
                 "in auto mode GPU lanes join a running job once set up, or never for a short one",
                 "[fake_gpu]") {
  // The CPU lanes start at once; the GPU lanes join when their set-up (slowed here) is done and
  // page-lock the pool's slots as they first copy from them, and the CPU lanes keep taking their
  // share beside them.
  test::temp_dir dir;
  const auto bytes = test::random_bytes(4096 * 400, 91);
  test::write_bytes(dir.file("x"), bytes);
  const auto want = sum_bytes(0, bytes.data(), bytes.size());
  auto options = lane_options(device_mode::automatic, 4096, 16, 1, 2);

  SECTION("a long job: the GPU lanes join, and the CPU lanes keep working beside them") {
    sums_op op;
    std::atomic<bool> kernel_seen{false};
    std::atomic<unsigned> host_after{0};
    op.on.make = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
    op.on.host = [&](const chunk_info&) {
      if (kernel_seen) ++host_after;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    };
    op.on.kernel = [&](const chunk_info&) {
      kernel_seen = true;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    };
    job_report rep;
    auto got = run(op, {{dir.file("x")}}, options, &rep);
    const auto& s = static_cast<const sums&>(*got[0]);
    CHECK(s.in_order);
    CHECK(s.s.weighted == want.weighted);
    CHECK(s.s.bytes == want.bytes);
    CHECK(rep.gpu_join_seconds >= 0.03);
    CHECK(rep.gpu_lanes == fc::device_count);
    // The slots GPU lanes copied from, a block at a time: 16 slots of 4096 bytes are one block.
    CHECK(fc::stats().host_registers == 1);
    CHECK(fc::stats().host_registered_bytes == 16 * 4096);
    CHECK(op.device_chunks > 0);
    CHECK(op.host_chunks + op.device_chunks == 400);
    INFO(host_after << " chunks on CPU lanes after the first kernel, " << op.device_chunks
                    << " on GPU lanes");
    CHECK(host_after >= 20);
  }
  SECTION("a short job: done before the GPU lanes are set up, which then take nothing") {
    // The first lane's set-up (300 ms) outlasts the CPU lanes' work; the second lane is then
    // not set up at all: the job would only wait for it.
    sums_op op;
    std::atomic<int> made{0};
    op.on.make = [&made] {
      ++made;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    };
    job_report rep;
    auto got = run(op, {{dir.file("x")}}, options, &rep);
    CHECK(static_cast<const sums&>(*got[0]).s.weighted == want.weighted);
    CHECK(rep.gpu_lanes == 0);
    CHECK(rep.gpu_join_seconds == 0);
    CHECK(op.device_chunks == 0);
    CHECK(made == 1);
    CHECK(fc::stats().host_registers == 0);  // no page-locking for a job that is over
  }
  SECTION("the projected length of a job decides whether its GPU lanes start at all") {
    // 400 chunks on 2 CPU lanes, projected from the first checks (every 20 ms): of 100 us each,
    // about 20 ms in all, under auto_gpu_min_remaining (30 s: on a loaded machine one 20 ms
    // window in which the lanes' sleeps stretched projected 0.6 s, and a threshold of 0.5 s
    // started the GPU lanes in 11 runs of 30); of 4 ms, 0.8 s or more, over 0.5 s.
    struct row {
      std::chrono::microseconds host;
      bool start;
      double min_remaining;
    };
    for (const row r : {row{std::chrono::microseconds(100), false, 30.0},
                        row{std::chrono::microseconds(4000), true, 0.5}}) {
      INFO(r.host.count() << " us a chunk");
      const auto registers = fc::stats().host_registers;
      sums_op op;
      std::atomic<unsigned> made{0};
      op.on.make = [&] { ++made; };
      op.on.host = [&](const chunk_info&) { std::this_thread::sleep_for(r.host); };
      options.auto_gpu_min_remaining = r.min_remaining;
      job_report rep;
      auto got = run(op, {{dir.file("x")}}, options, &rep);
      CHECK(static_cast<const sums&>(*got[0]).s.weighted == want.weighted);
      // Not started: no device memory, no driver start, no page-locking.
      CHECK(made == (r.start ? fc::device_count : 0));
      CHECK(rep.gpu_lanes == (r.start ? fc::device_count : 0));
      CHECK((fc::stats().host_registers > registers) == r.start);
      CHECK((op.device_chunks > 0) == r.start);
      CHECK(op.host_chunks + op.device_chunks == 400);
      if (r.start) CHECK(rep.gpu_join_seconds >= 0.02);
    }
  }
  SECTION("a set-up that fails fails the job") {
    sums_op op;
    op.on.make = [] { throw gpu_error("device set-up refused (test)"); };
    op.on.host = [](const chunk_info&) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    };
    REQUIRE_THROWS_MATCHES(run(op, {{dir.file("x")}}, options), gpu_error,
                           test::what(Catch::Matchers::Contains("device set-up refused (test)")));
  }
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "in auto mode heavy chunks that tell their progress are projected before one "
                 "is done",
                 "[fake_gpu]") {
  // Two chunks of 0.8 s, one on each of two CPU lanes: a job of 0.8 s, under the threshold of
  // 1.6 s. Told nothing, the rule sees no chunk done for a quarter of the threshold (0.4 s) and
  // takes the job as long, which leaves the GPU lanes 0.4 s to be set up (late lanes are not set
  // up once the CPU lanes are done); told the progress within each chunk (every 5 ms), it
  // projects the rest, 0.8 s at most, at the first checks and never starts the GPU lanes. (Four
  // chunks of 0.4 s under 2 s left 0.3 s, which a loaded box once missed.)
  test::temp_dir dir;
  const auto bytes = test::random_bytes(2 * 4096, 92);
  test::write_bytes(dir.file("x"), bytes);
  auto options = lane_options(device_mode::automatic, 4096, 8, 1, 2);
  options.auto_gpu_min_remaining = 1.6;
  for (const bool tell : {true, false}) {
    INFO((tell ? "progress told" : "no progress told"));
    sums_op op;
    std::atomic<unsigned> made{0}, outside{0};
    op.on.make = [&] { ++made; };
    op.on.host = [&](const chunk_info& info) {
      detail::chunk_progress* const p = detail::chunk_progress::current();
      if (!p) ++outside;
      for (int step = 0; step < 160; ++step) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (tell && p) p->add(info.size / 160);
      }
    };
    job_report rep;
    auto got = run(op, {{dir.file("x")}}, options, &rep);
    CHECK(static_cast<const sums&>(*got[0]).s.weighted ==
          sum_bytes(0, bytes.data(), bytes.size()).weighted);
    CHECK(rep.bytes == bytes.size());  // what was told is not counted twice
    CHECK(outside == 0);               // every chunk ran on a CPU lane, which has a chunk_progress
    CHECK(made == (tell ? 0u : static_cast<unsigned>(fc::device_count)));
    CHECK(op.host_chunks == 2);  // both taken at once, before any GPU lane could
  }
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "in auto mode an image on a CPU lane tells its rows as they are made",
                 "[fake_gpu][image]") {
  // One image, so one chunk: told nothing, the job has no chunk done until its end, and auto
  // mode never measures a rate (the projection stays -1); told the rows, it projects at its
  // second check. The threshold (100 s) keeps the GPU lanes from starting either way.
  test::temp_dir dir;
  std::filesystem::create_directories(dir.path() / "in");
  test::write_image(dir.file("in/big.pgm"), test::random_image(8192, 4096, 1, 255, 3), false);
  image_spec spec;
  spec.ops = "blur:sigma=6,sobel";
  const auto files = plan_images({dir.file("in")}, true, dir.file("out"), image_output::same);
  options o = lane_options(device_mode::automatic, 0, 0, 1, 2, 1);
  o.auto_gpu_min_remaining = 100;
  job_report rep;
  run_images(spec, files, o, &rep);
  REQUIRE(rep.skipped.empty());
  CHECK(rep.gpu_lanes == 0);
  if (rep.seconds < 0.1) {
    WARN("the image took " << rep.seconds << " s: too fast for two checks 20 ms apart");
    return;
  }
  CHECK(rep.gpu_projected_seconds >= 0);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "a cancel stops a GPU lane's team in the middle of a PNG's encoding",
                 "[fake_gpu][image]") {
  // One generated 4096 x 4096 gray image written as PNG at level 9 by a GPU lane's team: the
  // test took 2.9 s without the stop (2-core box), mostly zlib. The cancel comes 0.4 s in, while it
  // encodes; before, the team ran the encoding to its end, and the job, its output in place,
  // succeeded.
  test::temp_dir dir;
  image_set_spec gen;
  gen.width = 4096;
  gen.height = 4096;
  gen.channels = 1;
  gen.outdir = dir.file("in");
  generate_images(gen);
  image_spec spec;
  spec.ops = "invert";
  spec.format = image_output::png;
  spec.png_level = 9;
  const auto files = plan_images({dir.file("in")}, true, dir.file("out"), image_output::png);
  REQUIRE(files.size() == 1);
  options o = lane_options(device_mode::gpu, 0, 0, 1, 2);
  std::atomic<bool> stop{false};
  o.cancel = &stop;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread canceller([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    stop = true;
  });
  CHECK_THROWS_AS(run_images(spec, files, o), cancelled);
  canceller.join();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(took < 1.0);
  CHECK_FALSE(std::filesystem::exists(files[0].output));
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "in auto mode a job of PNGs, read or written, stays on its CPU lanes",
                 "[fake_gpu][image]") {
  // A threshold of 1 ms: a job of PPMs starts its GPU lanes at a first check. Written as PNGs, or
  // read from them (one image in eight is enough), the same job never does; told to start them
  // at once (a threshold of 0), it does.
  test::temp_dir dir;
  std::filesystem::create_directories(dir.path() / "ppm");
  std::filesystem::create_directories(dir.path() / "mixed");
  for (int i = 0; i < 48; ++i) {
    const auto im = test::random_image(400, 300, 3, 255, 60 + i);
    test::write_image(dir.file(numbered("ppm/p", i) + ".ppm"), im, false);
    const bool as_png = i % 8 == 0;
    test::write_image(dir.file(numbered("mixed/p", i) + (as_png ? ".png" : ".ppm")), im, as_png);
  }
  image_spec spec;
  spec.ops = "gray";  // long enough on one CPU lane for the checks 20 ms apart
  for (int k = 0; k < 8; ++k) spec.ops += ",blur:sigma=3,sobel";
  spec.png_level = 1;
  const auto run = [&](const char* in, image_output format, double threshold) {
    spec.format = format;
    std::filesystem::remove_all(dir.path() / "out");
    const auto files = plan_images({dir.file(in)}, true, dir.file("out"), format);
    options o = lane_options(device_mode::automatic, 0, 0, 1, 2, 1);
    o.auto_gpu_min_remaining = threshold;
    job_report rep;
    run_images(spec, files, o, &rep);
    CHECK(rep.skipped.empty());
    return rep;
  };
  const job_report ppm = run("ppm", image_output::same, 0.001);
  CHECK(run("ppm", image_output::png, 0.001).gpu_lanes == 0);
  CHECK(run("mixed", image_output::same, 0.001).gpu_lanes == 0);
  CHECK(run("ppm", image_output::png, 0).gpu_lanes > 0);
  if (ppm.seconds < 0.05) {
    WARN("the PPM job took " << ppm.seconds << " s: too fast for its first checks");
    return;
  }
  CHECK(ppm.gpu_lanes > 0);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "a GPU lane hands on a finished batch at once, not when its buffer comes round",
                 "[fake_gpu]") {
  // One lane, three buffers, one chunk per batch, reads far ahead (64 slots): batch k used to be
  // collected only when batch k + 3 took its buffer, so the lane held three batches of work
  // (decoded images, in the PNG case) that CPU lanes could have taken. Now a batch whose kernels
  // are done is collected right after the next launch, so most are collected before batch k + 2
  // is launched (300 of 300 here; 4 of 300, at the lanes' ends, before).
  test::temp_dir dir;
  const auto bytes = test::random_bytes(4096 * 300, 77);
  test::write_bytes(dir.file("x"), bytes);
  sums_op op;
  std::mutex m;
  // Per lane (one per fake device): the sequence numbers it launched, in order, and for each
  // batch it collected, how many it had launched by then.
  std::map<std::thread::id, std::vector<std::uint64_t>> launched;
  std::vector<std::tuple<std::thread::id, std::size_t, std::uint64_t>> collected;
  op.on.launched = [&](const chunk_info& c) {
    {
      std::lock_guard lock(m);
      launched[std::this_thread::get_id()].push_back(c.seq);
    }
    // Host work between launches (a PNG lane decodes its next batch): time for the previous
    // batch's kernel to finish, as it has on a real device by then (1 ms: the fake stream's
    // thread may wait for a core on a loaded machine).
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  op.on.collected = [&](const chunk_info& c) {
    std::lock_guard lock(m);
    const auto me = std::this_thread::get_id();
    collected.emplace_back(me, launched[me].size(), c.seq);
  };
  auto got = run(op, {{dir.file("x")}}, lane_options(device_mode::gpu, 4096, 64, 1, 3));
  const auto want = sum_bytes(0, bytes.data(), bytes.size());
  CHECK(static_cast<const sums&>(*got[0]).s.weighted == want.weighted);
  REQUIRE(collected.size() == 300);
  std::size_t early = 0;
  for (const auto& [lane, seen, seq] : collected) {
    const auto& mine = launched[lane];
    const auto k =
        static_cast<std::size_t>(std::find(mine.begin(), mine.end(), seq) - mine.begin());
    REQUIRE(k < mine.size());
    if (seen <= k + 2) ++early;  // the lane had launched k and k + 1, not k + 2
  }
  INFO(early << " of 300 batches collected before their lane launched batch k + 2");
  CHECK(early > 150);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "chunks the CPU lanes were to read themselves are read by GPU lanes that join",
                 "[fake_gpu]") {
  // Auto mode starts on CPU lanes, which read or map their own large chunks (options::reads): the
  // reader delivers those unread. GPU lanes that join take unread chunks from the queue too, and
  // read them before their copy; from then on the reader reads ahead for them.
  test::temp_dir dir;
  const auto [inputs, want] = write_inputs(dir, {(5u << 20) + 13, 300'000, 1u << 20}, 300);
  fc::set_jitter(20);
  for (read_mode reads : {read_mode::map, read_mode::lane, read_mode::pool})
    for (device_mode m : {device_mode::automatic, device_mode::gpu, device_mode::cpu})
      for (std::size_t chunk : {std::size_t{256} << 10, std::size_t{1} << 20})
        for (unsigned slots : {1u, 5u}) {
          INFO(device_mode_name(m)
               << " reads " << read_mode_name(reads) << " chunk " << chunk << " slots " << slots);
          sums_op op;
          // A slow CPU lane (its first chunk takes 50 ms, the others 12): the chunks after it wait,
          // unread, in the queue when the GPU lanes join, at about 75 ms. (At 2 ms a chunk, a job
          // of 1 MiB chunks was over before auto mode's GPU lanes came up, and never tested them.)
          std::atomic<int> calls{0};
          op.on.host = [&calls](const chunk_info&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(calls++ == 0 ? 50 : 12));
          };
          // GPU lanes that take 20 ms to come up join after the reader delivered unread chunks.
          op.on.make = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
          options o = lane_options(m, chunk, slots, 2, 2, 1);
          o.reads = reads;
          job_report rep;
          auto got = run(op, inputs, o, &rep);
          REQUIRE(got.size() == inputs.size());
          check_sums(got, want);
          if (m == device_mode::gpu) CHECK(op.host_chunks == 0);
          // The GPU lanes did take chunks (the CPU lane's first one holds it 50 ms, while they
          // come up in 20), so the sums above cover chunks they were handed unread.
          std::uint64_t gpu_chunks = 0;
          for (const auto& l : rep.lanes)
            if (l.name.rfind("gpu", 0) == 0) gpu_chunks += l.chunks;
          CHECK((gpu_chunks > 0) == (m != device_mode::cpu));
          // Every chunk of a mapped window was retired, the GPU lanes' too: none was left
          // mapped, its pages in the page tables, until the job's end.
          CHECK(detail::windows_left_at_end == 0);
          check_device_clean();
        }
}

TEST_CASE_METHOD(fake_device_fixture,
                 "auto mode's CPU lanes past cpu_threads_beside_gpu stop once the GPU lanes run",
                 "[fake_gpu]") {
  test::temp_dir dir;
  const auto [inputs, want] = write_inputs(dir, {24u << 20}, 301);
  for (unsigned beside : {1u, 4u}) {
    INFO("beside " << beside);
    sums_op op;
    // The GPU lanes come up 30 ms in; until then the 4 CPU lanes take every chunk.
    op.on.make = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
    std::atomic<bool> gpu_ran{false};
    op.on.kernel = [&gpu_ran](const chunk_info&) {
      gpu_ran = true;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    };
    std::mutex mu;
    std::map<std::thread::id, std::pair<int, int>> calls;  // per lane: before, after the GPU ran
    op.on.host = [&](const chunk_info&) {
      const bool after = gpu_ran.load();
      {
        std::lock_guard lk(mu);
        auto& c = calls[std::this_thread::get_id()];
        (after ? c.second : c.first)++;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    };
    options o = lane_options(device_mode::automatic, 64 << 10, 32, 2, 2, 4);
    o.cpu_threads_beside_gpu = beside;
    job_report rep;
    auto got = run(op, inputs, o, &rep);
    check_sums(got, want);
    REQUIRE(rep.gpu_lanes > 0);
    REQUIRE(calls.size() == 4);  // every lane ran before the GPU lanes joined
    std::vector<int> after;
    for (const auto& [id, c] : calls) after.push_back(c.second);
    std::sort(after.begin(), after.end());
    // After the join, the lanes past `beside` take at most the one chunk they were waiting for;
    // the others go on (3 ms a chunk, against the GPU lanes' 0.5 ms: a few each).
    for (unsigned k = 0; k < 4 - beside; ++k) CHECK(after[k] <= 1);
    if (beside == 4) CHECK(after[0] >= 2);
    check_device_clean();
  }
}

TEST_CASE_METHOD(fake_device_fixture, "many small files go to the device in batches",
                 "[fake_gpu]") {
  test::temp_dir dir;
  std::vector<input> inputs;
  std::vector<raw_sums> want;
  std::mt19937_64 g(7);
  for (int i = 0; i < 300; ++i) {
    const auto bytes = test::random_bytes(g() % 5000, g);
    test::write_bytes(dir.file(numbered("s", i)), bytes);
    inputs.push_back({dir.file(numbered("s", i))});
    want.push_back(sum_bytes(0, bytes.data(), bytes.size()));
  }
  sums_op op;
  op.batch = 32;
  // A slow device: files pile up in the ready queue and leave it in batches.
  op.on.kernel = [](const chunk_info&) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  };
  job_report rep;
  auto got = run(op, inputs, lane_options(device_mode::gpu, 1 << 16, 16, 1, 2), &rep);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& s = static_cast<const sums&>(*got[i]);
    CHECK(s.s.weighted == want[i].weighted);
    CHECK(s.s.bytes == want[i].bytes);
  }
  const auto c = fc::stats();
  const std::uint64_t nonempty = rep.chunks;
  CHECK(op.device_chunks == nonempty);
  // One copy back per batch: far fewer than one per file.
  CHECK(c.d2h * 4 < nonempty);
  // The set-up's parts (for -v): the GPU lanes' and the pool's, within the whole.
  CHECK(rep.setup_gpu_seconds > 0);
  CHECK(rep.setup_pool_seconds > 0);
  CHECK(rep.setup_gpu_seconds + rep.setup_pool_seconds <= rep.setup_seconds);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "GPU lanes transform: the bytes of the CPU path, with staged (larger), batched, "
                 "host-preferred and refused chunks",
                 "[fake_gpu]") {
  test::temp_dir dir;
  const std::vector<std::size_t> sizes = {300'001, 4096, 0, 1000, 5000, 70'000};
  std::vector<std::vector<std::uint8_t>> data;
  std::vector<input> inputs;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    data.push_back(test::random_bytes(sizes[i], 200 + i));
    test::write_bytes(dir.file(numbered("in", i)), data.back());
    inputs.push_back({dir.file(numbered("in", i))});
  }
  fc::set_jitter(20);
  for (device_mode m : {device_mode::gpu, device_mode::automatic})
    for (std::size_t chunk : {std::size_t{4096}, std::size_t{65536}})
      for (unsigned slots : {1u, 4u})
        for (unsigned lanes : {1u, 2u})
          for (std::size_t batch : {std::size_t{1}, std::size_t{8}}) {
            INFO(device_mode_name(m) << " chunk " << chunk << " slots " << slots << " lanes "
                                     << lanes << " batch " << batch);
            const std::filesystem::path out = dir.path() / "out";
            std::filesystem::remove_all(out);
            std::filesystem::create_directory(out);
            std::vector<std::string> outputs;
            for (std::size_t i = 0; i < sizes.size(); ++i)
              outputs.push_back((out / numbered("o", i)).string());
            xor_op op;
            op.batch = batch;
            op.skip_at_stage = {3};
            op.skip_at_collect = {4};
            job_report rep;
            run(op, inputs, outputs, lane_options(m, chunk, slots, lanes, 2), &rep);
            std::set<std::size_t> skipped;
            for (const auto& s : rep.skipped) skipped.insert(s.input);
            CHECK(skipped == std::set<std::size_t>{3, 4});
            CHECK(names_in(out) == std::set<std::string>{"o0", "o1", "o2", "o5"});
            for (std::size_t i : {0u, 1u, 2u, 5u}) {
              INFO("input " << i);
              CHECK(first_difference(test::file_bytes(outputs[i]), expected_xor(data[i], chunk)) ==
                    -1);
            }
            CHECK(op.device_chunks > 0);
            if (m == device_mode::gpu) CHECK(op.host_chunks > 0);  // every seventh chunk
            // Every chunk a GPU lane staged was prepared first, every one it collected was
            // finished first (input 4's refused at collect), and the chunks prepared but never
            // finished are those refused at stage (input 3's, when a GPU lane took it: in auto
            // mode a CPU lane may).
            CHECK(op.prepared >= op.device_chunks);
            CHECK(op.finished >= op.device_chunks);
            CHECK(op.prepared - op.finished == op.refused_at_stage);
            check_device_clean();
          }
}

namespace {

enum class failure { launch, kernel, collect };

// Chunk seq 5 fails on the device in the way given.
hooks failing(failure how) {
  hooks on;
  if (how == failure::launch) on.fail_launch_seq = 5;
  if (how == failure::collect) on.fail_collect_seq = 5;
  if (how == failure::kernel)
    on.kernel = [](const chunk_info& c) {
      if (c.seq == 5) throw std::runtime_error("bad address (test)");
    };
  return on;
}

// Returns the job's error message.
std::string failed_reduce(const std::vector<input>& inputs, failure how, const options& o) {
  sums_op op;
  op.batch = 4;
  op.on = failing(how);
  try {
    run(op, inputs, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE_METHOD(fake_device_fixture,
                 "a failure on a GPU lane ends the job with its error, leaving no output and no "
                 "device memory",
                 "[fake_gpu]") {
  test::temp_dir dir;
  const auto bytes = test::random_bytes(500'000, 9);
  test::write_bytes(dir.file("in"), bytes);
  fc::set_jitter(20);
  const std::map<failure, std::string> expect = {{failure::launch, "launch refused (test)"},
                                                 {failure::kernel, "kernel failed: bad address"},
                                                 {failure::collect, "collect failed (test)"}};
  for (auto [how, message] : expect)
    for (device_mode m : {device_mode::gpu, device_mode::automatic})
      for (unsigned slots : {1u, 4u}) {
        INFO("failure " << static_cast<int>(how) << " " << device_mode_name(m) << " slots "
                        << slots);
        // The CPU lanes may finish chunk 5 first in auto mode: then the job succeeds.
        const options o = lane_options(m, 4096, slots, 2, 2);
        const std::string got = failed_reduce({{dir.file("in")}}, how, o);
        if (m == device_mode::gpu || got != "no error")
          CHECK_THAT(got, Catch::Matchers::Contains(message));
        fc::reset();  // the sticky error of a kernel fault lasts until the device is reset

        xor_op op;
        op.batch = 4;
        op.on = failing(how);
        op.host_seventh = false;
        if (m == device_mode::gpu) {
          CHECK_THROWS_WITH(run(op, {{dir.file("in")}}, {dir.file("out")}, o),
                            Catch::Matchers::Contains(message));
          CHECK(names_in(dir.path()) == std::set<std::string>{"in"});
        } else {
          try {
            run(op, {{dir.file("in")}}, {dir.file("out")}, o);
            CHECK(first_difference(test::file_bytes(dir.file("out")), expected_xor(bytes, 4096)) ==
                  -1);
            std::filesystem::remove(dir.file("out"));
          } catch (const std::exception& e) {
            CHECK_THAT(std::string(e.what()), Catch::Matchers::Contains(message));
          }
          CHECK(names_in(dir.path()) == std::set<std::string>{"in"});
        }
        CHECK(fc::violations().empty());
        CHECK(fc::stats().live_device_allocs == 0);
        CHECK(fc::stats().live_pinned_allocs == 0);
        fc::reset();
      }
}

TEST_CASE_METHOD(fake_device_fixture,
                 "a GPU lane that cannot get its device memory fails the job cleanly",
                 "[fake_gpu]") {
  test::temp_dir dir;
  test::write_bytes(dir.file("in"), test::random_bytes(100'000, 3));
  fc::set_device_memory(16 << 10);  // less than one 64 KiB device buffer
  xor_op op;
  CHECK_THROWS_WITH(run(op, {{dir.file("in")}}, {dir.file("out")},
                        lane_options(device_mode::gpu, 1 << 16, 4, 1, 2)),
                    Catch::Matchers::Contains("out of memory"));
  CHECK(names_in(dir.path()) == std::set<std::string>{"in"});
  CHECK(fc::stats().live_device_allocs == 0);
  CHECK(fc::stats().live_pinned_allocs == 0);
}

TEST_CASE_METHOD(fake_device_fixture,
                 "GPU lanes collect outputs into the memory of outputs already written",
                 "[fake_gpu]") {
  // One chunk per file, each file with its (empty) prologue piece: the pool of written outputs
  // once handed those out first, so no output reused memory.
  test::temp_dir dir;
  constexpr int files = 48;
  const auto job = test::write_numbered_files(dir, files, 200'000, 50);
  xor_op op;
  op.host_seventh = false;
  op.expand = false;
  run(op, job.inputs, job.outputs, lane_options(device_mode::gpu, 1 << 18, 4, 1, 2));
  CHECK(op.device_chunks == files);
  CHECK(op.device_reused >= files / 2);
}

TEST_CASE_METHOD(fake_device_fixture, "cancelling a job with GPU lanes stops it cleanly",
                 "[fake_gpu]") {
  test::temp_dir dir;
  test::write_bytes(dir.file("in"), test::random_bytes(1'000'000, 4));
  std::atomic<bool> cancel{false};
  xor_op op;
  op.on.kernel = [&](const chunk_info& c) {
    if (c.seq >= 10) cancel = true;  // (seq 10 itself goes to the host)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  options o = lane_options(device_mode::gpu, 4096, 4, 2, 2);
  o.cancel = &cancel;
  CHECK_THROWS_AS(run(op, {{dir.file("in")}}, {dir.file("out")}, o), cancelled);
  CHECK(names_in(dir.path()) == std::set<std::string>{"in"});
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture, "CPU lanes beside slow GPU lanes take a share of the work",
                 "[fake_gpu]") {
  test::temp_dir dir;
  const auto bytes = test::random_bytes(2'000'000, 5);
  test::write_bytes(dir.file("in"), bytes);
  sums_op op;
  op.on.kernel = [](const chunk_info&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  };
  job_report rep;
  auto got =
      run(op, {{dir.file("in")}}, lane_options(device_mode::automatic, 16384, 16, 1, 2), &rep);
  const auto& s = static_cast<const sums&>(*got[0]);
  const raw_sums want = sum_bytes(0, bytes.data(), bytes.size());
  CHECK(s.in_order);
  CHECK(s.s.weighted == want.weighted);
  std::uint64_t cpu = 0, gpu = 0;
  for (const auto& l : rep.lanes) (l.name.rfind("cpu", 0) == 0 ? cpu : gpu) += l.chunks;
  CHECK(cpu + gpu == rep.chunks);
  CHECK(cpu == op.host_chunks);
  CHECK(cpu > 0);
  CHECK(gpu > 0);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "the trace of a GPU lane shows each batch's copy, kernel and copy back in order",
                 "[fake_gpu]") {
  test::temp_dir dir;
  test::write_bytes(dir.file("in"), test::random_bytes(400'000, 6));
  fc::set_jitter(100);
  xor_op op;
  op.host_seventh = false;
  options o = lane_options(device_mode::gpu, 16384, 4, 1, 2);
  o.trace_path = dir.file("trace.json");
  run(op, {{dir.file("in")}}, {dir.file("out")}, o);
  const auto doc = nlohmann::json::parse(test::file_bytes(dir.file("trace.json")));
  std::map<int, std::string> track;
  struct span {
    double begin, end;
  };
  std::map<std::string, std::map<std::uint64_t, span>> by_stage;  // stage → seq → span
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M") {
      track[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
      continue;
    }
    const std::string& name = track[e["tid"].get<int>()];
    if (name.rfind("gpu 0 lane 0", 0) != 0) continue;
    const double ts = e["ts"].get<double>();
    by_stage[e["name"].get<std::string>()][e["args"]["seq"].get<std::uint64_t>()] = {
        ts, ts + e["dur"].get<double>()};
  }
  REQUIRE(by_stage["h2d"].size() > 3);
  CHECK(by_stage["kernel"].size() == by_stage["h2d"].size());
  CHECK(by_stage["d2h"].size() == by_stage["h2d"].size());
  for (const auto& [seq, h2d] : by_stage["h2d"]) {
    INFO("seq " << seq);
    const span k = by_stage["kernel"][seq], d = by_stage["d2h"][seq];
    CHECK(h2d.end <= k.begin + 1);  // µs, rounding
    CHECK(k.end <= d.begin + 1);
    CHECK(d.begin <= d.end);
  }
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "an image too large for the device's free memory runs on its GPU lane's thread",
                 "[fake_gpu][image]") {
  // 96 MiB per device: a 4096 x 2048 image needs about 11 bytes per sample (88 MiB: two
  // ping-pong images, blur's row sums, its samples and its output) on the device, far more than
  // half of what is free once the lanes hold their buffers (2048 x 2048 sat near that line);
  // 64 x 64 ones need a few hundred KiB.
  fc::set_device_memory(96u << 20);
  test::temp_dir dir;
  std::filesystem::create_directories(dir.path() / "in");
  test::write_image(dir.file("in/big.pgm"), test::random_image(4096, 2048, 1, 255, 1), false);
  for (int i = 0; i < 20; ++i)
    test::write_image(dir.file(numbered("in/small", i) + ".ppm"),
                      test::random_image(64, 64, 3, 255, 10 + i), false);
  image_spec spec;
  spec.ops = "gray,blur:sigma=1.5,sobel";
  const auto cpu = plan_images({dir.file("in")}, true, dir.file("out-cpu"), image_output::same);
  const auto dev = plan_images({dir.file("in")}, true, dir.file("out-dev"), image_output::same);
  run_images(spec, cpu, lane_options(device_mode::cpu, 0, 0, 0, 0));
  options o = lane_options(device_mode::gpu, 0, 0, 1, 2);
  o.trace_path = dir.file("trace.json");
  job_report rep;
  run_images(spec, dev, o, &rep);
  CHECK(rep.skipped.empty());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO(cpu[i].input);
    CHECK(first_difference(test::file_bytes(cpu[i].output), test::file_bytes(dev[i].output)) == -1);
  }
  // The trace: the big image (its file's bytes) as host work on a GPU lane; the small ones on
  // the device.
  const auto doc = nlohmann::json::parse(test::file_bytes(dir.file("trace.json")));
  std::map<int, std::string> track;
  std::uint64_t host_bytes = 0, kernels = 0;
  const auto big_bytes = std::filesystem::file_size(dir.file("in/big.pgm"));
  for (const auto& e : doc["traceEvents"])
    if (e["ph"] == "M") track[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M") continue;
    const std::string& name = track[e["tid"].get<int>()];
    if (name.rfind("gpu", 0) != 0) continue;
    if (e["name"] == "host") host_bytes += e["args"]["bytes"].get<std::uint64_t>();
    if (e["name"] == "kernel") ++kernels;
  }
  CHECK(host_bytes == big_bytes);
  CHECK(kernels > 0);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "a GPU lane decodes and encodes a batch's PNGs around the device's work, as the "
                 "trace shows",
                 "[fake_gpu][image]") {
  test::temp_dir dir;
  std::filesystem::create_directories(dir.path() / "in");
  // 16 PNGs (RGB and gray, 8 and 16 bits) with two bad ones and a PNM among them.
  for (int i = 0; i < 16; ++i)
    test::write_image(dir.file(numbered("in/p", i) + ".png"),
                      test::random_image(300 + i, 200, i % 2 ? 3 : 1, i % 3 ? 255 : 65535, 40 + i),
                      true);
  auto cut = test::file_bytes(dir.file("in/p3.png"));
  cut.resize(cut.size() / 2);
  test::write_bytes(dir.file("in/p3.png"), cut);
  test::write_bytes(dir.file("in/p9.png"), {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0});
  test::write_image(dir.file("in/q.ppm"), test::random_image(77, 33, 3, 255, 2), false);
  image_spec spec;
  spec.ops = "gray,blur:sigma=1,sobel";
  const auto cpu = plan_images({dir.file("in")}, true, dir.file("out-cpu"), image_output::same);
  const auto dev = plan_images({dir.file("in")}, true, dir.file("out-dev"), image_output::same);
  job_report cpu_rep, dev_rep;
  run_images(spec, cpu, lane_options(device_mode::cpu, 0, 0, 0, 0), &cpu_rep);
  options o = lane_options(device_mode::gpu, 0, 0, 1, 2);
  o.trace_path = dir.file("trace.json");
  run_images(spec, dev, o, &dev_rep);
  REQUIRE(cpu_rep.skipped.size() == 2);
  REQUIRE(dev_rep.skipped.size() == 2);
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(dev_rep.skipped[k].input == cpu_rep.skipped[k].input);
    CHECK(dev_rep.skipped[k].reason == cpu_rep.skipped[k].reason);
  }
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO(cpu[i].input);
    const bool bad = cpu[i].input.ends_with("p3.png") || cpu[i].input.ends_with("p9.png");
    CHECK(std::filesystem::exists(dev[i].output) == !bad);
    if (!bad)
      CHECK(first_difference(test::file_bytes(cpu[i].output), test::file_bytes(dev[i].output)) ==
            -1);
  }
  // Decoding and encoding 300 x 200 images takes far more than the trace's 20 µs threshold.
  const auto doc = nlohmann::json::parse(test::file_bytes(dir.file("trace.json")));
  std::map<int, std::string> track;
  std::map<std::string, int> on_host;
  for (const auto& e : doc["traceEvents"])
    if (e["ph"] == "M") track[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
  for (const auto& e : doc["traceEvents"])
    if (e["ph"] != "M" && track[e["tid"].get<int>()] == "gpu 0 lane 0 host")
      ++on_host[e["name"].get<std::string>()];
  CHECK(on_host["prepare"] > 0);
  CHECK(on_host["collect"] > 0);
  CHECK(on_host["host"] == 0);
  check_device_clean();
}

TEST_CASE_METHOD(fake_device_fixture,
                 "a GPU lane's batch is bounded by what its chunks will stage, not only by their "
                 "sizes, and a transformer's budget widens both bounds",
                 "[fake_gpu]") {
  test::temp_dir dir;
  std::vector<input> inputs;
  std::vector<std::string> outputs;
  std::vector<std::vector<std::uint8_t>> data;
  for (std::size_t i = 0; i < 64; ++i) {
    data.push_back(test::random_bytes(3000 + i, 900 + i));
    test::write_bytes(dir.file(numbered("in", i)), data.back());
    inputs.push_back({dir.file(numbered("in", i))});
    outputs.push_back(dir.file(numbered("out", i)));
  }
  // Slots for every file: chunks wait in the queue and batches fill up (up to 8), unless a bound
  // closes them. Files of about 3 KiB:
  // - 64 KiB chunks: many files a batch; staged at 40 MiB each, the second one takes the batch
  //   past 64 MiB and closes it;
  // - 4 KiB chunks: by bytes read, one file a batch; a budget of 32 KiB lets up to 8 in; staged
  //   at 40 MiB each, a budget of 160 MiB closes it at the fourth.
  struct one_case {
    std::size_t chunk, hint, budget, least, most;
  };
  constexpr std::size_t mib40 = std::size_t{40} << 20;
  for (const one_case& k :
       {one_case{65536, 0, 0, 3, 8}, one_case{65536, mib40, 0, 2, 2}, one_case{4096, 0, 0, 1, 1},
        one_case{4096, 0, 32 << 10, 3, 8}, one_case{4096, mib40, std::size_t{160} << 20, 3, 4}}) {
    INFO("chunk " << k.chunk << ", staged_bytes " << k.hint << ", budget " << k.budget);
    xor_op op;
    op.batch = 8;
    op.expand = false;
    op.host_seventh = false;
    op.staged_hint = k.hint;
    op.budget = k.budget;
    fc::set_jitter(200);
    run(op, inputs, outputs, lane_options(device_mode::gpu, k.chunk, 64, 1, 2));
    for (std::size_t i = 0; i < data.size(); ++i)
      REQUIRE(first_difference(test::file_bytes(outputs[i]), expected_xor(data[i], k.chunk)) == -1);
    CHECK(op.largest_batch >= k.least);
    CHECK(op.largest_batch <= k.most);
  }
  check_device_clean();
}

// RAII runtime wrappers: device query, pinned and device memory, stream and event ordering.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/runtime.hpp"

namespace hc = hetpipe::cuda;

TEST_CASE("devices() lists every device with a name, memory and SMs", "[gpu][cuda]") {
  const int n = hc::device_count();
  REQUIRE(n > 0);
  const auto devs = hc::devices();
  REQUIRE(devs.size() == static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const auto& d = devs[i];
    INFO("device " << d.id << ": " << d.name);
    CHECK(d.id == static_cast<int>(i));
    CHECK_FALSE(d.name.empty());
    CHECK(d.total_mem > 0);
    CHECK(d.free_mem > 0);
    CHECK(d.free_mem <= d.total_mem);
    CHECK(d.sms > 0);
    CHECK(d.copy_engines >= 1);
    CHECK(d.cc_major >= 8);  // the stats kernel needs sm_80+ warp reductions
  }
  const std::string status = hc::runtime_status();
  INFO(status);
  CHECK(status.find("runtime, driver") != std::string::npos);
  CHECK(status.find("device") != std::string::npos);
}

TEST_CASE("probe_device_count sees the runtime's devices from their device nodes", "[gpu][cuda]") {
  // Auto mode plans its lanes by the probe and starts the driver only for a long job: a probe that
  // missed the devices would silently leave the GPU out of every auto job.
  const int n = hc::device_count();
  REQUIRE(n > 0);
  CHECK(hc::probe_device_count() >= n);
  // CUDA_VISIBLE_DEVICES bounds it as it bounds the runtime (read at each call).
  const char* was = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string saved = was ? was : "";
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  CHECK(hc::probe_device_count() == 0);
  setenv("CUDA_VISIBLE_DEVICES", "-1", 1);
  CHECK(hc::probe_device_count() == 0);
  setenv("CUDA_VISIBLE_DEVICES", "0,-1,1", 1);
  CHECK(hc::probe_device_count() == 1);
  if (was)
    setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
  else
    unsetenv("CUDA_VISIBLE_DEVICES");
}

TEST_CASE("pinned memory round-trips through device memory on a stream", "[gpu][cuda]") {
  constexpr std::size_t n = (std::size_t{1} << 22) + 13;  // odd size on purpose
  hc::stream s(0);
  hc::pinned_buffer h_in(n), h_out(n);
  REQUIRE(h_in.get() != nullptr);
  REQUIRE(h_in.size() == n);
  std::mt19937_64 g(3);
  auto* in = static_cast<unsigned char*>(h_in.get());
  for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(g());
  std::memset(h_out.get(), 0, n);

  hc::device_buffer d(n);
  REQUIRE(d.size() == n);
  hc::copy_h2d_async(d.get(), h_in.get(), n, s);
  hc::memset_async(static_cast<char*>(d.get()) + 100, 0xAB, 1000, s);  // queued after the copy
  hc::copy_d2h_async(h_out.get(), d.get(), n, s);
  s.synchronize();
  CHECK(s.idle());

  std::vector<unsigned char> expected(in, in + n);
  std::memset(expected.data() + 100, 0xAB, 1000);
  CHECK(std::memcmp(h_out.get(), expected.data(), n) == 0);
}

TEST_CASE("an event orders work across two streams", "[gpu][cuda]") {
  // Stream a writes a large buffer several times and last of all a known value; stream b copies it
  // back after waiting for a's event, so it must see the final value everywhere.
  constexpr std::size_t n = std::size_t{256} << 20;
  hc::stream a(0), b(0);
  hc::device_buffer d(n);
  hc::pinned_buffer h(n);
  for (int i = 0; i < 8; ++i) hc::memset_async(d.get(), i, n, a);
  hc::memset_async(d.get(), 0x5A, n, a);
  hc::event done;
  CHECK(done.ready());  // nothing recorded yet
  done.record(a);
  done.make_wait(b);
  hc::copy_d2h_async(h.get(), d.get(), n, b);
  b.synchronize();
  CHECK(done.ready());
  const auto* p = static_cast<const unsigned char*>(h.get());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; i += 4093) wrong += p[i] != 0x5A;
  CHECK(p[n - 1] == 0x5A);
  CHECK(wrong == 0);
  a.synchronize();
}

TEST_CASE("timing events measure a stream's work", "[gpu][cuda]") {
  hc::stream s(0);
  hc::device_buffer d(std::size_t{64} << 20);
  hc::event start(true), stop(true);
  start.record(s);
  hc::memset_async(d.get(), 1, d.size(), s);
  stop.record(s);
  stop.synchronize();
  CHECK(stop.ready());
  CHECK(hc::elapsed_ms(start, stop) >= 0.0f);
}

TEST_CASE("moved-from CUDA owners hold nothing and empty sizes allocate nothing", "[gpu][cuda]") {
  hc::stream s(0);
  void* const handle = s.handle();
  REQUIRE(handle != nullptr);
  hc::stream t(std::move(s));
  CHECK(s.handle() == nullptr);
  CHECK(t.handle() == handle);
  hc::stream u(0);
  u = std::move(t);  // u's own stream is destroyed
  CHECK(u.handle() == handle);
  u.synchronize();

  hc::device_buffer d(1024);
  void* const p = d.get();
  hc::device_buffer e;
  e = std::move(d);
  CHECK(d.get() == nullptr);
  CHECK(d.size() == 0);
  CHECK(e.get() == p);
  CHECK(e.size() == 1024);

  hc::event ev;
  hc::event ev2(std::move(ev));
  CHECK(ev.handle() == nullptr);
  CHECK(ev2.handle() != nullptr);

  CHECK(hc::device_buffer(0).get() == nullptr);
  CHECK(hc::pinned_alloc(0) == nullptr);
  hc::pinned_free(nullptr);
  hc::pinned_buffer pb(std::size_t{1} << 20);
  hc::pinned_buffer pb2 = std::move(pb);
  CHECK(pb.get() == nullptr);
  CHECK(pb2.size() == std::size_t{1} << 20);
  // Zero-byte copies are no-ops, even with null pointers.
  hc::copy_h2d_async(nullptr, nullptr, 0, u);
  hc::copy_d2h_async(nullptr, nullptr, 0, u);
  hc::memset_async(nullptr, 0, 0, u);
  u.synchronize();
}

TEST_CASE("a failing CUDA call throws gpu_error naming the call", "[gpu][cuda]") {
  try {
    hc::set_device(hc::device_count());  // one past the last device
    FAIL("set_device did not throw");
  } catch (const hetpipe::gpu_error& e) {
    INFO(e.what());
    CHECK(e.code() != 0);
    CHECK(std::string(e.what()).find("cudaSetDevice") != std::string::npos);
  }
  // The error is not sticky: the runtime still works.
  hc::set_device(0);
  hc::stream s(0);
  s.synchronize();
}

#endif  // HETPIPE_WITH_CUDA

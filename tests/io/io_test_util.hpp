// Helpers shared by the io/ tests: temporary folders, random files, and a consumer that drains
// a reader the way the pipeline does (copy, release the slot, retire).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/reader.hpp"

namespace hetpipe::io::test {

namespace fs = std::filesystem;

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "hetpipe-io-test-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path = t;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (auto& e : fs::directory_iterator(path)) names.insert(e.path().filename().string());
    return names;
  }
};

inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(gen() & 0xff);
  return v;
}

// Random printable lines of lengths in [0, max_len], '\n'-terminated (the last one optionally not).
inline std::vector<std::byte> random_lines(std::size_t total, std::size_t max_len,
                                           std::uint64_t seed, bool final_newline = true) {
  std::mt19937_64 gen(seed);
  std::vector<std::byte> v;
  while (v.size() < total) {
    std::size_t len = gen() % (max_len + 1);
    for (std::size_t i = 0; i < len; ++i) v.push_back(std::byte('a' + gen() % 26));
    v.push_back(std::byte('\n'));
  }
  if (!final_newline && !v.empty()) v.back() = std::byte('z');
  return v;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> v(c.size());
  std::memcpy(v.data(), c.data(), c.size());
  return v;
}

struct got_chunk {
  chunk_info info;
  std::vector<std::byte> bytes;
  std::ptrdiff_t offset_in_slot;
};

struct run_result {
  std::vector<got_chunk> chunks;  // in delivery order
  std::exception_ptr error;
  int done_calls = 0;
  unsigned pool_available_after = 0;
  std::size_t unread = 0;             // chunks delivered unread, read by the consumer
  std::size_t unopened = 0;           // of those: delivered unopened (opened by the consumer)
  std::exception_ptr consumer_error;  // a consumer's read that failed

  // Chunks of input i, sorted by index.
  std::vector<got_chunk> of_input(std::size_t i) const {
    std::vector<got_chunk> v;
    for (auto& c : chunks)
      if (c.info.input == i) v.push_back(c);
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.info.index < b.info.index; });
    return v;
  }
  std::vector<std::byte> joined(std::size_t i) const {
    std::vector<std::byte> v;
    for (auto& c : of_input(i)) v.insert(v.end(), c.bytes.begin(), c.bytes.end());
    return v;
  }
};

// Runs a reader to the end with a consumer thread that copies each chunk, releases its slot and
// retires it, as the pipeline's lanes do.
// consumed(c), when given, runs on the consumer thread before each chunk is read and released.
inline run_result run_reader(std::vector<source> inputs, std::function<framing(std::size_t)> frame,
                             unsigned slots, std::size_t slot_bytes, reader_config cfg,
                             std::function<void(const chunk&)> consumed = nullptr) {
  slot_pool pool(slots, slot_bytes);
  run_result r;
  std::vector<std::string> paths;
  for (const auto& in : inputs) paths.push_back(in.path);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<chunk> q;
  bool finished = false;
  {
    reader rd(std::move(inputs), std::move(frame), pool, cfg);
    std::thread consumer([&] {
      for (;;) {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return !q.empty() || finished; });
        if (q.empty()) return;
        chunk c = q.front();
        q.pop_front();
        lk.unlock();
        if (consumed) consumed(c);
        if (needs_read(c)) ++r.unread;
        if (c.unopened) ++r.unopened;
        try {
          // a chunk delivered unread or unopened (reader_config::lane_reads)
          read_chunk(c, paths[c.info.input]);
        } catch (...) {
          drop_chunk(c);
          std::lock_guard lk2(mu);
          if (!r.consumer_error) r.consumer_error = std::current_exception();
        }
        got_chunk g{c.info, std::vector<std::byte>(c.data, c.data + c.info.size),
                    c.data - pool.data(c.slot)};
        pool.release(c.slot);
        rd.retire();
        std::lock_guard lk2(mu);
        r.chunks.push_back(std::move(g));
      }
    });
    rd.start(
        [&](chunk c) {
          std::lock_guard lk(mu);
          q.push_back(c);
          cv.notify_one();
        },
        [&](std::exception_ptr e) {
          std::lock_guard lk(mu);
          r.error = e;
          ++r.done_calls;
          finished = true;
          cv.notify_one();
        });
    rd.wait();
    consumer.join();
  }
  r.pool_available_after = pool.available();
  return r;
}

}  // namespace hetpipe::io::test

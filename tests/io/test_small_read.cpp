// io/small_read: the reads of key files, sum lists and age headers, which may be FIFOs or pipes
// that never deliver.
#include "io/small_read.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "hetpipe/error.hpp"
#include "io_test_util.hpp"

using namespace hetpipe;
using namespace hetpipe::io;
using namespace hetpipe::io::test;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> v;
  for_each_line(path, nullptr, [&](std::string& l) { v.push_back(l); });
  return v;
}

}  // namespace

TEST_CASE("read_small_file reads up to its limit, and a folder or a missing file is an io_error",
          "[io][small_read]") {
  temp_dir dir;
  write_text(dir.file("k"), std::string(40, 'x'));
  CHECK(read_small_file(dir.file("k"), nullptr, 100) == std::string(40, 'x'));
  CHECK(read_small_file(dir.file("k"), nullptr, 33) == std::string(33, 'x'));
  CHECK(read_small_file(dir.file("k"), nullptr, 40).size() == 40);
  write_text(dir.file("empty"), "");
  CHECK(read_small_file(dir.file("empty"), nullptr, 10).empty());
  // More than one buffer (64 KiB) of the reader's own.
  std::string big(200000, 'a');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 26);
  write_text(dir.file("big"), big);
  CHECK(read_small_file(dir.file("big"), nullptr, 1 << 20) == big);
  CHECK(read_small_file(dir.file("big"), nullptr, 70000) == big.substr(0, 70000));
  CHECK_THROWS_MATCHES(read_small_file(dir.path, nullptr, 10), io_error,
                       Catch::Matchers::Predicate<io_error>(
                           [](const io_error& e) { return e.reason() == "is a directory"; }));
  CHECK_THROWS_MATCHES(read_small_file(dir.file("none"), nullptr, 10), io_error,
                       Catch::Matchers::Predicate<io_error>([&](const io_error& e) {
                         return e.file() == dir.file("none") &&
                                e.reason() == "no such file or directory";
                       }));
  const int fd = open_input(dir.file("big"));
  CHECK_THROWS_AS(read_to_end(fd, "big", nullptr, 1000), input_error);
  ::close(fd);
}

TEST_CASE("for_each_line splits as std::getline does, across its read buffers",
          "[io][small_read]") {
  temp_dir dir;
  write_text(dir.file("a"), "one\ntwo\r\n\nlast");
  CHECK(lines_of(dir.file("a")) == std::vector<std::string>{"one", "two\r", "", "last"});
  write_text(dir.file("b"), "x\n");
  CHECK(lines_of(dir.file("b")) == std::vector<std::string>{"x"});
  write_text(dir.file("c"), "");
  CHECK(lines_of(dir.file("c")).empty());
  write_text(dir.file("d"), "\n\n");
  CHECK(lines_of(dir.file("d")) == std::vector<std::string>{"", ""});
  // Lines of every length from 0 to 300 000 bytes, so that they straddle the 64 KiB reads.
  std::string text;
  std::vector<std::string> want;
  for (std::size_t len = 0; len < 300000; len = len * 3 + 7) {
    want.push_back(std::string(len, char('a' + want.size() % 26)));
    text += want.back() + "\n";
  }
  write_text(dir.file("e"), text);
  CHECK(lines_of(dir.file("e")) == want);
  std::ifstream in(dir.file("e"), std::ios::binary);
  std::vector<std::string> by_getline;
  for (std::string l; std::getline(in, l);) by_getline.push_back(l);
  CHECK(by_getline == want);
}

TEST_CASE("A FIFO is opened without waiting for its writer, and the wait for data ends on cancel",
          "[io][small_read][cancel]") {
  temp_dir dir;
  const std::string fifo = dir.file("f");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::atomic<bool> cancel{false};
  SECTION("no writer ever comes") {
    auto got = std::async(std::launch::async, [&] {
      try {
        (void)read_small_file(fifo, &cancel, 32);
        return std::string("read");
      } catch (const cancelled&) {
        return std::string("cancelled");
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
    if (got.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
      const int fd = ::open(fifo.c_str(), O_WRONLY);  // the open was waiting: let it go
      if (fd >= 0) ::close(fd);
      FAIL("the read did not stop within 3 s of the cancel");
    }
    CHECK(got.get() == "cancelled");
  }
  SECTION("a writer that comes later is read as the blocking open would have") {
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      const int fd = ::open(fifo.c_str(), O_WRONLY);
      if (fd < 0) return;
      (void)!::write(fd, "one\n", 4);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      (void)!::write(fd, "two", 3);
      ::close(fd);
    });
    std::vector<std::string> v;
    for_each_line(fifo, &cancel, [&](std::string& l) { v.push_back(l); });
    writer.join();
    CHECK(v == std::vector<std::string>{"one", "two"});
  }
}

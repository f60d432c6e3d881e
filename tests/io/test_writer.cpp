// io::writer: ordered writes, atomic commit, clean abort, errors, standard output and signals.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "hetpipe/error.hpp"
#include "io/uv_util.hpp"
#include "io/writer.hpp"
#include "io_test_util.hpp"

using namespace hetpipe;
using namespace hetpipe::io;
using namespace hetpipe::io::test;

namespace {

struct pieces {
  std::vector<std::vector<std::byte>> parts;
  std::vector<std::byte> all;
  pieces(std::size_t n, std::uint64_t seed) {
    std::mt19937 gen{std::uint32_t(seed)};
    for (std::size_t i = 0; i < n; ++i) {
      parts.push_back(random_bytes(gen() % 5000, seed * 1000 + i));  // some are empty
      all.insert(all.end(), parts.back().begin(), parts.back().end());
    }
  }
};

bool is_temp_name(const std::string& name) {
  return name.find(".hetpipe-") != std::string::npos;
}

}  // namespace

TEST_CASE("Pieces given out of order are written in order", "[io][writer]") {
  temp_dir dir;
  pieces p(400, 1);
  SECTION("one thread, shuffled, with room for every piece") {
    std::vector<std::size_t> order(p.parts.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(2));
    writer w(dir.file("out"), unsigned(order.size()));
    for (auto i : order) w.write(i, p.parts[i]);
    w.commit();
    REQUIRE(w.bytes_written() == p.all.size());
  }
  SECTION("lanes that take pieces in order and finish them in any order, with back-pressure") {
    writer w(dir.file("out"), 8);
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> th;
    for (int t = 0; t < 4; ++t)
      th.emplace_back([&, t] {
        std::mt19937 gen(std::uint32_t(30 + t));
        for (std::size_t i; (i = next++) < p.parts.size();) {
          std::this_thread::sleep_for(std::chrono::microseconds(gen() % 300));
          w.write(i, p.parts[i]);
        }
      });
    for (auto& x : th) x.join();
    w.commit();
    REQUIRE(w.bytes_written() == p.all.size());
  }
  REQUIRE(read_file(dir.file("out")) == p.all);
  REQUIRE(dir.listing() == std::set<std::string>{"out"});
}

TEST_CASE("Each piece's memory comes back to the recycler once it reached the file",
          "[io][writer]") {
  temp_dir dir;
  pieces p(50, 3);
  std::mutex m;
  std::vector<std::size_t> sizes;  // of the buffers given back, in the order they came back
  std::vector<const std::byte*> given, back;
  {
    writer w(dir.file("out"), 8);
    w.recycle([&](std::vector<std::byte>&& v) {
      // The bytes are in the file already: everything before this piece, and this piece.
      std::lock_guard lock(m);
      back.push_back(v.data());
      sizes.push_back(v.size());
    });
    for (std::size_t i = 0; i < p.parts.size(); ++i) {
      std::vector<std::byte> copy = p.parts[i];
      {
        std::lock_guard lock(m);
        given.push_back(copy.data());
      }
      w.write(i, std::move(copy));
    }
    w.commit();
  }
  std::vector<std::size_t> want;
  for (const auto& part : p.parts) want.push_back(part.size());
  CHECK(sizes == want);  // every piece, in order, whole
  CHECK(back == given);  // the very buffers written, not copies
  REQUIRE(read_file(dir.file("out")) == p.all);
}

// The filter sees the pieces in order whatever order they came in, may resize them, and its end
// comes last; a filter that throws fails the output, which then does not appear.
TEST_CASE("A filter sees the pieces in order and ends the output", "[io][writer]") {
  temp_dir dir;
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{300}}) {
    INFO("pieces: " << n);  // 0 to 2: written by commit() itself (no loop thread started)
    pieces p(n, 7 + n);
    // Each byte twice, then a running count of the bytes seen, which only an ordered stream gives.
    std::vector<std::byte> want;
    std::size_t seen = 0;
    for (const auto& part : p.parts) {
      for (std::byte b : part) want.insert(want.end(), {b, b});
      seen += part.size();
      want.push_back(std::byte(seen & 0xff));
    }
    const std::string end = "end " + std::to_string(seen);
    for (char c : end) want.push_back(std::byte(c));
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(5));
    std::size_t count = 0;
    std::thread::id thread;
    bool one_thread = true;
    writer w(dir.file("out"), unsigned(std::max<std::size_t>(n, 1)));
    w.filter(
        [&](std::vector<std::byte>& piece) {
          if (count == 0 && thread == std::thread::id()) thread = std::this_thread::get_id();
          one_thread = one_thread && thread == std::this_thread::get_id();
          std::vector<std::byte> out;
          for (std::byte b : piece) out.insert(out.end(), {b, b});
          count += piece.size();
          out.push_back(std::byte(count & 0xff));
          piece = std::move(out);
        },
        [&] {
          const std::string e = "end " + std::to_string(count);
          std::vector<std::byte> tail;
          for (char c : e) tail.push_back(std::byte(c));
          return tail;
        });
    for (auto i : order) w.write(i, p.parts[i]);
    w.commit();
    CHECK(one_thread);
    CHECK(w.bytes_written() == want.size());
    REQUIRE(read_file(dir.file("out")) == want);
  }
  for (const std::size_t n : {std::size_t{1}, std::size_t{40}}) {
    INFO("throwing filter, pieces: " << n);
    pieces p(n, 9);
    writer w(dir.file("bad"), 8);
    w.filter(
        [](std::vector<std::byte>&) { throw std::runtime_error("the filter refused a piece"); },
        [] { return std::vector<std::byte>(); });
    try {
      for (std::size_t i = 0; i < n; ++i) w.write(i, p.parts[i]);
      w.commit();
      FAIL("the output was committed");
    } catch (const io_error& e) {
      CHECK(e.reason() == "the filter refused a piece");
    }
  }
  CHECK(dir.listing() == std::set<std::string>{"out"});
}

TEST_CASE("Back-pressure never blocks the piece the output waits for", "[io][writer]") {
  temp_dir dir;
  pieces p(12, 3);
  writer w(dir.file("out"), 2);
  // Each piece on its own thread, started in reverse order: the later ones fill the queue and
  // block, the earliest must still get in.
  std::vector<std::thread> th;
  for (std::size_t i = p.parts.size(); i-- > 0;) {
    th.emplace_back([&, i] { w.write(i, p.parts[i]); });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& x : th) x.join();
  w.commit();
  REQUIRE(read_file(dir.file("out")) == p.all);
}

TEST_CASE("The output appears only on commit and atomically replaces an old file", "[io][writer]") {
  temp_dir dir;
  auto old = random_bytes(100, 4);
  write_file(dir.file("out"), old);
  pieces p(5, 5);
  writer w(dir.file("out"));
  for (std::size_t i = 0; i < p.parts.size(); ++i) w.write(i, p.parts[i]);
  auto names = dir.listing();
  REQUIRE(names.size() == 2);  // the old file and the hidden temp beside it
  REQUIRE(std::count_if(names.begin(), names.end(), is_temp_name) == 1);
  REQUIRE(read_file(dir.file("out")) == old);
  w.commit();
  w.commit();  // a second commit does nothing
  REQUIRE(read_file(dir.file("out")) == p.all);
  REQUIRE(dir.listing() == std::set<std::string>{"out"});
  struct stat sb;
  REQUIRE(::stat(dir.file("out").c_str(), &sb) == 0);
  mode_t mask = ::umask(022);
  ::umask(mask);
  REQUIRE((sb.st_mode & 0777) == (0666 & ~mask));
}

TEST_CASE("A file replaced keeps its permission bits, from the temporary file on", "[io][writer]") {
  // As cp and age -o, which write into the file, keep them: a decrypted file over a private one
  // stays private (it came out 0644, the umask's, and world-readable). A new file gets the
  // umask's (above).
  temp_dir dir;
  for (const mode_t mode : {mode_t{0600}, mode_t{0640}, mode_t{0751}}) {
    INFO("mode " << std::oct << mode);
    write_file(dir.file("out"), random_bytes(10, 4));
    REQUIRE(::chmod(dir.file("out").c_str(), mode) == 0);
    pieces p(3, 7);
    writer w(dir.file("out"));
    for (std::size_t i = 0; i < p.parts.size(); ++i) w.write(i, p.parts[i]);
    struct stat sb;
    for (const auto& name : dir.listing())
      if (is_temp_name(name)) {
        REQUIRE(::stat(dir.file(name).c_str(), &sb) == 0);
        CHECK((sb.st_mode & 0777) == mode);
      }
    w.commit();
    REQUIRE(::stat(dir.file("out").c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == mode);
    CHECK(read_file(dir.file("out")) == p.all);
  }
  // Through a symbolic link: the file it names keeps its bits.
  REQUIRE(::chmod(dir.file("out").c_str(), 0600) == 0);
  REQUIRE(::symlink("out", dir.file("link").c_str()) == 0);
  writer l(dir.file("link"));
  l.write(0, random_bytes(5, 8));
  l.commit();
  struct stat sb;
  REQUIRE(::stat(dir.file("out").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
}

TEST_CASE("A symbolic link to a file is written through, and stays a link", "[io][writer]") {
  // As cp and age -o do; renamed onto the link, the output replaced the link with a file.
  temp_dir dir;
  std::filesystem::create_directory(dir.file("sub"));
  write_file(dir.file("sub/real"), random_bytes(10, 5));
  REQUIRE(::symlink("sub/real", dir.file("link").c_str()) == 0);
  pieces p(3, 6);
  writer w(dir.file("link"));
  for (std::size_t i = 0; i < p.parts.size(); ++i) w.write(i, p.parts[i]);
  w.commit();
  struct stat lsb;
  REQUIRE(::lstat(dir.file("link").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  CHECK(read_file(dir.file("sub/real")) == p.all);
  const auto names = dir.listing();
  CHECK(std::count_if(names.begin(), names.end(), is_temp_name) == 0);
  // A dangling link: the file it names is made, as age -o and a shell's > make it, and the link
  // stays; through a chain of links too, each relative to its own folder.
  REQUIRE(::symlink("sub/none", dir.file("dangling").c_str()) == 0);
  {
    writer d(dir.file("dangling"));
    d.write(0, p.parts[0]);
    d.commit();
  }
  REQUIRE(::lstat(dir.file("dangling").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  CHECK(read_file(dir.file("sub/none")) == p.parts[0]);
  REQUIRE(::symlink("next", dir.file("sub/first").c_str()) == 0);
  REQUIRE(::symlink("sub/first", dir.file("chain").c_str()) == 0);
  {
    writer d(dir.file("chain"));
    d.write(0, p.parts[1]);
    d.commit();
  }
  CHECK(read_file(dir.file("sub/next")) == p.parts[1]);
  REQUIRE(::lstat(dir.file("sub/first").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  // A loop of links, and a link into a folder that does not exist: refused, the links stay.
  REQUIRE(::symlink("loop_b", dir.file("loop_a").c_str()) == 0);
  REQUIRE(::symlink("loop_a", dir.file("loop_b").c_str()) == 0);
  REQUIRE_THROWS_WITH(writer(dir.file("loop_a")),
                      Catch::Matchers::Contains("cannot find the file this link names"));
  REQUIRE(::symlink("nowhere/file", dir.file("no_folder").c_str()) == 0);
  CHECK_THROWS_AS(writer(dir.file("no_folder")), hetpipe::io_error);
  REQUIRE(::lstat(dir.file("loop_a").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  REQUIRE(::lstat(dir.file("no_folder").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  // A link to a folder names a folder: refused, and the link stays.
  REQUIRE(::symlink("sub", dir.file("to_folder").c_str()) == 0);
  REQUIRE_THROWS_WITH(writer(dir.file("to_folder")), Catch::Matchers::Contains("is a directory"));
  REQUIRE(::lstat(dir.file("to_folder").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  // A link to a file that has no name left (a descriptor's link, as /dev/stdout is, to a deleted
  // file): written in place. The link used to be replaced (as root, /dev/stdout itself).
  const int fd = ::open(dir.file("gone").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "old bytes, longer than the output", 33) == 33);
  REQUIRE(::unlink(dir.file("gone").c_str()) == 0);
  REQUIRE(::symlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), dir.file("fd").c_str()) == 0);
  {
    writer g(dir.file("fd"));
    g.write(0, p.parts[0]);
    g.commit();
  }
  REQUIRE(::lstat(dir.file("fd").c_str(), &lsb) == 0);
  CHECK(S_ISLNK(lsb.st_mode));
  std::vector<std::byte> back(p.parts[0].size() + 64);
  const ssize_t n = ::pread(fd, back.data(), back.size(), 0);
  back.resize(n > 0 ? std::size_t(n) : 0);
  CHECK(back == p.parts[0]);  // the file's old bytes truncated, as cp truncates
  ::close(fd);
  const auto left = dir.listing();
  CHECK(std::count_if(left.begin(), left.end(), is_temp_name) == 0);
}

TEST_CASE("A FIFO or a device is written in place, never replaced", "[io][writer]") {
  // Renamed onto, the temporary file replaced the node: as root, `-o /dev/null` made /dev/null a
  // regular file.
  temp_dir dir;
  pieces p(3, 8);
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  REQUIRE(::symlink("fifo", dir.file("to-fifo").c_str()) == 0);
  for (const char* name : {"fifo", "to-fifo"}) {
    INFO(name);
    // Its reader first (not blocking), so that the writer's open finds one; the pieces fit the
    // pipe's buffer.
    const int rfd = ::open(dir.file("fifo").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rfd >= 0);
    {
      writer w(dir.file(name));
      for (std::size_t i = p.parts.size(); i-- > 0;) w.write(i, p.parts[i]);
      w.commit();
    }
    std::vector<std::byte> got(p.all.size() + 1);
    std::size_t n = 0;
    for (ssize_t r; (r = ::read(rfd, got.data() + n, got.size() - n)) > 0;) n += std::size_t(r);
    ::close(rfd);
    got.resize(n);
    CHECK(got == p.all);
    struct stat lsb;
    REQUIRE(::lstat(dir.file("fifo").c_str(), &lsb) == 0);
    CHECK(S_ISFIFO(lsb.st_mode));
    REQUIRE(::lstat(dir.file("to-fifo").c_str(), &lsb) == 0);
    CHECK(S_ISLNK(lsb.st_mode));
    const auto names = dir.listing();
    CHECK(std::count_if(names.begin(), names.end(), is_temp_name) == 0);
  }
  // A character device of the null driver, made here where this process may (root): written to,
  // it stays a device.
  if (::mknod(dir.file("null").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) == 0) {
    writer w(dir.file("null"));
    w.write(0, p.parts[0]);
    w.commit();
    struct stat lsb;
    REQUIRE(::lstat(dir.file("null").c_str(), &lsb) == 0);
    CHECK(S_ISCHR(lsb.st_mode));
  }
}

TEST_CASE("Abort and the destructor leave the folder as it was", "[io][writer]") {
  temp_dir dir;
  write_file(dir.file("keep"), random_bytes(10, 6));
  auto before = dir.listing();
  pieces p(20, 7);
  {
    writer w(dir.file("out"));
    for (std::size_t i = 0; i < 10; ++i) w.write(i, p.parts[i]);
  }
  REQUIRE(dir.listing() == before);
  {
    writer w(dir.file("out"));
    w.write(1, p.parts[1]);  // waits for 0 forever: abort must not
    w.abort();
    w.abort();
    REQUIRE(dir.listing() == before);
    REQUIRE_THROWS_AS(w.write(0, p.parts[0]), hetpipe::cancelled);
    REQUIRE_THROWS_AS(w.commit(), std::logic_error);
  }
  REQUIRE(dir.listing() == before);
}

TEST_CASE("abort() while another thread writes, or from several threads at once, ends cleanly",
          "[io][writer]") {
  // A write used to wake the writer's loop after letting go of its lock: an abort() in that gap
  // closed the loop, and the late wake-up made libuv abort the process (3 of 3 runs of this
  // shape). Two abort()s at once (lanes refusing chunks of one input) both joined the loop's
  // thread: a hang or a crash.
  temp_dir dir;
  pieces p(40, 8);
  for (int round = 0; round < 30; ++round) {
    writer w(dir.file("out"));
    std::atomic<int> written{0};
    std::thread producer([&] {
      try {
        for (std::size_t i = 0; i < p.parts.size(); ++i) {
          w.write(i, p.parts[i]);
          written++;
        }
      } catch (const hetpipe::cancelled&) {  // the abort came first
      } catch (const std::logic_error&) {    // the writer was finished meanwhile
      }
    });
    while (written < round % 7) std::this_thread::yield();
    std::thread other([&] { w.abort(); });
    w.abort();
    other.join();
    producer.join();
    REQUIRE(dir.listing().empty());
  }
}

TEST_CASE("A small output is written whole by commit(); a write after commit is an error",
          "[io][writer]") {
  temp_dir dir;
  const auto head = random_bytes(100, 5), body = random_bytes(300'000, 6);
  writer w(dir.file("out"));
  w.write(1, body);  // out of order: still written in order
  w.write(0, head);
  REQUIRE(dir.listing().size() == 1);  // the temporary file, empty so far
  w.commit();
  REQUIRE(w.bytes_written() == head.size() + body.size());
  std::vector<std::byte> want;
  want.reserve(head.size() + body.size());
  want.insert(want.end(), head.begin(), head.end());
  want.insert(want.end(), body.begin(), body.end());
  REQUIRE(read_file(dir.file("out")) == want);
  REQUIRE_THROWS_AS(w.write(2, head), std::logic_error);
  REQUIRE(dir.listing() == std::set<std::string>{"out"});
}

TEST_CASE("A missing piece is a logic error at commit and leaves nothing", "[io][writer]") {
  temp_dir dir;
  writer w(dir.file("out"));
  w.write(0, random_bytes(10, 8));
  w.write(2, random_bytes(10, 9));
  REQUIRE_THROWS_AS(w.commit(), std::logic_error);
  REQUIRE(dir.listing().empty());
}

TEST_CASE("A folder that cannot be written is an io_error at construction", "[io][writer]") {
  temp_dir dir;
  try {
    writer w(dir.file("no/such/folder/out"));
    FAIL("no error");
  } catch (const io_error& e) {
    REQUIRE(e.file() == dir.file("no/such/folder/out"));
    REQUIRE(e.code() == UV_ENOENT);
    REQUIRE(e.reason().find("no such file or directory") != std::string::npos);
  }
  ::mkdir(dir.file("folder").c_str(), 0755);
  REQUIRE_THROWS_AS(writer(dir.file("folder")), io_error);  // the destination is a directory
  if (::geteuid() != 0) {
    ::mkdir(dir.file("ro").c_str(), 0555);
    try {
      writer w(dir.file("ro/out"));
      FAIL("no error");
    } catch (const io_error& e) {
      REQUIRE(e.code() == UV_EACCES);
      REQUIRE(e.reason().find("permission denied") != std::string::npos);
    }
  } else {
    // root writes into a 0555 folder; a file standing where a folder should be refuses root too.
    write_file(dir.file("plain"), random_bytes(4, 10));
    try {
      writer w(dir.file("plain/out"));
      FAIL("no error");
    } catch (const io_error& e) {
      REQUIRE(e.code() == UV_ENOTDIR);
    }
  }
  auto names = dir.listing();
  REQUIRE(std::none_of(names.begin(), names.end(), is_temp_name));
}

TEST_CASE("A failed write is reported by write() or commit() and leaves nothing behind",
          "[io][writer]") {
  temp_dir dir;
  // RLIMIT_FSIZE makes writes past 64 KiB fail with EFBIG (SIGXFSZ ignored), for root too.
  struct rlimit old_limit;
  ::getrlimit(RLIMIT_FSIZE, &old_limit);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = {64 << 10, old_limit.rlim_max};
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  bool threw = false;
  std::string reason;
  // Many pieces go through the writer's loop; one large piece is written by commit() itself.
  const bool one_piece = GENERATE(false, true);
  INFO((one_piece ? "one 256 KiB piece" : "64 pieces of 4 KiB"));
  try {
    writer w(dir.file("out"), 4);
    if (one_piece)
      w.write(0, random_bytes(256 << 10, 99));
    else
      for (std::uint64_t i = 0; i < 64; ++i) w.write(i, random_bytes(4096, 100 + i));
    w.commit();
  } catch (const io_error& e) {
    threw = true;
    reason = e.reason();
    REQUIRE(e.file() == dir.file("out"));
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  REQUIRE(threw);
  REQUIRE(reason.find("write failed") == 0);
  REQUIRE(dir.listing().empty());
}

TEST_CASE("Standard output (dash) is written in order and directly", "[io][writer][stdout]") {
  temp_dir dir;
  pieces p(50, 11);
  std::cout.flush();
  std::fflush(stdout);
  int saved = ::dup(1);
  int fd = ::open(dir.file("captured").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  ::dup2(fd, 1);
  ::close(fd);
  std::uint64_t written = 0;
  {
    writer w("-", 64);
    for (std::size_t i = p.parts.size(); i-- > 0;) w.write(i, p.parts[i]);
    w.commit();
    written = w.bytes_written();
  }
  ::dup2(saved, 1);
  ::close(saved);
  REQUIRE(written == p.all.size());
  REQUIRE(read_file(dir.file("captured")) == p.all);
  REQUIRE(dir.listing() == std::set<std::string>{"captured"});
}

TEST_CASE("A second SIGINT removes the temporary files and exits with 130",
          "[io][writer][signal]") {
  temp_dir dir;
  std::cout.flush();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: a writer with data in flight, then two signals. Exit codes report what went wrong.
    static std::atomic<bool> flag{false};
    install_signal_handlers(&flag);
    writer w(dir.file("out"));
    w.write(0, random_bytes(1000, 12));
    w.write(1, random_bytes(1000, 13));
    ::raise(SIGINT);
    if (!flag.load()) ::_exit(2);  // the first signal only sets the flag
    int temps = 0;
    for (auto& e : fs::directory_iterator(dir.path)) temps += is_temp_name(e.path().filename());
    if (temps != 1) ::_exit(3);  // the temp is still there after the first signal
    ::raise(SIGINT);
    ::_exit(4);  // not reached
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 130);
  REQUIRE(dir.listing().empty());
}

TEST_CASE("With a grace, a process still running after the first signal ends as at a second one",
          "[io][writer][signal]") {
  temp_dir dir;
  std::cout.flush();
  const auto child = [&](bool reinstall) {
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int err = ::open(dir.file("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (err < 0 || ::dup2(err, 2) != 2) ::_exit(2);
      static std::atomic<bool> flag{false};
      install_signal_handlers(&flag, 1, "stopped\n");
      writer w(dir.file("out"));
      w.write(0, random_bytes(1000, 15));
      ::raise(SIGINT);
      if (!flag.load()) ::_exit(3);
      // Installed again (a caller that lives on after the job): the deadline is disarmed.
      if (reinstall) install_signal_handlers(&flag, 1, "stopped\n");
      for (int i = 0; i < 30; ++i) ::usleep(100000);  // blocked where no flag is looked at
      ::_exit(4);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return std::pair{WEXITSTATUS(status),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  };
  const auto [code, took] = child(false);
  CHECK(code == 130);
  CHECK(took < 2.5);  // 1 s, and the fork
  std::ifstream err(dir.file("stderr"));
  std::string line;
  std::getline(err, line);
  CHECK(line == "stopped");
  CHECK(dir.listing() == std::set<std::string>{"stderr"});  // the writer's temp is gone

  const auto [code2, took2] = child(true);
  CHECK(code2 == 4);
  CHECK(took2 >= 2.9);
}

TEST_CASE("remove_registered_temps_now unlinks the temps of live writers", "[io][writer][signal]") {
  temp_dir dir;
  writer a(dir.file("a")), b(dir.file("b"));
  a.write(0, random_bytes(10, 14));
  REQUIRE(dir.listing().size() == 2);
  remove_registered_temps_now();
  REQUIRE(dir.listing().empty());
  a.abort();
  b.abort();
  REQUIRE(dir.listing().empty());
}

TEST_CASE("Short writes are continued until the piece is written", "[io][writer]") {
  temp_dir dir;
  detail::max_bytes_per_call = 61;
  pieces p(30, 15);
  {
    writer w(dir.file("out"), 4);
    for (std::size_t i = 0; i < p.parts.size(); ++i) w.write(i, p.parts[i]);
    w.commit();
  }
  detail::max_bytes_per_call = std::size_t(1) << 30;
  REQUIRE(read_file(dir.file("out")) == p.all);
}

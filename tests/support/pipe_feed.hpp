// A pipe fed by a thread of its own: tests of streams of unknown length read its read end (as an
// input's descriptor, or by the path /dev/fd/N).
//
//   test::pipe_feed feed(bytes, 4096, std::chrono::milliseconds(30));  // 4 KiB every 30 ms
//   run(op, {{"a pipe", 0, std::nullopt, feed.read_fd()}}, ...);
//   feed.finish();  // closes the read end, joins the writer
#pragma once

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <limits>
#include <span>
#include <stdexcept>
#include <thread>

namespace hetpipe::test {

class pipe_feed {
 public:
  // Writes `data` in pieces of `piece` bytes, `pause` between them, then closes the write end.
  pipe_feed(std::span<const std::byte> data,
            std::size_t piece = std::numeric_limits<std::size_t>::max(),
            std::chrono::milliseconds pause = {}) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    read_fd_ = fds[0];
    writer_ = std::thread([data, piece, pause, w = fds[1]] {
      // A job that fails without reading closes the read end: EPIPE then ends this thread
      // (SIGPIPE, blocked here, would end the process).
      sigset_t pipe_signal;
      sigemptyset(&pipe_signal);
      sigaddset(&pipe_signal, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
      for (std::size_t at = 0; at < data.size(); at += piece) {
        if (at > 0) std::this_thread::sleep_for(pause);
        const std::size_t n = std::min(piece, data.size() - at);
        for (std::size_t done = 0; done < n;) {
          const ssize_t k = ::write(w, data.data() + at + done, n - done);
          if (k <= 0) {
            ::close(w);
            return;
          }
          done += static_cast<std::size_t>(k);
        }
      }
      ::close(w);
    });
  }
  ~pipe_feed() { finish(); }
  pipe_feed(const pipe_feed&) = delete;
  pipe_feed& operator=(const pipe_feed&) = delete;

  int read_fd() const { return read_fd_; }
  // Closes the read end (a writer still writing then stops) and joins the writer.
  void finish() {
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
    if (writer_.joinable()) writer_.join();
  }

 private:
  int read_fd_ = -1;
  std::thread writer_;
};

}  // namespace hetpipe::test

// Finished outputs of a transform are committed (their writes, fsync, rename, folder fsync) on
// threads of their own, not on the lane that delivered the last chunk: on ext4 an fsync takes the
// better part of a millisecond, and fsyncs from several threads share journal commits (500 small
// images to ext4 on the 2-core box: 0.75 s with lanes committing, 0.29 s with no fsync at all).
// A small output's writer keeps its bytes until its commit writes them (io/writer.cpp), so these
// threads also bound how many outputs are written at once: on the H200 box, 8192^2 images took
// 22-50 ms (most 27-33) per 64 MiB write into /dev/shm, back to back on the four threads there
// were (2026-11-27 trace), while new tmpfs pages cost a thread about 2 GB/s on either machine.
//
// At most `max_pending` outputs wait, holding at most `max_bytes` of output not yet written, or
// one output whatever its size. The first failure fails the job through on_error and is rethrown
// by finish().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace hetpipe::detail {

class committer {
 public:
  committer(unsigned threads, std::size_t max_pending, std::uint64_t max_bytes,
            std::function<void(std::exception_ptr)> on_error)
      : threads_(threads == 0 ? 1 : threads),
        max_pending_(max_pending),
        max_bytes_(max_bytes),
        on_error_(std::move(on_error)) {}
  ~committer() {
    try {
      finish();
    } catch (...) {  // already reported through on_error
    }
  }
  committer(const committer&) = delete;
  committer& operator=(const committer&) = delete;

  // Queues `commit` (an output holding `bytes` not yet written), blocking while the queue is
  // full; after finish(), runs it here.
  void submit(std::function<void()> commit, std::uint64_t bytes) {
    std::unique_lock lock(mutex_);
    if (closing_) {  // finished already: commit here
      lock.unlock();
      commit();
      return;
    }
    if (workers_.empty())
      for (unsigned t = 0; t < threads_; ++t) workers_.emplace_back([this] { work(); });
    room_.wait(lock, [&] {
      return queue_.size() < max_pending_ && (held_ == 0 || held_ + bytes <= max_bytes_);
    });
    queue_.push_back({std::move(commit), bytes});
    held_ += bytes;
    ready_.notify_one();
  }

  // Commits what is queued and waits for it; rethrows the first failure.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    ready_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      waiting w = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      std::exception_ptr failure;
      try {
        w.commit();
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      held_ -= w.bytes;  // written (or dropped) now
      room_.notify_all();
      if (failure) {
        if (!error_) error_ = failure;
        lock.unlock();
        on_error_(failure);
        lock.lock();
      }
    }
  }

  const unsigned threads_;
  const std::size_t max_pending_;
  const std::uint64_t max_bytes_;
  std::function<void(std::exception_ptr)> on_error_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  struct waiting {
    std::function<void()> commit;
    std::uint64_t bytes;  // its output bytes not yet written when it was queued
  };
  std::deque<waiting> queue_;
  std::uint64_t held_ = 0;  // bytes of the outputs queued or being committed
  bool closing_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace hetpipe::detail

// Errors thrown at hetpipe's public API. Every error names the file it concerns (or is empty when
// none does) and a reason a person can read; what() is "FILE: reason", ready for "hetpipe: " +
// what().
#pragma once

#include <cctype>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hetpipe {

class error : public std::runtime_error {
 public:
  error(std::string file, std::string reason)
      : std::runtime_error(file.empty() ? reason : file + ": " + reason),
        file_(std::move(file)),
        reason_(std::move(reason)) {}
  const std::string& file() const noexcept { return file_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_;
  std::string reason_;
};

// Reading or writing failed; code() is the negative libuv error number (uv_err_name names it).
class io_error : public error {
 public:
  io_error(std::string file, std::string reason, int code = 0)
      : error(std::move(file), std::move(reason)), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// The input is not what the operator accepts (bad header, wrong size, unknown dtype...).
class input_error : public error {
 public:
  using error::error;
};

// Thrown by a transform operator for one input it cannot process (a malformed image in a batch):
// that input gets no output, the job goes on with the others, and run() lists it in
// job_report::skipped. Other errors stop the whole job.
class input_skipped : public input_error {
 public:
  using input_error::input_error;
};

// A CUDA call failed, or a GPU was asked for where there is none; code() is the cudaError_t value.
class gpu_error : public error {
 public:
  gpu_error(std::string reason, int code = 0) : error("", std::move(reason)), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// Options or arguments that cannot be honoured (file: the input they cannot be honoured for).
class usage_error : public error {
 public:
  explicit usage_error(std::string reason) : error("", std::move(reason)) {}
  usage_error(std::string file, std::string reason) : error(std::move(file), std::move(reason)) {}
};

// strerror(err) starting in lower case, as reasons read: "no such file or directory".
inline std::string errno_reason(int err) {
  std::string reason = std::strerror(err);
  if (!reason.empty())
    reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  return reason;
}

// The job was cancelled (SIGINT/SIGTERM or options::cancel).
class cancelled : public error {
 public:
  cancelled() : error("", "cancelled") {}
};

}  // namespace hetpipe

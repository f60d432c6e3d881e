// hetpipe::encrypt / decrypt: the age v1 payload as a transform.
//
// Encryption: the header (stanzas, MAC) and the 16-byte payload nonce are the output's prologue;
// a pipeline chunk at payload offset o holds age chunks o / 64 KiB, ... and is sealed as a whole
// (host::age::seal_chunks on a CPU lane, the ChaCha20-Poly1305 kernel on a GPU lane); the last
// age chunk of the input carries the last flag. Chunk sizes are multiples of 64 KiB.
// Decryption: the header is read, an identity or the passphrase unwraps the file key, the MAC is
// checked, and the payload (after header and nonce) goes through the pipeline in chunks of whole
// sealed chunks (64 KiB + 16): every chunk is authenticated before any of its bytes are handed to
// the ordered writer, and any failure fails the job (the temporary output is removed).
// Armor: encryption armors the output in order on its way to the file (armor_filter, an
// output_filter); decryption decodes an armored input on a thread of its own (dearmor_feed) into
// a socket pair that the header reader and the pipeline read as they read a pipe.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hetpipe/age.hpp>
#include <hetpipe/error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include "host/age.hpp"
#include "io/small_read.hpp"
#include "io/writer.hpp"
#if HETPIPE_WITH_CUDA
#include "cuda/chacha_kernels.hpp"
#include "cuda/runtime.hpp"
#endif

namespace hetpipe {
namespace {

namespace age = host::age;

// An identity or recipients file, which may be a FIFO or a terminal: the wait for it stops when
// the job is cancelled.
constexpr std::size_t max_key_file = std::size_t{64} << 20;
// The first age chunk (by its counter) whose tag did not verify, on a CPU or a GPU lane.
input_error auth_failure(const std::string& file, std::uint64_t counter) {
  return input_error(file, "payload chunk " + std::to_string(counter) +
                               " failed authentication: the file was modified, truncated or "
                               "extended");
}

// "-" is standard input, as with age's -R - and -i - (check_stdin_once: not the data's too).
std::string read_text_file(const std::string& path, const std::atomic<bool>* cancel) {
  if (path == "-") return io::read_to_end(0, path, cancel, max_key_file);
  const io::unique_fd f(io::open_input(path));
  return io::read_to_end(f.get(), path, cancel, max_key_file);
}

// Standard input holds one thing: the data, or the recipients (-R -) or identities (-i -), once.
void check_stdin_once(const std::string& input, const std::vector<std::string>& files,
                      const char* what) {
  const auto n = std::count(files.begin(), files.end(), std::string("-"));
  if (n > 1 || (n == 1 && input == "-"))
    throw usage_error(std::string("standard input can hold the ") + what +
                      " or the data, once: name a file for the other");
}

#if HETPIPE_WITH_CUDA
// A GPU lane's half of seal_op / open_op: one ChaCha20-Poly1305 launch over all the age chunks of
// a pipeline chunk, the result (and, when opening, each chunk's verdict) copied back on the lane's
// stream. collect() refuses a chunk whose tag did not verify before its bytes go anywhere.
class aead_device final : public device_transformer {
 public:
  aead_device(bool sealing, const age::stream_key& key, std::string file, std::size_t max_out,
              unsigned buffers)
      : sealing_(sealing), key_(key), file_(std::move(file)) {
    for (unsigned b = 0; b < buffers; ++b) {
      auto s = std::make_unique<slot>();
      s->d_out = cuda::device_buffer(max_out);
      s->h_out = cuda::pinned_buffer(std::max<std::size_t>(1, max_out));
      if (!sealing) {
        const std::size_t max_chunks = max_out / age::chunk_size + 2;
        s->d_ok = cuda::device_buffer(max_chunks * sizeof(std::uint32_t));
        s->h_ok = cuda::pinned_buffer(max_chunks * sizeof(std::uint32_t));
      }
      slots_.push_back(std::move(s));
    }
  }
  void launch(std::span<const chunk_info> infos, std::span<const std::size_t> offsets,
              const std::byte* d_batch, stream_ref stream, unsigned buffer) override {
    const chunk_info& info = infos[0];  // max_batch() == 1
    const std::byte* d_data = d_batch + offsets[0];
    slot& s = *slots_[buffer];
    const std::size_t n = info.size;
    cuda::aead_batch b;
    b.final_is_last = info.last;
    if (sealing_) {
      b.first_counter = info.offset / age::chunk_size;
      age::check_seal_lengths(n, info.last, b.first_counter);  // as on the CPU
      // The reader never hands over an empty chunk (an empty input is sealed whole on the host).
      if (n == 0) throw usage_error("an empty age payload has no GPU path");
      b.chunks = static_cast<std::uint32_t>((n + age::chunk_size - 1) / age::chunk_size);
      b.last_len = static_cast<std::uint32_t>(n - (std::size_t{b.chunks} - 1) * age::chunk_size);
      s.out_bytes = cuda::sealed_bytes(b);
      s.ws.seal(key_.bytes.data(), b, d_data, s.d_out.get(), stream.handle);
    } else {
      b.first_counter = info.offset / age::sealed_chunk_size;
      try {  // the lengths an age file can have, as on the CPU
        s.out_bytes = age::opened_size(n, info.last, b.first_counter);
      } catch (const error& e) {
        throw input_error(file_, e.reason() + " (truncated or damaged file)");
      }
      b.chunks =
          static_cast<std::uint32_t>((n + age::sealed_chunk_size - 1) / age::sealed_chunk_size);
      b.last_len = static_cast<std::uint32_t>(
          n - (std::size_t{b.chunks} - 1) * age::sealed_chunk_size - age::tag_len);
      s.chunks = b.chunks;
      s.first = b.first_counter;
      s.ws.open(key_.bytes.data(), b, d_data, s.d_out.get(),
                static_cast<std::uint32_t*>(s.d_ok.get()), stream.handle);
      mark_copy_back(stream);
      cuda::copy_d2h_async(s.h_ok.get(), s.d_ok.get(), b.chunks * sizeof(std::uint32_t),
                           stream.handle);
    }
    if (sealing_) mark_copy_back(stream);
    cuda::copy_d2h_async(s.h_out.get(), s.d_out.get(), s.out_bytes, stream.handle);
  }
  void collect(const chunk_info&, std::size_t, unsigned buffer,
               std::vector<std::byte>& out) override {
    const slot& s = *slots_[buffer];
    if (!sealing_) {
      const auto* ok = static_cast<const std::uint32_t*>(s.h_ok.get());
      for (std::uint32_t c = 0; c < s.chunks; ++c)
        if (ok[c] != 1) throw auth_failure(file_, s.first + c);
    }
    const auto* h = static_cast<const std::byte*>(s.h_out.get());
    out.insert(out.end(), h, h + s.out_bytes);
  }

 private:
  struct slot {
    cuda::aead_workspace ws;
    cuda::device_buffer d_out, d_ok;
    cuda::pinned_buffer h_out, h_ok;
    std::size_t out_bytes = 0;
    std::uint32_t chunks = 0;
    std::uint64_t first = 0;
  };
  bool sealing_;
  age::stream_key key_;
  std::string file_;
  std::vector<std::unique_ptr<slot>> slots_;
};
#endif

// The armor of a whole output, line by line as its pieces come in order.
class armor_filter final : public output_filter {
 public:
  void put(std::vector<std::byte>& piece) override {
    text_.clear();
    a_.put(reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size(), text_);
    assign(piece);
  }
  void finish(std::vector<std::byte>& tail) override {
    text_.clear();
    a_.finish(text_);
    assign(tail);
  }

 private:
  void assign(std::vector<std::byte>& to) const {
    to.resize(text_.size());
    std::memcpy(to.data(), text_.data(), text_.size());
  }
  age::armorer a_;
  std::string text_;
};

class seal_op final : public transform_op {
 public:
  seal_op(std::vector<std::byte> prologue, const age::stream_key& key, bool armor)
      : prologue_(std::move(prologue)), key_(key), armor_(armor) {}
  std::unique_ptr<output_filter> make_output_filter(std::size_t) const override {
    if (!armor_) return nullptr;
    return std::make_unique<armor_filter>();
  }
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    out.resize(age::sealed_size(data.size(), info.last));
    age::seal_chunks(key_, info.offset / age::chunk_size, info.last,
                     reinterpret_cast<const std::uint8_t*>(data.data()), data.size(),
                     reinterpret_cast<std::uint8_t*>(out.data()));
  }
  static std::size_t max_output(std::size_t chunk) {
    return chunk + age::tag_len * (chunk / age::chunk_size + 1);
  }
  void prologue(std::size_t, std::vector<std::byte>& out) const override {
    out.insert(out.end(), prologue_.begin(), prologue_.end());
  }
  void empty_output(std::size_t, std::vector<std::byte>& out) const override {
    out.resize(age::sealed_size(0, true));
    age::seal_chunks(key_, 0, true, nullptr, 0, reinterpret_cast<std::uint8_t*>(out.data()));
  }
  std::unique_ptr<device_transformer> make_device_transformer(int, std::size_t max_chunk,
                                                              unsigned buffers) const override {
#if HETPIPE_WITH_CUDA
    return std::make_unique<aead_device>(true, key_, std::string(), max_output(max_chunk), buffers);
#else
    (void)max_chunk, (void)buffers;
    return nullptr;
#endif
  }

 private:
  std::vector<std::byte> prologue_;
  age::stream_key key_;
  bool armor_;
};

class open_op final : public transform_op {
 public:
  open_op(std::string file, const age::stream_key& key) : file_(std::move(file)), key_(key) {}
  framing frame(std::size_t) const override { return framing::records(1); }
  void host(const chunk_info& info, std::span<const std::byte> data,
            std::vector<std::byte>& out) const override {
    const std::uint64_t first = info.offset / age::sealed_chunk_size;
    out.resize(opened_size(info, data.size()));
    std::uint64_t failed = 0;
    if (!age::open_chunks(key_, first, info.last,
                          reinterpret_cast<const std::uint8_t*>(data.data()), data.size(),
                          reinterpret_cast<std::uint8_t*>(out.data()), &failed))
      throw auth_failure(file_, failed);
  }
  void empty_output(std::size_t, std::vector<std::byte>&) const override {
    throw input_error(file_, "the payload is missing: the file is truncated");
  }
  std::unique_ptr<device_transformer> make_device_transformer(int, std::size_t max_chunk,
                                                              unsigned buffers) const override {
#if HETPIPE_WITH_CUDA
    return std::make_unique<aead_device>(false, key_, file_, max_chunk, buffers);
#else
    (void)max_chunk, (void)buffers;
    return nullptr;
#endif
  }

  std::size_t opened_size(const chunk_info& info, std::size_t n) const {
    try {
      return age::opened_size(n, info.last, info.offset / age::sealed_chunk_size);
    } catch (const error& e) {
      throw input_error(file_, e.reason() + " (truncated or damaged file)");
    }
  }

 private:
  std::string file_;
  age::stream_key key_;
};

// Options for the payload: chunks of whole age chunks (plain or sealed), within the sizes options
// accept (1 GiB of plaintext is more than 1 GiB sealed).
options payload_options(const options& opt, std::size_t unit) {
  options o = opt;
  const std::size_t want = o.chunk_size ? o.chunk_size : (std::size_t{4} << 20);
  o.chunk_size = std::clamp<std::size_t>(want / age::chunk_size, 1, max_chunk_size / unit) * unit;
  return o;
}

std::vector<age::recipient> collect_recipients(const encrypt_spec& spec,
                                               const std::atomic<bool>* cancel) {
  std::vector<age::recipient> to;
  for (const auto& r : spec.recipients) {
    try {
      to.push_back(age::parse_recipient(r));
    } catch (const error& e) {
      // Named by the text given, but for one that holds a secret key anywhere (a whole key file
      // given as -r, say), which no message shows.
      std::string upper = r;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      const bool secret = upper.find("AGE-SECRET-KEY-") != std::string::npos;
      throw input_error(secret ? "-r" : r, e.reason());
    }
  }
  for (const auto& f : spec.recipient_files) {
    const std::size_t before = to.size();
    const std::string text = read_text_file(f, cancel);
    std::istringstream lines(text);
    std::size_t n = 0;
    for (std::string line; std::getline(lines, line);) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto b = line.find_first_not_of(" \t");
      if (b == std::string::npos || line[b] == '#') continue;
      const auto e = line.find_last_not_of(" \t");
      try {
        to.push_back(age::parse_recipient(line.substr(b, e - b + 1)));
      } catch (const error& err) {
        throw input_error(f + ":" + std::to_string(n), err.reason());
      }
    }
    // As age: a recipients file must name one (an empty one is most likely the wrong file).
    if (to.size() == before) throw input_error(f, "no recipients in this file");
  }
  return to;
}

// The file's header and payload nonce, read without consuming more of a stream than they take.
struct head_info {
  std::vector<std::uint8_t> bytes;  // header, then the 16-byte nonce
  age::parsed_header parsed;
  bool armored = false;
  std::string text;  // armored: the text read so far (the descriptor goes on after it)
  // A pipe, FIFO or device named by its path (not "-"): its header was read from a stream, which
  // the pipeline reads on from where read_head stopped (from offset 0, as standard input). The
  // descriptor (any input's but standard input's) stays open until then: closing a FIFO's only
  // reader would end its writer.
  bool stream = false;
  io::unique_fd held;
  // A stream's descriptor the pipeline goes on from: held's, or a dearmored stream's (-1: the
  // path is opened again, or "-" is standard input).
  int from = -1;
};

// `dearmored` (>= 0): the stream of an armored input's binary form, which must not be armored
// again (age says such a file is not an age file).
head_info read_head(const std::string& input, const std::atomic<bool>* cancel, int dearmored = -1) {
  head_info h;
  const bool is_stdin = input == "-";
  // A FIFO's open does not wait for its writer, nor do the reads below once the job is cancelled.
  const int fd = dearmored >= 0 ? dearmored : is_stdin ? 0 : io::open_input(input);
  if (!is_stdin && dearmored < 0) h.held = io::unique_fd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw io_error(input, errno_reason(errno), -errno);
  if (S_ISDIR(st.st_mode)) throw io_error(input, "is a directory", -EISDIR);
  h.stream = is_stdin || !S_ISREG(st.st_mode);
  if (h.stream && (dearmored >= 0 || !is_stdin)) h.from = fd;
  // A stream byte by byte: it must not be read past the nonce (the pipeline reads the rest).
  // Headers are a few hundred bytes. A file in pieces (the pipeline reads it from an offset).
  std::vector<std::uint8_t> piece(h.stream ? 1 : 1 << 16);
  std::size_t piece_at = 0, piece_len = 0;
  const auto next_byte = [&](std::uint8_t& b) {
    if (piece_at == piece_len) {
      piece_len = io::read_some(fd, piece.data(), piece.size(), input, cancel);
      piece_at = 0;
      if (piece_len == 0) return false;
    }
    b = piece[piece_at++];
    return true;
  };
  std::optional<std::size_t> end;
  constexpr std::size_t max_header = 1 << 20;
  // Whitespace before an armored file's BEGIN line is allowed (age::dearmor): the armor is looked
  // for in the first 64 bytes after it.
  std::size_t lead = 0;        // the whitespace the input starts with
  std::size_t line_start = 0;  // of the line being read
  constexpr std::string_view intro = "age-encryption.org/";
  while (!end) {
    std::uint8_t b;
    if (!next_byte(b)) {
      if (h.bytes.empty()) throw input_error(input, "empty file: not an age file");
      break;
    }
    h.bytes.push_back(b);
    if (lead + 1 == h.bytes.size() && (b == ' ' || b == '\t' || b == '\r' || b == '\n')) ++lead;
    if (dearmored < 0 && h.bytes.size() - lead <= 64 && h.bytes.size() - lead >= 11 &&
        age::is_armored(h.bytes.data(), h.bytes.size())) {
      h.armored = true;
      h.text.assign(h.bytes.begin(), h.bytes.end());
      h.text.append(reinterpret_cast<const char*>(piece.data()) + piece_at, piece_len - piece_at);
      return h;
    }
    // Each line is looked at once, as it ends (scanning the header from its start at each line
    // took 40 s over 200 KB of short lines: a CPU a hostile file could hold for ever).
    if (b == '\n') {
      end = age::find_header_end(h.bytes.data(), h.bytes.size(), line_start);
      line_start = h.bytes.size();
    }
    // Neither armor (its BEGIN line comes within 64 bytes of the whitespace before it) nor the
    // binary header's first line: not an age file, said now rather than after 1 MiB of reading
    // ("header longer than 1 MiB" for any large file).
    if (h.bytes.size() - lead > 64 || (b == '\n' && lead == 0)) {
      const std::size_t n = std::min(h.bytes.size(), intro.size());
      if (std::string_view(reinterpret_cast<const char*>(h.bytes.data()), n) !=
          intro.substr(0, n)) {
        std::vector<std::uint8_t> first(h.bytes.begin(), h.bytes.begin() + std::ptrdiff_t(n));
        first.push_back('\n');
        age::parse_header(first.data(), first.size(), input);  // throws, saying why
      }
    }
    if (h.bytes.size() > max_header) throw input_error(input, "header longer than 1 MiB");
  }
  if (!end) {
    // Not an age header: let the parser say why.
    age::parse_header(h.bytes.data(), h.bytes.size(), input);
    throw input_error(input, "truncated header");
  }
  h.parsed = age::parse_header(h.bytes.data(), h.bytes.size(), input);
  for (std::size_t k = 0; k < age::nonce_len; ++k) {
    std::uint8_t b;
    if (!next_byte(b)) throw input_error(input, "truncated after the header (no payload nonce)");
    h.bytes.push_back(b);
  }
  return h;
}

// An armored input's binary form, made as it is read by a thread of its own and sent into one end
// of a socket pair whose other end the header reader and then the pipeline read as a stream:
// memory stays that of a line and a read, whatever the input's size, and the payload is still
// decrypted chunk-parallel. The last byte goes only once the END line has come: a payload cut
// short by bad armor cannot authenticate, so no output file is committed from such an input
// (standard output has had the chunks that verified before, as for a binary file), and the
// armor's own error is the one reported (error()).
class dearmor_feed {
 public:
  dearmor_feed(head_info& h, const std::string& input)
      : input_(input), text_(std::move(h.text)), held_(std::move(h.held)) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw io_error(input, "cannot make a socket pair: " + errno_reason(errno), -errno);
    read_end_ = io::unique_fd(sv[0]);
    write_end_ = io::unique_fd(sv[1]);
    stop_ = io::unique_fd(::eventfd(0, EFD_CLOEXEC));
    if (stop_.get() < 0)
      throw io_error(input, "cannot make an eventfd: " + errno_reason(errno), -errno);
    thread_ = std::thread([this] { work(); });
  }
  ~dearmor_feed() { stop(); }
  dearmor_feed(const dearmor_feed&) = delete;
  dearmor_feed& operator=(const dearmor_feed&) = delete;

  int fd() const { return read_end_.get(); }
  // Ends the thread (a read it waits in, a send the reader no longer takes) and waits for it.
  void stop() {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    ::shutdown(read_end_.get(), SHUT_RDWR);
    thread_.join();
  }
  // What made the binary form end early (bad armor, a read error), after stop(); null if nothing.
  std::exception_ptr error() const { return error_; }

 private:
  struct reader_gone {};  // the job stopped reading: its own error (or success) stands
  void send_all(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::send(write_end_.get(), p, n, MSG_NOSIGNAL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EPIPE || errno == ECONNRESET)) throw reader_gone{};
      if (r < 0)
        throw io_error(input_, "cannot pass its decoded armor on: " + errno_reason(errno), -errno);
      p += r;
      n -= std::size_t(r);
    }
  }
  // out but its last byte; that one stays in out.
  void send_held_back(std::vector<std::uint8_t>& out) {
    if (out.size() < 2) return;
    send_all(out.data(), out.size() - 1);
    out.front() = out.back();
    out.resize(1);
  }
  void work() {
    try {
      age::dearmorer d(input_);
      std::vector<std::uint8_t> out;
      d.put(text_, out);
      text_ = {};
      send_held_back(out);
      std::vector<char> buf(1 << 20);
      for (;;) {
        const int in = held_.get() >= 0 ? held_.get() : 0;  // standard input is not held
        const std::int64_t got = io::poll_read(in, buf.data(), buf.size(), stop_.get(), -1);
        if (got == -ECANCELED) break;  // the job ended first: its error or cancellation stands
        if (got < 0) throw io_error(input_, errno_reason(int(-got)), int(got));
        if (got == 0) {
          d.finish(out);
          send_all(out.data(), out.size());
          break;
        }
        d.put({buf.data(), std::size_t(got)}, out);
        send_held_back(out);
      }
    } catch (const reader_gone&) {
    } catch (...) {
      error_ = std::current_exception();
    }
    write_end_ = io::unique_fd();  // the end of the stream
  }

  std::string input_;
  std::string text_;
  io::unique_fd held_;
  io::unique_fd read_end_, write_end_, stop_;
  std::exception_ptr error_;
  std::thread thread_;
};

std::optional<age::file_key> unwrap_key_of(const std::string& input, const age::header& hdr,
                                           const decrypt_spec& spec,
                                           const std::atomic<bool>* cancel) {
  age::check_scrypt_alone(hdr);
  const bool scrypt = hdr.stanzas.size() == 1 && hdr.stanzas[0].type == "scrypt";
  if (scrypt) {
    if (!spec.passphrase)
      throw input_error(input, "encrypted with a passphrase: give the passphrase, not -i");
    auto fk = age::unwrap_scrypt(hdr.stanzas[0], *spec.passphrase, spec.max_scrypt_log2_work);
    if (!fk) throw input_error(input, "wrong passphrase");
    return fk;
  }
  if (spec.identity_files.empty())
    throw input_error(input, "encrypted to recipients: give an identity file (-i)");
  std::vector<age::identity> ids;
  for (const auto& f : spec.identity_files) {
    auto some = age::parse_identity_file(read_text_file(f, cancel), f);
    for (auto& id : some) ids.push_back(id);
  }
  auto fk = age::unwrap(hdr, ids);
  if (!fk) throw input_error(input, "no identity matched any of the file's recipients");
  return fk;
}

// The file key; a malformed stanza (host/age reports it without a file: the stanza does not know
// where it came from) is an error of this input.
std::optional<age::file_key> unwrap_key(const std::string& input, const age::header& hdr,
                                        const decrypt_spec& spec, const std::atomic<bool>* cancel) {
  try {
    return unwrap_key_of(input, hdr, spec, cancel);
  } catch (const input_error& e) {
    if (!e.file().empty()) throw;
    throw input_error(input, e.reason());
  }
}

}  // namespace

void encrypt(const std::string& input, const std::string& output, const encrypt_spec& spec,
             const options& opt, job_report* report) {
  check_stdin_once(input, spec.recipient_files, "recipients (-R -)");
  std::vector<age::stanza> stanzas;
  age::file_key fk = age::generate_file_key();
  if (spec.fixed_file_key)
    std::copy(spec.fixed_file_key->begin(), spec.fixed_file_key->end(), fk.bytes.begin());
  const auto to = collect_recipients(spec, opt.cancel);
  if (spec.passphrase) {
    if (!to.empty()) throw usage_error("a passphrase cannot be combined with recipients");
    stanzas.push_back(age::wrap_scrypt(fk, *spec.passphrase, spec.scrypt_log2_work));
  } else {
    if (to.empty()) throw usage_error("no recipients: give -r, -R or a passphrase (-p)");
    for (const auto& r : to) stanzas.push_back(age::wrap_x25519(fk, r));
  }
  const std::string header = age::seal_header(std::move(stanzas), fk);
  std::uint8_t nonce[age::nonce_len];
  age::random_bytes(nonce, sizeof nonce);
  if (spec.fixed_nonce) std::copy(spec.fixed_nonce->begin(), spec.fixed_nonce->end(), nonce);
  const age::stream_key key = age::payload_key(fk, nonce);
  std::vector<std::byte> prologue(header.size() + age::nonce_len);
  std::memcpy(prologue.data(), header.data(), header.size());
  std::memcpy(prologue.data() + header.size(), nonce, age::nonce_len);

  seal_op op(std::move(prologue), key, spec.armor);
  run(op, {{input}}, {output}, payload_options(opt, age::chunk_size), report);
}

namespace {

// decrypt() once the header of the binary form is read (from the input, or from the stream of an
// armored input's binary form).
void decrypt_binary(const std::string& input, const std::string& output, const decrypt_spec& given,
                    const options& opt, job_report* report, const head_info& h) {
  // The passphrase is asked for (ask_passphrase) once the header says the file needs one: a file
  // encrypted to recipients and no -i is told so at once, not after a prompt.
  decrypt_spec spec = given;
  const auto scrypt_of = [](const age::header& hdr) {
    return hdr.stanzas.size() == 1 && hdr.stanzas[0].type == "scrypt";
  };
  if (!spec.passphrase && spec.ask_passphrase && scrypt_of(h.parsed.hdr))
    spec.passphrase = spec.ask_passphrase();
  const auto fk = unwrap_key(input, h.parsed.hdr, spec, opt.cancel);
  if (!age::verify_header_mac(*fk, h.bytes.data(), h.parsed))
    throw input_error(input, "the header's MAC does not verify: the header was modified");
  const age::stream_key key = age::payload_key(*fk, h.bytes.data() + h.parsed.payload_offset);
  open_op op(input, key);
  // A file is read from after the nonce; a stream has been read up to there already.
  const std::uint64_t offset = h.stream ? 0 : h.bytes.size();
  // A pipe or FIFO named by its path goes on from the descriptor its header came from: opened
  // again, a FIFO whose writer has already gone (a file smaller than the pipe's buffer) would
  // wait for another writer for ever.
  run(op, {{input, offset, std::nullopt, h.from}}, {output},
      payload_options(opt, age::sealed_chunk_size), report);
}

}  // namespace

void decrypt(const std::string& input, const std::string& output, const decrypt_spec& given,
             const options& opt, job_report* report) {
  check_stdin_once(input, given.identity_files, "identities (-i -)");
  head_info h = read_head(input, opt.cancel);
  if (!h.armored) return decrypt_binary(input, output, given, opt, report, h);
  dearmor_feed feed(h, input);
  try {
    h = read_head(input, opt.cancel, feed.fd());
    decrypt_binary(input, output, given, opt, report, h);
  } catch (...) {
    feed.stop();
    if (feed.error()) std::rethrow_exception(feed.error());
    throw;
  }
  feed.stop();
  // With the last byte held back, a job that took the whole payload saw the armor end well; the
  // armor's error is looked at all the same.
  if (feed.error()) std::rethrow_exception(feed.error());
}
age_key generate_age_key() {
  const age::identity id = age::generate_identity();
  return {age::encode_identity(id), age::encode_recipient(age::recipient_of(id))};
}

std::string age_recipient_of(const std::string& identity) {
  return age::encode_recipient(age::recipient_of(age::parse_identity(identity)));
}

}  // namespace hetpipe

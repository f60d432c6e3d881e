// The CPU building blocks of the age v1 file format (C2SP age specification,
// https://age-encryption.org/v1) through OpenSSL: keys (Bech32), the textual header and its MAC,
// X25519 and scrypt recipient stanzas, the chunked ChaCha20-Poly1305 STREAM payload and the ASCII
// armor. OpenSSL stays out of this header; the library links it privately.
//
//   namespace age = hetpipe::host::age;
//   const age::identity id = age::generate_identity();
//   const auto to = age::recipient_of(id);                // age::encode_recipient(to): "age1..."
//   const age::file_key fk = age::generate_file_key();
//   const std::string head = age::seal_header({age::wrap_x25519(fk, to)}, fk);
//   std::uint8_t nonce[16];  age::random_bytes(nonce, 16);
//   const age::stream_key k = age::payload_key(fk, nonce);
//   out = head ‖ nonce ‖ seal_chunks(k, 0, /*ends_payload=*/true, data, n) // sealed_size(n) bytes
//
// and back: parse_header(file) -> unwrap(hdr, {id}) -> verify_header_mac -> payload_key(fk, the
// 16 bytes at payload_offset) -> open_chunks over the rest. `age -d -i ID` reads the result.
//
// Errors: malformed input throws hetpipe::input_error (file name when one is given, a reason that
// never quotes key bytes); impossible arguments throw hetpipe::usage_error; OpenSSL failures that
// "cannot happen" throw hetpipe::error. A failed authentication is a value (nullopt / false), not
// an exception, in the per-chunk and per-stanza functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hetpipe::host::age {

inline constexpr std::size_t file_key_len = 16;
inline constexpr std::size_t nonce_len = 16;  // payload nonce after the header
inline constexpr std::size_t tag_len = 16;    // Poly1305 tag per chunk
inline constexpr std::size_t chunk_size = 64 * 1024;
inline constexpr std::size_t sealed_chunk_size = chunk_size + tag_len;
inline constexpr std::string_view version_line = "age-encryption.org/v1";

// Overwrites len bytes with zeros in a way the compiler cannot drop (OPENSSL_cleanse).
void wipe(void* p, std::size_t len) noexcept;

// len bytes from OpenSSL's CSPRNG (RAND_bytes).
void random_bytes(std::uint8_t* out, std::size_t len);

// Secrets wipe themselves when destroyed (copies included).
struct file_key {
  std::array<std::uint8_t, file_key_len> bytes{};
  ~file_key() { wipe(bytes.data(), bytes.size()); }
};
struct stream_key {  // the payload key (32 bytes)
  std::array<std::uint8_t, 32> bytes{};
  ~stream_key() { wipe(bytes.data(), bytes.size()); }
};
struct identity {  // an X25519 secret scalar
  std::array<std::uint8_t, 32> secret{};
  ~identity() { wipe(secret.data(), secret.size()); }
};
using recipient = std::array<std::uint8_t, 32>;  // an X25519 public key

file_key generate_file_key();

// --- Keys ---

identity generate_identity();
recipient recipient_of(const identity& id);  // X25519(secret, basepoint)
// "AGE-SECRET-KEY-1..." (Bech32, upper case) and "age1..." (lower case).
std::string encode_identity(const identity& id);
std::string encode_recipient(const recipient& r);
// Accept all-upper or all-lower case; throw input_error on a wrong HRP, checksum, length, mixed
// case or character.
identity parse_identity(std::string_view text);
recipient parse_recipient(std::string_view text);
// An identity file: one AGE-SECRET-KEY-1 per line; '#' comments and blank lines are skipped,
// surrounding spaces and a CR before the LF are tolerated. At least one key; errors name the line.
std::vector<identity> parse_identity_file(std::string_view text, std::string_view file = {});

// Bech32 (BIP 173) without the 90-character limit, as age uses it. encode: hrp in lower case,
// data as 8-bit bytes, output lower case. decode: returns the lower-case HRP and the bytes.
std::string bech32_encode(std::string_view hrp, const std::uint8_t* data, std::size_t len);
struct bech32_data {
  std::string hrp;
  std::vector<std::uint8_t> data;
};
bech32_data bech32_decode(std::string_view text);

// --- Header ---

struct stanza {
  std::string type;               // the first argument ("X25519", "scrypt", ...)
  std::vector<std::string> args;  // the arguments after the type
  std::vector<std::uint8_t> body;
};
struct header {
  std::vector<stanza> stanzas;
  std::array<std::uint8_t, 32> mac{};
};

// The version line, the stanzas and "---" (no space, no LF): the bytes the MAC covers. Stanza
// bodies are unpadded base64 wrapped at 64 columns, the final line always shorter than 64 (empty
// when the body length is a multiple of 48). Type and arguments must be non-empty VCHAR strings
// (usage_error otherwise).
std::string serialize_header_without_mac(const header& h);
// serialize_header_without_mac + " " + base64(mac) + "\n".
std::string serialize_header(const header& h);

struct parsed_header {
  header hdr;
  std::size_t mac_input_len = 0;   // data[0, mac_input_len) is what the MAC covers
  std::size_t payload_offset = 0;  // the payload (nonce, then chunks) starts here
};
// Strict, canonical parse of the header at the start of data[0, len). Throws input_error on an
// unknown version, a malformed line, non-canonical or padded base64, a body line longer than 64
// columns, a body without its final short line, a header without stanzas or a truncated header.
parsed_header parse_header(const std::uint8_t* data, std::size_t len, std::string_view file = {});
// Where the payload would start if data[0, len) holds the whole header (the "--- " line ends in
// LF), nullopt if more bytes are needed. Looks at line starts only, from `from` (a line start:
// a reader that calls it as each line ends passes that line's start, and the header is scanned
// once in all); parse_header validates.
std::optional<std::size_t> find_header_end(const std::uint8_t* data, std::size_t len,
                                           std::size_t from = 0);

// HMAC-SHA-256 under HKDF-SHA-256(ikm = file key, salt = "", info = "header").
std::array<std::uint8_t, 32> header_mac(const file_key& fk, const std::uint8_t* mac_input,
                                        std::size_t len);
// Recomputes the MAC of data[0, p.mac_input_len) and compares it with p.hdr.mac in constant time.
bool verify_header_mac(const file_key& fk, const std::uint8_t* data, const parsed_header& p);
// The complete header text for these stanzas, MAC included.
std::string seal_header(std::vector<stanza> stanzas, const file_key& fk);

// --- Recipient stanzas ---

// "-> X25519 <ephemeral share>", body = ChaCha20-Poly1305(HKDF(shared, eph ‖ recipient,
// "age-encryption.org/v1/X25519"), file key) under the zero nonce.
stanza wrap_x25519(const file_key& fk, const recipient& to);
// Tests and known-answer checks only: the ephemeral secret given instead of drawn, so the
// stanza is reproducible. Never reuse an ephemeral secret in real files.
stanza wrap_x25519(const file_key& fk, const recipient& to,
                   const std::array<std::uint8_t, 32>& ephemeral_secret);
// nullopt: not an X25519 stanza, or not addressed to this identity (authentication failed).
// Throws input_error on a malformed X25519 stanza (argument count, share encoding, body length)
// and on an all-zero shared secret.
std::optional<file_key> unwrap_x25519(const stanza& s, const identity& id);

// "-> scrypt <salt> <log2 N>", wrap key = scrypt(N, r = 8, p = 1, S =
// "age-encryption.org/v1/scrypt" ‖ salt, P = passphrase). log2_work in [1, 30] (usage_error
// otherwise); age uses 18.
stanza wrap_scrypt(const file_key& fk, std::string_view passphrase, int log2_work);
// Tests only: the 16-byte salt given instead of drawn.
stanza wrap_scrypt(const file_key& fk, std::string_view passphrase, int log2_work,
                   const std::array<std::uint8_t, 16>& salt);
// nullopt: not an scrypt stanza, or a wrong passphrase. Throws input_error on a malformed stanza
// and when its work factor exceeds 2^max_log2_work.
std::optional<file_key> unwrap_scrypt(const stanza& s, std::string_view passphrase,
                                      int max_log2_work);
// Throws input_error when an scrypt stanza shares the header with any other stanza (the spec
// requires it to be alone).
void check_scrypt_alone(const header& h);

// Tries every X25519 stanza against every identity (after check_scrypt_alone).
std::optional<file_key> unwrap(const header& h, const std::vector<identity>& ids);

// --- Payload (STREAM) ---

// HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload").
stream_key payload_key(const file_key& fk, const std::uint8_t nonce[nonce_len]);

// The 12-byte ChaCha20-Poly1305 nonce of a chunk: 11-byte big-endian counter ‖ 0x01 if last.
std::array<std::uint8_t, 12> chunk_nonce(std::uint64_t counter, bool last);

// One chunk (n <= chunk_size): out[0, n + 16) = ciphertext ‖ tag. in and out may be the same
// pointer, not otherwise overlapping.
void seal_chunk(const stream_key& key, std::uint64_t counter, bool last, const std::uint8_t* in,
                std::size_t n, std::uint8_t* out);
// in[0, n) = ciphertext ‖ tag (16 <= n <= sealed_chunk_size); out gets n - 16 bytes. False when
// the tag does not verify (out then holds no plaintext: it is zeroed).
bool open_chunk(const stream_key& key, std::uint64_t counter, bool last, const std::uint8_t* in,
                std::size_t n, std::uint8_t* out);

// Batch form for a pipeline chunk: the payload bytes in[0, n) are consecutive 64 KiB chunks
// numbered first_counter, first_counter + 1, ...; when ends_payload the buffer's last chunk is the
// file's last (it may be short, or full). A buffer that does not end the payload must hold whole
// chunks (n a non-zero multiple of chunk_size); an empty final chunk only exists when the whole
// payload is empty (n == 0, first_counter == 0). Thread-safe (one EVP context per thread); in and
// out must not overlap.
std::size_t sealed_size(std::size_t n, bool ends_payload);  // n + 16 per chunk
// The lengths a buffer of plaintext may have at a STREAM counter (usage_error otherwise): whole
// chunks unless it ends the payload, and empty only as the whole payload.
void check_seal_lengths(std::size_t n, bool ends_payload, std::uint64_t first_counter);
void seal_chunks(const stream_key& key, std::uint64_t first_counter, bool ends_payload,
                 const std::uint8_t* in, std::size_t n, std::uint8_t* out);
// The sealed counterpart: whole sealed chunks unless ends_payload. Lengths no age file can have
// (a final chunk shorter than its tag, an empty final chunk after others, nothing at all) throw
// input_error; a buffer split off mid-chunk throws usage_error.
std::size_t opened_size(std::size_t n, bool ends_payload, std::uint64_t first_counter);
// False when any chunk fails authentication (out is then zeroed up to opened_size, and *failed,
// when given, is the counter of the first chunk that failed).
bool open_chunks(const stream_key& key, std::uint64_t first_counter, bool ends_payload,
                 const std::uint8_t* in, std::size_t n, std::uint8_t* out,
                 std::uint64_t* failed = nullptr);

// --- Whole files (small inputs, tests, tools) ---

std::vector<std::uint8_t> encrypt(const std::vector<recipient>& to, const std::uint8_t* data,
                                  std::size_t len);
std::vector<std::uint8_t> encrypt_with_passphrase(std::string_view passphrase, int log2_work,
                                                  const std::uint8_t* data, std::size_t len);
// Binary or armored input. Throws input_error when no identity matches, the MAC or a chunk does
// not verify, or the file is malformed.
std::vector<std::uint8_t> decrypt(const std::uint8_t* data, std::size_t len,
                                  const std::vector<identity>& ids, std::string_view file = {});
std::vector<std::uint8_t> decrypt_with_passphrase(const std::uint8_t* data, std::size_t len,
                                                  std::string_view passphrase, int max_log2_work,
                                                  std::string_view file = {});

// --- ASCII armor (RFC 7468 strict PEM, label "AGE ENCRYPTED FILE") ---

std::string armor(const std::uint8_t* data, std::size_t len);
// Whitespace around the block and CRLF line ends are accepted; anything else non-canonical
// (headers, short or long lines, blank lines, bad padding, non-zero trailing bits, text before or
// after) throws input_error.
std::vector<std::uint8_t> dearmor(std::string_view text, std::string_view file = {});

// The same two, on a stream given in pieces of any size, in constant memory (a line held at a
// time). armor(d, n) is armorer: put(d, n), finish(); dearmor(t) is dearmorer: put(t), finish().
//
//   age::armorer a;  std::string text;
//   while (n = read(fd, buf, sizeof buf)) a.put(buf, n, text), flush(text), text.clear();
//   a.finish(text);  flush(text);
class armorer {
 public:
  // Appends the text of data[0, len) to `text` (the BEGIN line first, then whole lines only).
  void put(const std::uint8_t* data, std::size_t len, std::string& text);
  // Appends the last line, padded, and the END line.
  void finish(std::string& text);

 private:
  bool begun_ = false;
  std::uint8_t held_[48] = {};  // the bytes of a line not yet full
  std::size_t held_len_ = 0;
};

class dearmorer {
 public:
  explicit dearmorer(std::string file = {}) : file_(std::move(file)) {}
  // Appends the binary form of the lines that text completes to `out`; throws input_error (naming
  // the file) at the first thing dearmor refuses.
  void put(std::string_view text, std::vector<std::uint8_t>& out);
  // The text has ended: appends the last line's bytes; throws unless the END line came, followed by
  // whitespace alone.
  void finish(std::vector<std::uint8_t>& out);

 private:
  void line(std::string_view l, std::vector<std::uint8_t>& out);
  enum class where { lead, begin, body, after } at_ = where::lead;
  std::string file_;
  std::string part_;  // a line not yet ended
  std::string last_;  // a body line that can only be the last (short, or padded)
};
// True when data (after leading whitespace) starts with the armor's BEGIN line.
bool is_armored(const std::uint8_t* data, std::size_t len);

// --- Primitives (exposed for tests) ---

// RFC 8439 AEAD: out[0, n + 16) = ciphertext ‖ tag.
void chacha20_poly1305_seal(const std::uint8_t key[32], const std::uint8_t nonce[12],
                            const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                            std::size_t n, std::uint8_t* out);
bool chacha20_poly1305_open(const std::uint8_t key[32], const std::uint8_t nonce[12],
                            const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                            std::size_t n, std::uint8_t* out);
// RFC 5869 with SHA-256; salt may be empty (then a string of zeros, per the RFC).
void hkdf_sha256(const std::uint8_t* ikm, std::size_t ikm_len, const std::uint8_t* salt,
                 std::size_t salt_len, std::string_view info, std::uint8_t* out,
                 std::size_t out_len);

}  // namespace hetpipe::host::age

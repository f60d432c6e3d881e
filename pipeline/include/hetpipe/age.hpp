// age v1 encryption and decryption (https://age-encryption.org/v1) through the pipeline: the
// payload's 64 KiB chunks are independent, so each pipeline chunk (many age chunks) is sealed or
// opened on a CPU lane (OpenSSL) or a GPU lane (our ChaCha20-Poly1305 kernel) and written in
// order through a temporary file that is renamed only when every chunk has been authenticated.
// Files interoperate with the `age` command both ways.
//
//   hetpipe::encrypt_spec e;
//   e.recipients = {"age1..."};
//   hetpipe::encrypt("data.bin", "data.bin.age", e, hetpipe::options{});
//   hetpipe::decrypt_spec d;
//   d.identity_files = {"key.txt"};
//   hetpipe::decrypt("data.bin.age", "data.out", d, hetpipe::options{});
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe {

struct encrypt_spec {
  std::vector<std::string> recipients;       // "age1..." (X25519)
  std::vector<std::string> recipient_files;  // files of "age1..." lines ('#' comments)
  std::optional<std::string> passphrase;     // scrypt; must be the only recipient
  int scrypt_log2_work = 18;                 // age's default
  bool armor = false;                        // PEM-like ASCII output
  // Tests only: a fixed file key and payload nonce, so that outputs can be compared byte for
  // byte across devices. Never set them otherwise.
  std::optional<std::array<std::uint8_t, 16>> fixed_file_key;
  std::optional<std::array<std::uint8_t, 16>> fixed_nonce;
};

// Encrypts `input` ("-" = stdin) into `output` ("-" = stdout). Throws hetpipe::error.
void encrypt(const std::string& input, const std::string& output, const encrypt_spec& spec,
             const options& opt, job_report* report = nullptr);

struct decrypt_spec {
  std::vector<std::string> identity_files;  // files of "AGE-SECRET-KEY-1..." lines
  std::optional<std::string> passphrase;    // for scrypt-encrypted files
  // Without a passphrase: called for one once the header shows the file is scrypt-encrypted (a
  // prompt comes only for a file that needs it).
  std::function<std::string()> ask_passphrase;
  int max_scrypt_log2_work = 22;  // refuse more expensive passphrase files
};

// Decrypts `input` (binary or armored; "-" = stdin) into `output` ("-" = stdout). No byte of a
// chunk reaches the output before the chunk was authenticated; into a file, nothing at all
// appears unless the whole file was (the temporary file is removed on any error). Throws
// hetpipe::error: no matching identity, wrong passphrase, a bad header or MAC, a chunk that fails
// authentication, a truncated file or data after the final chunk.
void decrypt(const std::string& input, const std::string& output, const decrypt_spec& spec,
             const options& opt, job_report* report = nullptr);

struct age_key {
  std::string identity;   // "AGE-SECRET-KEY-1..."
  std::string recipient;  // "age1..."
};
age_key generate_age_key();
// The recipient of an identity string (throws input_error when it is not one).
std::string age_recipient_of(const std::string& identity);

}  // namespace hetpipe

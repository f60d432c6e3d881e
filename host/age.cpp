// age v1 (https://age-encryption.org/v1), written from the C2SP specification, with OpenSSL 3 for
// the primitives (X25519, HKDF/HMAC-SHA-256, ChaCha20-Poly1305, scrypt, the CSPRNG), loaded when
// first called (host/crypto_lib.hpp). The text formats (Bech32, unpadded and padded base64, the
// header, the armor) are parsed here, strictly: every encoding has exactly one accepted form, so
// a file cannot be altered without the MAC or a tag noticing.
#include "host/age.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

#include "hetpipe/error.hpp"
#include "host/crypto_lib.hpp"

namespace hetpipe::host::age {

namespace {

// ---------------------------------------------------------------------------------------------
// OpenSSL plumbing

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct pkey_ctx_free {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct kdf_ctx_free {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free>;
using kdf_ctx_ptr = std::unique_ptr<EVP_KDF_CTX, kdf_ctx_free>;
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;

[[noreturn]] void openssl_failed(const char* what) {
  throw error("", std::string("OpenSSL: ") + what + " failed");
}

// Fetched once: an implicit fetch (EVP_chacha20_poly1305()) on every init takes a global lock.
// Never freed: threads may still use them during static destruction.
const EVP_CIPHER* chacha_cipher() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  if (c == nullptr) openssl_failed("fetching ChaCha20-Poly1305");
  return c;
}

EVP_KDF* hkdf_kdf() {
  static EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (k == nullptr) openssl_failed("fetching HKDF");
  return k;
}

// One cipher context per thread, reused by every call on that thread and reset (its key state
// freed and cleansed) when each call ends.
EVP_CIPHER_CTX* thread_cipher_ctx() {
  thread_local cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) openssl_failed("EVP_CIPHER_CTX_new");
  return ctx.get();
}

class aead_session {
 public:
  aead_session(const std::uint8_t key[32], bool encrypt)
      : ctx_(thread_cipher_ctx()), encrypt_(encrypt) {
    if (EVP_CipherInit_ex(ctx_, chacha_cipher(), nullptr, key, nullptr, encrypt ? 1 : 0) != 1)
      openssl_failed("ChaCha20-Poly1305 key setup");
  }
  ~aead_session() { EVP_CIPHER_CTX_reset(ctx_); }
  aead_session(const aead_session&) = delete;
  aead_session& operator=(const aead_session&) = delete;

  // Encrypting: writes n bytes of ciphertext and the tag to tag. Decrypting: checks tag, returns
  // false (out zeroed) when it does not verify.
  bool run(const std::uint8_t nonce[12], const std::uint8_t* aad, std::size_t aad_len,
           const std::uint8_t* in, std::size_t n, std::uint8_t* out, std::uint8_t* tag) {
    int outl = 0;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, encrypt_ ? 1 : 0) != 1)
      openssl_failed("ChaCha20-Poly1305 nonce setup");
    for (std::size_t off = 0; off < aad_len;) {
      const int len = static_cast<int>(std::min<std::size_t>(aad_len - off, 1u << 30));
      if (EVP_CipherUpdate(ctx_, nullptr, &outl, aad + off, len) != 1)
        openssl_failed("ChaCha20-Poly1305 AAD");
      off += static_cast<std::size_t>(len);
    }
    for (std::size_t off = 0; off < n;) {
      const int len = static_cast<int>(std::min<std::size_t>(n - off, 1u << 30));
      if (EVP_CipherUpdate(ctx_, out + off, &outl, in + off, len) != 1)
        openssl_failed("ChaCha20-Poly1305 update");
      off += static_cast<std::size_t>(len);
    }
    if (!encrypt_ && EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_len),
                                         const_cast<std::uint8_t*>(tag)) != 1)
      openssl_failed("ChaCha20-Poly1305 set tag");
    std::uint8_t dummy[16];
    const int ok = EVP_CipherFinal_ex(ctx_, dummy, &outl);
    if (encrypt_) {
      if (ok != 1) openssl_failed("ChaCha20-Poly1305 final");
      if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_len), tag) != 1)
        openssl_failed("ChaCha20-Poly1305 get tag");
      return true;
    }
    if (ok != 1) {
      if (n != 0) wipe(out, n);
      return false;
    }
    return true;
  }

 private:
  EVP_CIPHER_CTX* ctx_;
  bool encrypt_;
};

// X25519(scalar, point); false when OpenSSL refuses (it rejects an all-zero result).
bool x25519(const std::uint8_t scalar[32], const std::uint8_t point[32], std::uint8_t out[32]) {
  pkey_ptr priv(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, scalar, 32));
  pkey_ptr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, point, 32));
  if (!priv || !peer) openssl_failed("X25519 key import");
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new(priv.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1)
    openssl_failed("X25519 setup");
  std::size_t len = 32;
  if (EVP_PKEY_derive(ctx.get(), out, &len) != 1 || len != 32) return false;
  static const std::uint8_t zero[32] = {};
  return CRYPTO_memcmp(out, zero, 32) != 0;
}

recipient x25519_base(const std::uint8_t scalar[32]) {
  pkey_ptr priv(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, scalar, 32));
  if (!priv) openssl_failed("X25519 key import");
  recipient pub{};
  std::size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(priv.get(), pub.data(), &len) != 1 || len != pub.size())
    openssl_failed("X25519 public key");
  return pub;
}

// ---------------------------------------------------------------------------------------------
// Base64 (RFC 4648 section 4): unpadded in the header, padded in the armor; canonical only.

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64 values of the alphabet's characters; 0x80 for any other byte ('=' too).
constexpr std::array<std::uint8_t, 256> b64_values = [] {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0x80;
  for (std::uint8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(b64_alphabet[i])] = i;
  return t;
}();

int b64_value(unsigned char c) {
  return b64_values[c] & 0x80 ? -1 : b64_values[c];
}

bool is_b64(unsigned char c) {
  return b64_value(c) >= 0;
}

// 3 bytes → 4 characters.
void encode_triple(const std::uint8_t* p, char* out) {
  const std::uint32_t v = (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | p[2];
  out[0] = b64_alphabet[v >> 18];
  out[1] = b64_alphabet[(v >> 12) & 63];
  out[2] = b64_alphabet[(v >> 6) & 63];
  out[3] = b64_alphabet[v & 63];
}

std::string b64_encode(const std::uint8_t* p, std::size_t n, bool pad) {
  std::string s;
  s.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  s.resize(n / 3 * 4);
  for (; i + 3 <= n; i += 3) encode_triple(p + i, s.data() + i / 3 * 4);
  if (n - i == 1) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16;
    s += b64_alphabet[v >> 18];
    s += b64_alphabet[(v >> 12) & 63];
    if (pad) s += "==";
  } else if (n - i == 2) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
    s += b64_alphabet[v >> 18];
    s += b64_alphabet[(v >> 12) & 63];
    s += b64_alphabet[(v >> 6) & 63];
    if (pad) s += '=';
  }
  return s;
}

// Unpadded canonical base64; nullopt-like failure is reported through `why`.
bool b64_decode_raw(std::string_view s, std::vector<std::uint8_t>& out, const char** why) {
  if (s.size() % 4 == 1) {
    *why = "base64 of impossible length";
    return false;
  }
  out.clear();
  out.reserve(s.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    const int v = b64_value(c);
    if (v < 0) {
      *why = c == '=' ? "base64 padding is not allowed" : "invalid base64 character";
      return false;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) {  // the unused low bits of the last character must be zero (RFC 4648 3.5)
    *why = "non-canonical base64 (non-zero trailing bits)";
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Bech32 (BIP 173)

constexpr char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

std::uint32_t bech32_polymod(const std::vector<std::uint8_t>& values) {
  static constexpr std::uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
                                           0x2a1462b3};
  std::uint32_t chk = 1;
  for (std::uint8_t v : values) {
    const std::uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; ++i)
      if ((top >> i) & 1) chk ^= gen[i];
  }
  return chk;
}

std::vector<std::uint8_t> bech32_hrp_expand(std::string_view hrp) {
  std::vector<std::uint8_t> r;
  r.reserve(hrp.size() * 2 + 1);
  for (char c : hrp) r.push_back(static_cast<std::uint8_t>(static_cast<unsigned char>(c) >> 5));
  r.push_back(0);
  for (char c : hrp) r.push_back(static_cast<std::uint8_t>(static_cast<unsigned char>(c) & 31));
  return r;
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

[[noreturn]] void bad_input(std::string_view file, std::string reason) {
  throw input_error(std::string(file), std::move(reason));
}

// ---------------------------------------------------------------------------------------------
// Header helpers

bool is_vchar(unsigned char c) {
  return c >= 0x21 && c <= 0x7e;
}

void check_argument(const std::string& a, const char* what) {
  if (a.empty()) throw usage_error(std::string("age stanza ") + what + " is empty");
  for (unsigned char c : a)
    if (!is_vchar(c))
      throw usage_error(std::string("age stanza ") + what + " holds a character outside VCHAR");
}

void append_stanza(std::string& s, const stanza& st) {
  check_argument(st.type, "type");
  for (const auto& a : st.args) check_argument(a, "argument");
  s += "-> ";
  s += st.type;
  for (const auto& a : st.args) {
    s += ' ';
    s += a;
  }
  s += '\n';
  const std::string body = b64_encode(st.body.data(), st.body.size(), false);
  std::size_t i = 0;
  for (; i + 64 <= body.size(); i += 64) {
    s.append(body, i, 64);
    s += '\n';
  }
  s.append(body, i, std::string::npos);  // the final line, shorter than 64 (maybe empty)
  s += '\n';
}

constexpr std::string_view x25519_label = "age-encryption.org/v1/X25519";
constexpr std::string_view scrypt_label = "age-encryption.org/v1/scrypt";
constexpr std::string_view armor_begin = "-----BEGIN AGE ENCRYPTED FILE-----";
constexpr std::string_view armor_end = "-----END AGE ENCRYPTED FILE-----";

std::array<std::uint8_t, 12> zero_nonce() {
  return {};
}

stanza wrap_with_key(std::string type, std::vector<std::string> args, const std::uint8_t key[32],
                     const file_key& fk) {
  stanza s{std::move(type), std::move(args), std::vector<std::uint8_t>(file_key_len + tag_len)};
  const auto nonce = zero_nonce();
  chacha20_poly1305_seal(key, nonce.data(), nullptr, 0, fk.bytes.data(), file_key_len,
                         s.body.data());
  return s;
}

std::optional<file_key> unwrap_with_key(const stanza& s, const std::uint8_t key[32]) {
  file_key fk;
  const auto nonce = zero_nonce();
  if (!chacha20_poly1305_open(key, nonce.data(), nullptr, 0, s.body.data(), s.body.size(),
                              fk.bytes.data()))
    return std::nullopt;
  return fk;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Primitives

void wipe(void* p, std::size_t len) noexcept {
  OPENSSL_cleanse(p, len);
}

void random_bytes(std::uint8_t* out, std::size_t len) {
  while (len > 0) {
    const int n = static_cast<int>(std::min<std::size_t>(len, 1u << 20));
    if (RAND_bytes(out, n) != 1) openssl_failed("RAND_bytes");
    out += n;
    len -= static_cast<std::size_t>(n);
  }
}

file_key generate_file_key() {
  file_key fk;
  random_bytes(fk.bytes.data(), fk.bytes.size());
  return fk;
}

void chacha20_poly1305_seal(const std::uint8_t key[32], const std::uint8_t nonce[12],
                            const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                            std::size_t n, std::uint8_t* out) {
  aead_session s(key, true);
  s.run(nonce, aad, aad_len, in, n, out, out + n);
}

bool chacha20_poly1305_open(const std::uint8_t key[32], const std::uint8_t nonce[12],
                            const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                            std::size_t n, std::uint8_t* out) {
  if (n < tag_len) return false;
  aead_session s(key, false);
  return s.run(nonce, aad, aad_len, in, n - tag_len, out,
               const_cast<std::uint8_t*>(in + n - tag_len));
}

void hkdf_sha256(const std::uint8_t* ikm, std::size_t ikm_len, const std::uint8_t* salt,
                 std::size_t salt_len, std::string_view info, std::uint8_t* out,
                 std::size_t out_len) {
  kdf_ctx_ptr ctx(EVP_KDF_CTX_new(hkdf_kdf()));
  if (!ctx) openssl_failed("EVP_KDF_CTX_new");
  OSSL_PARAM params[5];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm),
                                           ikm_len);
  // No salt parameter is the RFC's "not provided": HashLen zeros, the same as an empty salt.
  if (salt_len > 0)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt),
                                             salt_len);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                           info.size());
  *p = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(ctx.get(), out, out_len, params) != 1) openssl_failed("HKDF-SHA-256");
}

// ---------------------------------------------------------------------------------------------
// Bech32 and keys

std::string bech32_encode(std::string_view hrp, const std::uint8_t* data, std::size_t len) {
  std::vector<std::uint8_t> values = bech32_hrp_expand(hrp);
  const std::size_t hrp_values = values.size();
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < len; ++i) {  // 8-bit groups to 5-bit groups, zero-padded
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      values.push_back(static_cast<std::uint8_t>((acc >> bits) & 31));
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) values.push_back(static_cast<std::uint8_t>((acc << (5 - bits)) & 31));
  const std::size_t data_end = values.size();
  values.resize(data_end + 6, 0);
  const std::uint32_t chk = bech32_polymod(values) ^ 1;
  std::string s(hrp);
  s += '1';
  for (std::size_t i = hrp_values; i < data_end; ++i) s += bech32_charset[values[i]];
  for (int i = 0; i < 6; ++i) s += bech32_charset[(chk >> (5 * (5 - i))) & 31];
  wipe(values.data(), values.size());
  return s;
}

bech32_data bech32_decode(std::string_view text) {
  bool lower = false, upper = false;
  for (unsigned char c : text) {
    if (c < 33 || c > 126) bad_input({}, "Bech32 string holds a character outside 33..126");
    lower |= c >= 'a' && c <= 'z';
    upper |= c >= 'A' && c <= 'Z';
  }
  if (lower && upper) bad_input({}, "Bech32 string mixes upper and lower case");
  const std::size_t sep = text.rfind('1');
  if (sep == std::string_view::npos) bad_input({}, "Bech32 string has no separator '1'");
  if (sep == 0) bad_input({}, "Bech32 string has an empty human-readable part");
  if (text.size() - sep - 1 < 6) bad_input({}, "Bech32 string is too short for its checksum");
  bech32_data r;
  r.hrp.reserve(sep);
  for (std::size_t i = 0; i < sep; ++i) r.hrp += ascii_lower(text[i]);
  std::vector<std::uint8_t> values = bech32_hrp_expand(r.hrp);
  const std::size_t hrp_values = values.size();
  for (std::size_t i = sep + 1; i < text.size(); ++i) {
    const char* at = std::strchr(bech32_charset, ascii_lower(text[i]));
    if (at == nullptr || *at == '\0') {
      wipe(values.data(), values.size());
      bad_input({}, "Bech32 data holds a character outside its alphabet");
    }
    values.push_back(static_cast<std::uint8_t>(at - bech32_charset));
  }
  if (bech32_polymod(values) != 1) {
    wipe(values.data(), values.size());
    bad_input({}, "Bech32 checksum does not match (a mistyped or truncated key)");
  }
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = hrp_values; i + 6 < values.size(); ++i) {  // 5-bit to 8-bit, no padding
    acc = (acc << 5) | values[i];
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      r.data.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  const bool bad_padding = bits >= 5 || acc != 0;
  wipe(values.data(), values.size());
  acc = 0;
  if (bad_padding) {
    wipe(r.data.data(), r.data.size());
    bad_input({}, "Bech32 data has invalid padding");
  }
  return r;
}

identity generate_identity() {
  identity id;
  random_bytes(id.secret.data(), id.secret.size());
  return id;
}

recipient recipient_of(const identity& id) {
  return x25519_base(id.secret.data());
}

std::string encode_identity(const identity& id) {
  std::string s = bech32_encode("age-secret-key-", id.secret.data(), id.secret.size());
  for (char& c : s) c = ascii_upper(c);
  return s;
}

std::string encode_recipient(const recipient& r) {
  return bech32_encode("age", r.data(), r.size());
}

// Keys of other kinds that age's users hold too, named rather than failed as Bech32 text.
static bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (ascii_upper(text[i]) != ascii_upper(prefix[i])) return false;
  return true;
}

identity parse_identity(std::string_view text) {
  if (text.rfind("-----BEGIN AGE ENCRYPTED FILE-----", 0) == 0 ||
      text.rfind("age-encryption.org/", 0) == 0)
    bad_input({},
              "a passphrase-protected identity file is not supported (decrypt it with age -d "
              "first)");
  if (text.rfind("-----BEGIN ", 0) == 0 || text.rfind("ssh-", 0) == 0)
    bad_input({}, "SSH keys are not supported (only AGE-SECRET-KEY-1... identities)");
  bech32_data d = bech32_decode(text);
  const bool ok_hrp = d.hrp == "age-secret-key-";
  const std::size_t n = d.data.size();
  identity id;
  if (ok_hrp && n == id.secret.size()) std::memcpy(id.secret.data(), d.data.data(), n);
  wipe(d.data.data(), d.data.size());
  if (!ok_hrp)
    bad_input({}, d.hrp.rfind("age-secret-key-", 0) == 0 || d.hrp.rfind("age-plugin-", 0) == 0
                      ? "unsupported identity type (only AGE-SECRET-KEY-1 X25519 keys)"
                      : "not an age identity (expected AGE-SECRET-KEY-1...)");
  if (n != id.secret.size())
    bad_input({}, "age identity has " + std::to_string(n) + " bytes instead of 32");
  return id;
}

recipient parse_recipient(std::string_view text) {
  if (text.rfind("ssh-", 0) == 0)
    bad_input({}, "SSH keys are not supported (only age1... X25519 recipients)");
  if (starts_with_nocase(text, "AGE-SECRET-KEY-"))
    bad_input({}, "an age secret key is not a recipient (its recipient: age-keygen -y)");
  const bech32_data d = [&] {
    try {
      return bech32_decode(text);
    } catch (const input_error& e) {  // the text's Bech32 fault, said of a recipient
      bad_input({}, "not an age recipient (" + e.reason() + ")");
    }
  }();
  if (d.hrp != "age")
    bad_input({}, d.hrp.rfind("age1", 0) == 0
                      ? "unsupported recipient type (only age1... X25519 recipients)"
                      : "not an age recipient (expected age1...)");
  recipient r{};
  if (d.data.size() != r.size())
    bad_input({}, "age recipient has " + std::to_string(d.data.size()) + " bytes instead of 32");
  std::memcpy(r.data(), d.data.data(), r.size());
  // A point of small order gives every sender the all-zero shared secret: refused here, where the
  // recipient's text names it, rather than when its stanza is made (age refuses it there too).
  const std::array<std::uint8_t, 32> any{9};
  std::uint8_t shared[32];
  const bool ok = x25519(any.data(), r.data(), shared);
  wipe(shared, sizeof shared);
  if (!ok) bad_input({}, "a low-order X25519 point (anyone could unwrap a file key sent to it)");
  return r;
}

std::vector<identity> parse_identity_file(std::string_view text, std::string_view file) {
  std::vector<identity> ids;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    try {
      ids.push_back(parse_identity(line));
    } catch (const input_error& e) {
      bad_input(file, "line " + std::to_string(line_no) + ": " + e.reason());
    }
  }
  if (ids.empty()) bad_input(file, "no identities (AGE-SECRET-KEY-1...) in the identity file");
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Header

std::string serialize_header_without_mac(const header& h) {
  if (h.stanzas.empty()) throw usage_error("an age header needs at least one recipient stanza");
  std::string s(version_line);
  s += '\n';
  for (const auto& st : h.stanzas) append_stanza(s, st);
  s += "---";
  return s;
}

std::string serialize_header(const header& h) {
  std::string s = serialize_header_without_mac(h);
  s += ' ';
  s += b64_encode(h.mac.data(), h.mac.size(), false);
  s += '\n';
  return s;
}

std::optional<std::size_t> find_header_end(const std::uint8_t* data, std::size_t len,
                                           std::size_t from) {
  std::size_t pos = from;
  while (pos < len) {
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    if (nl == nullptr) return std::nullopt;
    const std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data);
    if (end - pos >= 3 && std::memcmp(data + pos, "---", 3) == 0) return end + 1;
    pos = end + 1;
  }
  return std::nullopt;
}

parsed_header parse_header(const std::uint8_t* data, std::size_t len, std::string_view file) {
  std::size_t pos = 0;
  std::size_t line_no = 0;
  auto where = [&] { return "age header line " + std::to_string(line_no) + ": "; };
  // The next line without its LF; a header never ends without one.
  auto next_line = [&]() -> std::string_view {
    ++line_no;
    if (pos >= len) bad_input(file, "age header is truncated (no MAC line)");
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    if (nl == nullptr) bad_input(file, "age header is truncated (line without a line feed)");
    const std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data);
    std::string_view line(reinterpret_cast<const char*>(data) + pos, end - pos);
    pos = end + 1;
    return line;
  };
  auto starts = [](std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; };

  std::string_view line = next_line();
  constexpr std::string_view magic = "age-encryption.org/";
  if (!starts(line, magic)) bad_input(file, "not an age file (no age-encryption.org version line)");
  if (line != version_line) {
    const std::string_view v = line.substr(magic.size());
    const bool printable =
        !v.empty() && v.size() <= 32 &&
        std::all_of(v.begin(), v.end(), [](unsigned char c) { return is_vchar(c); });
    bad_input(file, "unsupported age format version" +
                        (printable ? " \"" + std::string(v) + "\"" : std::string()) +
                        " (only v1 is known)");
  }

  parsed_header r;
  const char* why = nullptr;
  for (;;) {
    const std::size_t line_start = pos;
    line = next_line();
    if (starts(line, "---")) {
      if (r.hdr.stanzas.empty()) bad_input(file, "age header has no recipient stanzas");
      if (line.size() != 4 + 43 || line[3] != ' ')
        bad_input(file, where() + "malformed MAC line (expected \"--- \" and 43 base64 chars)");
      std::vector<std::uint8_t> mac;
      if (!b64_decode_raw(line.substr(4), mac, &why) || mac.size() != 32)
        bad_input(file, where() + "header MAC: " + (why ? why : "wrong length"));
      std::memcpy(r.hdr.mac.data(), mac.data(), 32);
      r.mac_input_len = line_start + 3;
      r.payload_offset = pos;
      return r;
    }
    if (!starts(line, "-> ")) bad_input(file, where() + "expected a stanza (\"-> \") or the MAC");
    stanza st;
    std::string_view rest = line.substr(3);
    if (rest.empty()) bad_input(file, where() + "stanza has no arguments");
    bool first = true;
    for (;;) {
      const std::size_t sp = rest.find(' ');
      const std::string_view arg = rest.substr(0, sp);
      if (arg.empty()) bad_input(file, where() + "empty stanza argument (stray space)");
      for (unsigned char c : arg)
        if (!is_vchar(c)) bad_input(file, where() + "stanza argument holds a non-VCHAR character");
      if (first)
        st.type = std::string(arg);
      else
        st.args.emplace_back(arg);
      first = false;
      if (sp == std::string_view::npos) break;
      rest = rest.substr(sp + 1);
    }
    std::string body;
    for (;;) {
      line = next_line();
      if (line.size() > 64) bad_input(file, where() + "stanza body line longer than 64 columns");
      for (unsigned char c : line)
        if (!is_b64(c)) {
          if (!line.empty() && line.front() == '-')
            bad_input(file,
                      where() + "stanza body does not end with a line shorter than 64 columns");
          bad_input(file, where() + (c == '=' ? "base64 padding is not allowed in a stanza body"
                                              : "invalid character in a stanza body"));
        }
      body.append(line);
      if (line.size() < 64) break;
    }
    if (!b64_decode_raw(body, st.body, &why)) bad_input(file, where() + "stanza body: " + why);
    r.hdr.stanzas.push_back(std::move(st));
  }
}

std::array<std::uint8_t, 32> header_mac(const file_key& fk, const std::uint8_t* mac_input,
                                        std::size_t len) {
  std::uint8_t key[32];
  hkdf_sha256(fk.bytes.data(), fk.bytes.size(), nullptr, 0, "header", key, sizeof key);
  std::array<std::uint8_t, 32> mac{};
  unsigned int mac_len = 0;
  const bool ok =
      HMAC(EVP_sha256(), key, sizeof key, mac_input, len, mac.data(), &mac_len) != nullptr &&
      mac_len == mac.size();
  wipe(key, sizeof key);
  if (!ok) openssl_failed("HMAC-SHA-256");
  return mac;
}

bool verify_header_mac(const file_key& fk, const std::uint8_t* data, const parsed_header& p) {
  const auto mac = header_mac(fk, data, p.mac_input_len);
  return CRYPTO_memcmp(mac.data(), p.hdr.mac.data(), mac.size()) == 0;
}

std::string seal_header(std::vector<stanza> stanzas, const file_key& fk) {
  header h{std::move(stanzas), {}};
  const std::string text = serialize_header_without_mac(h);
  h.mac = header_mac(fk, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  return serialize_header(h);
}

// ---------------------------------------------------------------------------------------------
// Recipient stanzas

stanza wrap_x25519(const file_key& fk, const recipient& to) {
  std::array<std::uint8_t, 32> eph_secret;
  random_bytes(eph_secret.data(), eph_secret.size());
  stanza s = wrap_x25519(fk, to, eph_secret);
  wipe(eph_secret.data(), eph_secret.size());
  return s;
}

stanza wrap_x25519(const file_key& fk, const recipient& to,
                   const std::array<std::uint8_t, 32>& eph_secret) {
  std::uint8_t shared[32], salt[64], key[32];
  const recipient eph_share = x25519_base(eph_secret.data());
  const bool ok = x25519(eph_secret.data(), to.data(), shared);
  if (!ok) {
    wipe(shared, sizeof shared);
    throw input_error("", "the age recipient is a low-order X25519 point (all-zero shared secret)");
  }
  std::memcpy(salt, eph_share.data(), 32);
  std::memcpy(salt + 32, to.data(), 32);
  hkdf_sha256(shared, sizeof shared, salt, sizeof salt, x25519_label, key, sizeof key);
  wipe(shared, sizeof shared);
  stanza s =
      wrap_with_key("X25519", {b64_encode(eph_share.data(), eph_share.size(), false)}, key, fk);
  wipe(key, sizeof key);
  return s;
}

std::optional<file_key> unwrap_x25519(const stanza& s, const identity& id) {
  if (s.type != "X25519") return std::nullopt;
  if (s.args.size() != 1) bad_input({}, "X25519 stanza must have exactly one share argument");
  std::vector<std::uint8_t> share;
  const char* why = nullptr;
  if (!b64_decode_raw(s.args[0], share, &why) || share.size() != 32)
    bad_input({}, "X25519 stanza share is not canonical base64 of 32 bytes");
  if (s.body.size() != file_key_len + tag_len) bad_input({}, "X25519 stanza body is not 32 bytes");
  std::uint8_t shared[32], salt[64], key[32];
  if (!x25519(id.secret.data(), share.data(), shared)) {
    wipe(shared, sizeof shared);
    bad_input({}, "X25519 stanza share gives an all-zero shared secret");
  }
  const recipient self = recipient_of(id);
  std::memcpy(salt, share.data(), 32);
  std::memcpy(salt + 32, self.data(), 32);
  hkdf_sha256(shared, sizeof shared, salt, sizeof salt, x25519_label, key, sizeof key);
  wipe(shared, sizeof shared);
  auto fk = unwrap_with_key(s, key);
  wipe(key, sizeof key);
  return fk;
}

namespace {

void scrypt_key(std::string_view passphrase, const std::uint8_t salt[16], int log2_work,
                std::uint8_t key[32]) {
  std::uint8_t s[scrypt_label.size() + 16];
  std::memcpy(s, scrypt_label.data(), scrypt_label.size());
  std::memcpy(s + scrypt_label.size(), salt, 16);
  const std::uint64_t n = std::uint64_t{1} << log2_work;
  // scrypt needs 128 * r * N bytes for V (r = 8) plus a little; allow that and some slack.
  const std::uint64_t maxmem = 128 * 8 * n + (std::uint64_t{1} << 24);
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), s, sizeof s, n, 8, 1, maxmem, key, 32) !=
      1)  // nearly always the memory (work factor 30: 1 TiB)
    throw error("", "scrypt with work factor " + std::to_string(log2_work) + " failed: it needs " +
                        std::to_string((maxmem + (1 << 20) - 1) >> 20) + " MiB of memory");
}

}  // namespace

stanza wrap_scrypt(const file_key& fk, std::string_view passphrase, int log2_work) {
  std::array<std::uint8_t, 16> salt;
  random_bytes(salt.data(), salt.size());
  return wrap_scrypt(fk, passphrase, log2_work, salt);
}

stanza wrap_scrypt(const file_key& fk, std::string_view passphrase, int log2_work,
                   const std::array<std::uint8_t, 16>& salt) {
  if (log2_work < 1 || log2_work > 30) throw usage_error("scrypt work factor must be in 1..30");
  std::uint8_t key[32];
  scrypt_key(passphrase, salt.data(), log2_work, key);
  stanza s = wrap_with_key(
      "scrypt", {b64_encode(salt.data(), salt.size(), false), std::to_string(log2_work)}, key, fk);
  wipe(key, sizeof key);
  return s;
}

std::optional<file_key> unwrap_scrypt(const stanza& s, std::string_view passphrase,
                                      int max_log2_work) {
  if (s.type != "scrypt") return std::nullopt;
  if (s.args.size() != 2) bad_input({}, "scrypt stanza must have a salt and a work factor");
  std::vector<std::uint8_t> salt;
  const char* why = nullptr;
  if (!b64_decode_raw(s.args[0], salt, &why) || salt.size() != 16)
    bad_input({}, "scrypt stanza salt is not canonical base64 of 16 bytes");
  const std::string& w = s.args[1];
  const bool decimal = !w.empty() && w[0] >= '1' && w[0] <= '9' &&
                       std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!decimal) bad_input({}, "scrypt work factor is not a decimal number without leading zeros");
  const int log2_work = w.size() > 2 ? INT_MAX : std::stoi(w);
  if (log2_work > max_log2_work || log2_work > 62)
    bad_input({}, "scrypt work factor 2^" + (w.size() > 2 ? std::string("(huge)") : w) +
                      " exceeds the limit 2^" + std::to_string(max_log2_work));
  if (s.body.size() != file_key_len + tag_len) bad_input({}, "scrypt stanza body is not 32 bytes");
  std::uint8_t key[32];
  scrypt_key(passphrase, salt.data(), log2_work, key);
  auto fk = unwrap_with_key(s, key);
  wipe(key, sizeof key);
  return fk;
}

void check_scrypt_alone(const header& h) {
  if (h.stanzas.size() < 2) return;
  for (const auto& s : h.stanzas)
    if (s.type == "scrypt")
      bad_input({}, "an scrypt (passphrase) stanza must be the only stanza in the header");
}

std::optional<file_key> unwrap(const header& h, const std::vector<identity>& ids) {
  check_scrypt_alone(h);
  for (const auto& s : h.stanzas)
    for (const auto& id : ids)
      if (auto fk = unwrap_x25519(s, id)) return fk;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Payload

stream_key payload_key(const file_key& fk, const std::uint8_t nonce[nonce_len]) {
  stream_key k;
  hkdf_sha256(fk.bytes.data(), fk.bytes.size(), nonce, nonce_len, "payload", k.bytes.data(),
              k.bytes.size());
  return k;
}

std::array<std::uint8_t, 12> chunk_nonce(std::uint64_t counter, bool last) {
  std::array<std::uint8_t, 12> n{};  // bytes 0..2 are the counter's top bytes: always 0 here
  for (int i = 0; i < 8; ++i) n[10 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
  n[11] = last ? 1 : 0;
  return n;
}

void seal_chunk(const stream_key& key, std::uint64_t counter, bool last, const std::uint8_t* in,
                std::size_t n, std::uint8_t* out) {
  if (n > chunk_size) throw usage_error("an age payload chunk holds at most 64 KiB");
  const auto nonce = chunk_nonce(counter, last);
  aead_session s(key.bytes.data(), true);
  s.run(nonce.data(), nullptr, 0, in, n, out, out + n);
}

bool open_chunk(const stream_key& key, std::uint64_t counter, bool last, const std::uint8_t* in,
                std::size_t n, std::uint8_t* out) {
  if (n < tag_len || n > sealed_chunk_size)
    throw usage_error("a sealed age chunk holds 16 to 65552 bytes");
  const auto nonce = chunk_nonce(counter, last);
  aead_session s(key.bytes.data(), false);
  return s.run(nonce.data(), nullptr, 0, in, n - tag_len, out,
               const_cast<std::uint8_t*>(in + n - tag_len));
}

std::size_t sealed_size(std::size_t n, bool ends_payload) {
  if (n == 0) return ends_payload ? tag_len : 0;
  return n + tag_len * ((n + chunk_size - 1) / chunk_size);
}

void check_seal_lengths(std::size_t n, bool ends_payload, std::uint64_t first_counter) {
  if (!ends_payload && (n == 0 || n % chunk_size != 0))
    throw usage_error("a buffer that does not end the age payload must hold whole 64 KiB chunks");
  if (ends_payload && n == 0 && first_counter != 0)
    throw usage_error("the final age chunk may only be empty when the whole payload is");
}

void seal_chunks(const stream_key& key, std::uint64_t first_counter, bool ends_payload,
                 const std::uint8_t* in, std::size_t n, std::uint8_t* out) {
  check_seal_lengths(n, ends_payload, first_counter);
  aead_session s(key.bytes.data(), true);
  std::uint64_t counter = first_counter;
  std::size_t off = 0;
  do {
    const std::size_t len = std::min(chunk_size, n - off);
    const bool last = ends_payload && off + len == n;
    const auto nonce = chunk_nonce(counter, last);
    s.run(nonce.data(), nullptr, 0, in + off, len, out, out + len);
    out += len + tag_len;
    off += len;
    ++counter;
  } while (off < n);
}

std::size_t opened_size(std::size_t n, bool ends_payload, std::uint64_t first_counter) {
  const std::size_t full = n / sealed_chunk_size, rem = n % sealed_chunk_size;
  if (!ends_payload) {
    if (n == 0 || rem != 0)
      throw usage_error("a buffer that does not end the age payload must hold whole chunks");
    return full * chunk_size;
  }
  if (n == 0) throw input_error("", "age payload ends without a final chunk");
  if (rem == 0) return full * chunk_size;  // the final chunk is full
  if (rem < tag_len)
    throw input_error("", "age payload is truncated (final chunk shorter than its tag)");
  if (rem == tag_len && (full > 0 || first_counter != 0))
    throw input_error("", "age payload has an empty final chunk after other chunks");
  return full * chunk_size + (rem - tag_len);
}

bool open_chunks(const stream_key& key, std::uint64_t first_counter, bool ends_payload,
                 const std::uint8_t* in, std::size_t n, std::uint8_t* out, std::uint64_t* failed) {
  const std::size_t total = opened_size(n, ends_payload, first_counter);
  aead_session s(key.bytes.data(), false);
  std::uint64_t counter = first_counter;
  std::size_t off = 0, out_off = 0;
  while (off < n) {
    const std::size_t len = std::min(sealed_chunk_size, n - off);
    const bool last = ends_payload && off + len == n;
    const auto nonce = chunk_nonce(counter, last);
    if (!s.run(nonce.data(), nullptr, 0, in + off, len - tag_len, out + out_off,
               const_cast<std::uint8_t*>(in + off + len - tag_len))) {
      if (total != 0) wipe(out, total);
      if (failed) *failed = counter;
      return false;
    }
    off += len;
    out_off += len - tag_len;
    ++counter;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Whole files

namespace {

std::vector<std::uint8_t> assemble(const std::string& head, const file_key& fk,
                                   const std::uint8_t* data, std::size_t len) {
  std::vector<std::uint8_t> out(head.size() + nonce_len + sealed_size(len, true));
  std::memcpy(out.data(), head.data(), head.size());
  std::uint8_t* nonce = out.data() + head.size();
  random_bytes(nonce, nonce_len);
  const stream_key k = payload_key(fk, nonce);
  seal_chunks(k, 0, true, data, len, nonce + nonce_len);
  return out;
}

std::vector<std::uint8_t> open_payload(const std::uint8_t* data, std::size_t len,
                                       const parsed_header& p, const file_key& fk,
                                       std::string_view file) {
  if (!verify_header_mac(fk, data, p))
    bad_input(file, "age header MAC does not verify (the header was altered)");
  if (len - p.payload_offset < nonce_len) bad_input(file, "age payload nonce is truncated");
  const stream_key k = payload_key(fk, data + p.payload_offset);
  const std::uint8_t* body = data + p.payload_offset + nonce_len;
  const std::size_t n = len - p.payload_offset - nonce_len;
  std::vector<std::uint8_t> out;
  try {
    out.resize(opened_size(n, true, 0));
  } catch (const input_error& e) {
    bad_input(file, e.reason());
  }
  if (!open_chunks(k, 0, true, body, n, out.data()))
    bad_input(file, "age payload fails authentication (altered, truncated or extended)");
  return out;
}

}  // namespace

std::vector<std::uint8_t> encrypt(const std::vector<recipient>& to, const std::uint8_t* data,
                                  std::size_t len) {
  if (to.empty()) throw usage_error("age encryption needs at least one recipient");
  const file_key fk = generate_file_key();
  std::vector<stanza> stanzas;
  for (const auto& r : to) stanzas.push_back(wrap_x25519(fk, r));
  return assemble(seal_header(std::move(stanzas), fk), fk, data, len);
}

std::vector<std::uint8_t> encrypt_with_passphrase(std::string_view passphrase, int log2_work,
                                                  const std::uint8_t* data, std::size_t len) {
  const file_key fk = generate_file_key();
  return assemble(seal_header({wrap_scrypt(fk, passphrase, log2_work)}, fk), fk, data, len);
}

namespace {

// The binary file of data[0, len) as given, or dearmored once (text armored twice is not an age
// file, as age says: the recursion here once took it). *bin holds a dearmored file.
std::pair<const std::uint8_t*, std::size_t> binary_of(const std::uint8_t* data, std::size_t len,
                                                      std::vector<std::uint8_t>* bin,
                                                      std::string_view file) {
  if (!is_armored(data, len)) return {data, len};
  *bin = dearmor({reinterpret_cast<const char*>(data), len}, file);
  return {bin->data(), bin->size()};
}

}  // namespace

std::vector<std::uint8_t> decrypt(const std::uint8_t* in, std::size_t in_len,
                                  const std::vector<identity>& ids, std::string_view file) {
  std::vector<std::uint8_t> bin;
  const auto [data, len] = binary_of(in, in_len, &bin, file);
  const parsed_header p = parse_header(data, len, file);
  std::optional<file_key> fk;
  try {
    fk = unwrap(p.hdr, ids);
  } catch (const input_error& e) {
    bad_input(file, e.reason());
  }
  if (!fk) {
    const bool passphrase = p.hdr.stanzas.size() == 1 && p.hdr.stanzas[0].type == "scrypt";
    bad_input(file, passphrase ? "the file is passphrase-encrypted (scrypt), not to a key"
                               : "no identity matches any recipient stanza of the file");
  }
  return open_payload(data, len, p, *fk, file);
}

std::vector<std::uint8_t> decrypt_with_passphrase(const std::uint8_t* in, std::size_t in_len,
                                                  std::string_view passphrase, int max_log2_work,
                                                  std::string_view file) {
  std::vector<std::uint8_t> bin;
  const auto [data, len] = binary_of(in, in_len, &bin, file);
  const parsed_header p = parse_header(data, len, file);
  std::optional<file_key> fk;
  try {
    check_scrypt_alone(p.hdr);
    for (const auto& s : p.hdr.stanzas)
      if ((fk = unwrap_scrypt(s, passphrase, max_log2_work))) break;
  } catch (const input_error& e) {
    bad_input(file, e.reason());
  }
  if (!fk) {
    const bool any = std::any_of(p.hdr.stanzas.begin(), p.hdr.stanzas.end(),
                                 [](const stanza& s) { return s.type == "scrypt"; });
    bad_input(file, any ? "wrong passphrase" : "the file is not passphrase-encrypted");
  }
  return open_payload(data, len, p, *fk, file);
}

// ---------------------------------------------------------------------------------------------
// Armor

namespace {

// A whole line: 64 characters of the alphabet → 48 bytes; false where one is outside it.
bool decode_line(const char* s, std::uint8_t* out) {
  std::uint32_t bad = 0;
  for (int i = 0; i < 64; i += 4, out += 3) {
    const std::uint32_t a = b64_values[static_cast<unsigned char>(s[i])];
    const std::uint32_t b = b64_values[static_cast<unsigned char>(s[i + 1])];
    const std::uint32_t c = b64_values[static_cast<unsigned char>(s[i + 2])];
    const std::uint32_t d = b64_values[static_cast<unsigned char>(s[i + 3])];
    bad |= a | b | c | d;
    const std::uint32_t v = a << 18 | b << 12 | c << 6 | d;
    out[0] = static_cast<std::uint8_t>(v >> 16);
    out[1] = static_cast<std::uint8_t>(v >> 8);
    out[2] = static_cast<std::uint8_t>(v);
  }
  return (bad & 0x80) == 0;
}

// 48 bytes → 64 characters.
void encode_line(const std::uint8_t* p, char* out) {
  for (int i = 0; i < 48; i += 3, out += 4) encode_triple(p + i, out);
}

constexpr std::string_view armor_ws = " \t\r\n";

// The END line, with the whitespace the end of the text may add.
bool is_end_line(std::string_view l) {
  return l.substr(0, armor_end.size()) == armor_end &&
         l.find_first_not_of(armor_ws, armor_end.size()) == std::string_view::npos;
}

// Longer than any line the armor may hold (64 columns and a carriage return), shorter than any
// memory worth saving: a partial line is held up to this.
constexpr std::size_t longest_line = 80;

}  // namespace

void armorer::put(const std::uint8_t* data, std::size_t len, std::string& text) {
  if (!begun_) {
    text += armor_begin;
    text += '\n';
    begun_ = true;
  }
  if (held_len_ > 0) {
    const std::size_t take = std::min(len, sizeof held_ - held_len_);
    std::memcpy(held_ + held_len_, data, take);
    held_len_ += take;
    data += take;
    len -= take;
    if (held_len_ < sizeof held_) return;
    held_len_ = 0;
    put(held_, sizeof held_, text);
  }
  const std::size_t lines = len / 48;
  std::size_t at = text.size();
  text.resize(at + lines * 65);
  for (std::size_t i = 0; i < lines; ++i, at += 65) {
    encode_line(data + 48 * i, text.data() + at);
    text[at + 64] = '\n';
  }
  held_len_ = len - lines * 48;
  if (held_len_ > 0) std::memcpy(held_, data + lines * 48, held_len_);
}

void armorer::finish(std::string& text) {
  if (!begun_) {  // an empty file
    text += armor_begin;
    text += '\n';
  }
  if (held_len_ > 0) {
    text += b64_encode(held_, held_len_, true);
    text += '\n';
  }
  text += armor_end;
  text += '\n';
  begun_ = false;
  held_len_ = 0;
}

std::string armor(const std::uint8_t* data, std::size_t len) {
  std::string s;
  s.reserve(armor_begin.size() + armor_end.size() + 2 + (len + 47) / 48 * 65);
  armorer a;
  a.put(data, len, s);
  a.finish(s);
  return s;
}

bool is_armored(const std::uint8_t* data, std::size_t len) {
  std::string_view t(reinterpret_cast<const char*>(data), len);
  const std::size_t first = t.find_first_not_of(armor_ws);
  return first != std::string_view::npos && t.substr(first, armor_begin.size()) == armor_begin;
}

void dearmorer::put(std::string_view text, std::vector<std::uint8_t>& out) {
  while (!text.empty()) {
    if (at_ == where::lead) {
      const std::size_t first = text.find_first_not_of(armor_ws);
      if (first == std::string_view::npos) return;
      text.remove_prefix(first);
      at_ = where::begin;
    }
    if (at_ == where::after) {
      if (text.find_first_not_of(armor_ws) != std::string_view::npos)
        bad_input(file_, "armor: does not end with \"-----END AGE ENCRYPTED FILE-----\"");
      return;
    }
    const std::size_t nl = text.find('\n');
    const std::string_view piece = text.substr(0, nl);
    if (nl == std::string_view::npos && part_.size() + piece.size() <= longest_line) {
      part_.append(piece);
      return;
    }
    if (nl == std::string_view::npos) {
      // No line of the armor is this long; the END line's trailing whitespace may be.
      const std::size_t take = longest_line + 1 - part_.size();
      part_.append(piece.substr(0, take));
      if (at_ == where::body && is_end_line(part_)) {
        part_.resize(armor_end.size());
        line(part_, out);  // at_ is now after: the rest of the line must be whitespace
        part_.clear();
        text.remove_prefix(take);
        continue;
      }
      line(part_, out);  // throws: not the BEGIN line, or a body line too long
      bad_input(file_, "armor: line longer than 64 columns");
    }
    if (part_.empty()) {
      line(piece, out);
    } else {
      part_.append(piece);
      line(part_, out);
      part_.clear();
    }
    text.remove_prefix(nl + 1);
  }
}

void dearmorer::line(std::string_view l, std::vector<std::uint8_t>& out) {
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);  // CRLF line ends
  if (at_ == where::begin) {
    if (l != armor_begin)
      bad_input(file_, "armor: does not start with \"-----BEGIN AGE ENCRYPTED FILE-----\"");
    at_ = where::body;
    return;
  }
  if (l.substr(0, armor_end.size()) == armor_end) {
    // The last line: padding at its end only, canonical bits before it.
    const std::string& b = last_;
    if (b.size() % 4 != 0) bad_input(file_, "armor: base64 length is not a multiple of 4");
    std::size_t pad = 0;
    while (pad < b.size() && b[b.size() - 1 - pad] == '=') ++pad;
    if (pad > 2) bad_input(file_, "armor: too much base64 padding");
    const std::size_t eq = b.find('=');
    if (eq != std::string::npos && eq != b.size() - pad)
      bad_input(file_, "armor: padding inside the base64");
    std::vector<std::uint8_t> tail;
    const char* why = nullptr;
    if (!b64_decode_raw(std::string_view(b).substr(0, b.size() - pad), tail, &why))
      bad_input(file_, std::string("armor: ") + why);
    out.insert(out.end(), tail.begin(), tail.end());
    last_.clear();
    // Text after the END line on its own line, once the last line was found sound: refused as
    // text after the END line, as a stream refuses it (in that order) once the END line and the
    // whitespace after it have filled longest_line.
    if (!is_end_line(l))
      bad_input(file_, "armor: does not end with \"-----END AGE ENCRYPTED FILE-----\"");
    at_ = where::after;
    return;
  }
  // A body line: the one before was the last only if it had been whole.
  if (!last_.empty())
    bad_input(file_, last_.find('=') != std::string::npos
                         ? "armor: padding before the last line"
                         : "armor: line shorter than 64 columns before the last");
  if (l.empty()) bad_input(file_, "armor: blank line inside the block");
  if (l.size() == 64) {
    const std::size_t at = out.size();
    out.resize(at + 48);
    if (decode_line(l.data(), out.data() + at)) return;
    out.resize(at);
  }
  // The length first: a streamed line is cut short past longest_line, before the characters
  // after that are seen, and the refusal must not depend on where the text was cut.
  if (l.size() > 64) bad_input(file_, "armor: line longer than 64 columns");
  for (const char ch : l)
    if (ch != '=' && !is_b64(static_cast<unsigned char>(ch)))
      bad_input(file_, "armor: invalid character (headers, spaces or binary data?)");
  last_ = l;  // short or padded: the last line, or an error at the next
}

void dearmorer::finish(std::vector<std::uint8_t>& out) {
  // A line without its line end: only the END line may be that (the end of the text may be
  // whitespace; a BEGIN line alone has no END).
  const std::string l = std::move(part_);
  part_.clear();
  if (at_ == where::lead) bad_input(file_, "armor: empty input");
  if (at_ == where::begin && l.substr(0, l.find_last_not_of(armor_ws) + 1) != armor_begin)
    bad_input(file_, "armor: does not start with \"-----BEGIN AGE ENCRYPTED FILE-----\"");
  if (at_ == where::body && is_end_line(l)) line(l, out);
  if (at_ != where::after)
    bad_input(file_, "armor: does not end with \"-----END AGE ENCRYPTED FILE-----\"");
  at_ = where::lead;
}

std::vector<std::uint8_t> dearmor(std::string_view text, std::string_view file) {
  dearmorer d{std::string(file)};
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 65 * 48 + 48);
  d.put(text, out);
  d.finish(out);
  return out;
}

}  // namespace hetpipe::host::age

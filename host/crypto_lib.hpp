// OpenSSL's libcrypto, loaded the first time age encryption calls it rather than when hetpipe
// starts. Linked, it cost every command its loading (its relocations and symbol lookups), and
// only `encrypt`, `decrypt` and `keygen` use it: `hetpipe --version` took 3.12 ms linked and 2.40
// ms without, `checksum` of 5 bytes 4.09 and 3.35 ms, `encrypt` of 5 bytes 6.8-7.4 linked and
// 6.5-7.1 loaded (2-core Zen 4 box, 200 runs each). It is still Debian's shared libcrypto, so its
// security updates apply as they are installed (linked statically, it saved 0.5 ms).
//
// Host code that includes this header calls OpenSSL by its usual names, unqualified:
//
//   EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();   // hetpipe::host::EVP_CIPHER_CTX_new
//
// Each name listed below is, in namespace hetpipe::host, an object that calls the function loaded
// by crypto::lib(). Ordinary lookup finds it before OpenSSL's own declaration, and because it is
// not a function, argument-dependent lookup does not add ::EVP_PKEY_free for an EVP_PKEY*
// argument (which would make the call ambiguous). A function missing from the list is a link
// error in hetpipe_host (libcrypto is not linked), not a silent early load.
#pragma once

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <utility>

// One function a line: clang-format reflowed a packed list differently on every run.
#define HETPIPE_CRYPTO_FUNCTIONS(X)    \
  X(CRYPTO_memcmp)                     \
  X(EVP_CIPHER_CTX_ctrl)               \
  X(EVP_CIPHER_CTX_free)               \
  X(EVP_CIPHER_CTX_new)                \
  X(EVP_CIPHER_CTX_reset)              \
  X(EVP_CIPHER_fetch)                  \
  X(EVP_CipherFinal_ex)                \
  X(EVP_CipherInit_ex)                 \
  X(EVP_CipherUpdate)                  \
  X(EVP_KDF_CTX_free)                  \
  X(EVP_KDF_CTX_new)                   \
  X(EVP_KDF_derive)                    \
  X(EVP_KDF_fetch)                     \
  X(EVP_PBE_scrypt)                    \
  X(EVP_PKEY_CTX_free)                 \
  X(EVP_PKEY_CTX_new)                  \
  X(EVP_PKEY_derive)                   \
  X(EVP_PKEY_derive_init)              \
  X(EVP_PKEY_derive_set_peer_ex)       \
  X(EVP_PKEY_free)                     \
  X(EVP_PKEY_get_raw_public_key)       \
  X(EVP_PKEY_new_raw_private_key)      \
  X(EVP_PKEY_new_raw_public_key)       \
  X(EVP_sha256)                        \
  X(HMAC)                              \
  X(OPENSSL_cleanse)                   \
  X(OSSL_PARAM_construct_end)          \
  X(OSSL_PARAM_construct_octet_string) \
  X(OSSL_PARAM_construct_utf8_string)  \
  X(RAND_bytes)

namespace hetpipe::host {
namespace crypto {

// The soname of OpenSSL 3's libcrypto (cmake/dependencies.cmake asks for OpenSSL 3).
inline constexpr const char* soname = "libcrypto.so.3";

struct functions {
#define HETPIPE_CRYPTO_MEMBER(name) decltype(&::name) name = nullptr;
  HETPIPE_CRYPTO_FUNCTIONS(HETPIPE_CRYPTO_MEMBER)
#undef HETPIPE_CRYPTO_MEMBER
};

// The library's functions, loaded (dlopen, never closed) by the first call from any thread.
// Throws hetpipe::error ("cannot load libcrypto.so.3: <why>") when the library or one of the
// functions cannot be found; a later call tries again.
const functions& lib();

template <auto member>
struct call {
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    return (lib().*member)(std::forward<Args>(args)...);
  }
};

}  // namespace crypto

#define HETPIPE_CRYPTO_CALL(name) inline constexpr crypto::call<&crypto::functions::name> name{};
HETPIPE_CRYPTO_FUNCTIONS(HETPIPE_CRYPTO_CALL)
#undef HETPIPE_CRYPTO_CALL

}  // namespace hetpipe::host

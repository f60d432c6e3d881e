# Every dependency comes from a Debian package listed in scripts/deps.txt.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(GMP REQUIRED IMPORTED_TARGET gmp gmpxx)
# ISA-L (libisal-dev ships libisal.pc): CRC32/CRC32C with PCLMULQDQ/AVX-512 picked at run time.
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
# libspng (libspng-dev ships spng.pc, which requires zlib.pc): PNG for the image filters.
pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
# OpenSSL 3 (libssl-dev): the age format's primitives (host/age.cpp); libcrypto only, its headers
# here: hetpipe loads it when first called (host/crypto_lib.hpp). The tests link it for their
# reference checks.
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
if(HETPIPE_TESTS)
  find_package(Catch2 CONFIG REQUIRED)
  pkg_check_modules(MPFR REQUIRED IMPORTED_TARGET mpfr)
endif()

#include "dist/store_handshake.h"

#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace kiln::dist {

std::string random_bytes(std::size_t count) {
  std::string bytes(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1)
    throw StageError("rendezvous tcp store: OpenSSL's RAND_bytes has no entropy to draw from");
  return bytes;
}

std::string handshake_proof(std::string_view secret, std::string_view nonce) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(nonce.data()), nonce.size(), digest,
           &size) == nullptr ||
      size != kProofBytes)
    throw InternalError("rendezvous tcp store: HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(digest), size);
}

bool proof_matches(std::string_view secret, std::string_view nonce, std::string_view proof) {
  const std::string expected = handshake_proof(secret, nonce);
  return proof.size() == expected.size() &&
         CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

std::string make_rdzv_secret() {
  std::string hex;
  for (const unsigned char byte : random_bytes(32)) hex += fmt::format("{:02x}", byte);
  return hex;
}

void check_rdzv_secret(std::string_view secret, std::string_view store) {
  if (secret.empty())
    throw ConfigError(fmt::format(
        "rendezvous {} needs the job's secret: set KILN_RDZV_SECRET to the same random string "
        "on every rank (e.g. export KILN_RDZV_SECRET=$(openssl rand -hex 32) in the job script; "
        "kiln run --nproc sets one itself)",
        store));
  if (secret.size() < kMinSecretBytes)
    throw ConfigError(fmt::format(
        "rendezvous {}: KILN_RDZV_SECRET has {} characters, fewer than {}: use a random string "
        "such as the output of openssl rand -hex 32",
        store, secret.size(), kMinSecretBytes));
}

}  // namespace kiln::dist

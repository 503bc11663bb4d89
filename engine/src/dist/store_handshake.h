// Private to dist: the proof of the job's secret that opens every connection to
// kiln's TCP store (tcp_store.cpp). The server sends a fresh random nonce; the
// client answers HMAC-SHA256(secret, nonce). The secret never crosses the wire,
// and an answer recorded on one connection is worthless on the next, whose nonce
// differs.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::dist {

inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kProofBytes = 32;  // SHA-256

// `count` bytes from OpenSSL's RAND_bytes; StageError when it has no entropy.
std::string random_bytes(std::size_t count);

// HMAC-SHA256(secret, nonce): kProofBytes bytes.
std::string handshake_proof(std::string_view secret, std::string_view nonce);

// Whether `proof` is the proof of `secret` for `nonce`, compared in constant time.
bool proof_matches(std::string_view secret, std::string_view nonce, std::string_view proof);

}  // namespace kiln::dist

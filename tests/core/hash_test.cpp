#include <kiln/error.h>
#include <kiln/hash.h>

#include <gtest/gtest.h>

#include "support/support.h"

namespace kiln {
namespace {

// FIPS 180-2 test vectors.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShotAndFile) {
  Sha256 hash;
  hash.update("a");
  hash.update("bc");
  EXPECT_EQ(hash.hex_digest(), sha256_hex("abc"));
  test::TempDir dir;
  test::write_text(dir / "f", "abc");
  EXPECT_EQ(sha256_file(dir / "f"), sha256_hex("abc"));
}

TEST(Sha256, FieldsAreLengthPrefixed) {
  Sha256 a, b;
  a.update_field("ab");
  a.update_field("c");
  b.update_field("a");
  b.update_field("bc");
  EXPECT_NE(a.hex_digest(), b.hex_digest());
}

TEST(Sha256, MissingFileIsADataErrorNamingIt) {
  try {
    sha256_file("/nonexistent/kiln/file");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/kiln/file: cannot open for reading");
  }
}

}  // namespace
}  // namespace kiln

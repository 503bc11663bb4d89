#include <kiln/data/npy.h>
#include <kiln/error.h>

#include "data/npy_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using ::testing::HasSubstr;
using testing::little_endian;
using testing::npy_file;

class Npy : public ::testing::Test {
 protected:
  fs::path write(const Bytes& bytes) {
    testing::write_bytes(dir_ / "a.npy", bytes);
    return dir_ / "a.npy";
  }
  std::string error(const Bytes& bytes) {
    const fs::path file = write(bytes);
    try {
      read_npy(file);
    } catch (const DataError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no DataError";
    return {};
  }
  testing::ScratchDir dir_;
};

TEST_F(Npy, ReadsEveryAcceptedDtype) {
  struct Case {
    std::string descr;
    DType dtype;
    Bytes data;
  };
  const std::vector<Case> cases = {
      {"|u1", DType::U8, {1, 2, 3, 4, 5, 6}},
      {"<i4", DType::I32, little_endian<std::int32_t>({-1, 2, 3, 4, 5, 6})},
      {"<i8", DType::I64, little_endian<std::int64_t>({1, 2, 3, 4, 5, -6})},
      {"<f4", DType::F32, little_endian<float>({1.5f, 2, 3, 4, 5, 6})},
      {"<f8", DType::F64, little_endian<double>({1, 2, 3, 4, 5, 6.25})},
  };
  for (const Case& c : cases) {
    const Array array = read_npy(write(npy_file(c.descr, "(2, 3)", c.data)));
    EXPECT_EQ(array.dtype, c.dtype) << c.descr;
    EXPECT_EQ(array.shape, (std::vector<std::int64_t>{2, 3})) << c.descr;
    EXPECT_EQ(array.bytes, c.data) << c.descr;
  }
}

TEST_F(Npy, ReadsVersion2Headers) {
  Bytes file = npy_file("<i4", "(1,)", little_endian<std::int32_t>({7}));
  // Version 2.0: a u32 header length in place of the u16.
  file[6] = 2;
  file.insert(file.begin() + 10, {0, 0});
  EXPECT_EQ(read_npy(write(file)).bytes, little_endian<std::int32_t>({7}));
}

TEST_F(Npy, BigEndianIsRefusedWithTheFix) {
  EXPECT_THAT(error(npy_file(">f4", "(1,)", Bytes(4))),
              HasSubstr("a.npy: NPY dtype '>f4' is big-endian; kiln reads little-endian data"));
}

TEST_F(Npy, FortranOrderIsRefused) {
  EXPECT_THAT(error(npy_file("<f4", "(2, 2)", Bytes(16), true)),
              HasSubstr("a.npy: NPY array is in Fortran order; kiln reads C order"));
}

TEST_F(Npy, OtherDtypesAreRefused) {
  EXPECT_THAT(error(npy_file("<i2", "(1,)", Bytes(2))),
              HasSubstr("NPY dtype '<i2' is not one kiln reads"));
  EXPECT_THAT(error(npy_file("|b1", "(1,)", Bytes(1))), HasSubstr("NPY dtype '|b1'"));
}

TEST_F(Npy, SizeMustMatchTheHeader) {
  EXPECT_THAT(error(npy_file("<f4", "(3,)", Bytes(8))),
              HasSubstr("NPY data too short: shape [3] of f32 needs 12 bytes, 8 follow"));
  EXPECT_THAT(error(npy_file("<f4", "(1,)", Bytes(8))), HasSubstr("trailing bytes"));
}

TEST_F(Npy, ShapeProductsAreChecked) {
  EXPECT_THAT(error(npy_file("<f8", "(4294967296, 4294967296)", {})),
              HasSubstr("a.npy: NPY header: shape [4294967296, 4294967296] of 8-byte elements is "
                        "impossibly large"));
  // A zero extent hides nothing: the rows' size must still fit.
  EXPECT_THAT(error(npy_file("<f8", "(0, 9223372036854775807, 4)", {})),
              HasSubstr("shape [0, 9223372036854775807, 4] of 8-byte elements is impossibly"));
}

TEST_F(Npy, BadMagicScalarAndOversizedHeader) {
  EXPECT_THAT(error(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}), HasSubstr("not an NPY file"));
  EXPECT_THAT(error(npy_file("<f4", "()", Bytes(4))), HasSubstr("0-dimensional"));
  Bytes huge = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 1};  // 16 MiB header
  EXPECT_THAT(error(huge), HasSubstr("larger than the 65536 kiln accepts"));
  EXPECT_THAT(error(Bytes{0x93, 'N', 'U', 'M'}), HasSubstr("NPY preamble is cut short"));
}

}  // namespace
}  // namespace kiln::data

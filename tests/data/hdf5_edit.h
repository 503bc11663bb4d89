// Changing a dataset file behind the store's back, through the HDF5 API, so that
// its attributes (the recorded id and hashes) stay as they were.
#pragma once

#include <kiln/data/dataset.h>

#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <string>

namespace kiln::data::testing {

// Rewrites u8 array `name` of `file` in place with byte `at` XOR-ed by 1.
inline void flip_one_byte(const std::filesystem::path& file, const std::string& name,
                          std::size_t at) {
  Array array = read_array(file, name);
  array.bytes.at(at) ^= 1;
  const hid_t handle = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(handle, 0);
  const hid_t dataset = H5Dopen2(handle, name.c_str(), H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  EXPECT_GE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, array.bytes.data()),
            0);
  H5Dclose(dataset);
  H5Fclose(handle);
}

}  // namespace kiln::data::testing

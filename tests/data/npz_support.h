// Builds .npz archives in tests with libzip: members stored, as numpy.savez writes
// them, or deflated, as numpy.savez_compressed does.
#pragma once

#include "data/data_test_support.h"

#include <gtest/gtest.h>
#include <zip.h>

#include <string>
#include <vector>

namespace kiln::data::testing {

struct ZipMember {
  std::string name;
  Bytes bytes;
};

inline void write_zip(const std::filesystem::path& path, const std::vector<ZipMember>& members,
                      bool deflate = true) {
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  ASSERT_NE(archive, nullptr) << "libzip error " << code;
  for (const ZipMember& member : members) {
    zip_source_t* source = zip_source_buffer(archive, member.bytes.data(), member.bytes.size(), 0);
    ASSERT_NE(source, nullptr) << zip_strerror(archive);
    const zip_int64_t index = zip_file_add(archive, member.name.c_str(), source, ZIP_FL_ENC_UTF_8);
    ASSERT_GE(index, 0) << zip_strerror(archive);
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                             deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(archive), 0) << zip_strerror(archive);
}

}  // namespace kiln::data::testing

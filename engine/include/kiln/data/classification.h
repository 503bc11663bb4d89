// A classification data set held in memory as float features and int labels,
// read from a dataset version's /x and /y. (The streaming loader replaces this
// for data sets larger than memory.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data {

struct ClassificationData {
  std::int64_t rows = 0;
  std::int64_t features = 0;
  std::int64_t classes = 0;     // max label + 1
  std::vector<float> x;         // rows * features; u8 pixels scaled to [0, 1]
  std::vector<std::int32_t> y;  // rows
};

// DataError naming the file when /x or /y is missing, has the wrong type, or their
// row counts disagree.
ClassificationData load_classification_data(const std::filesystem::path& dataset_file);

}  // namespace kiln::data

#include <kiln/data/classification.h>

#include <kiln/data/dataset.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace kiln::data {
namespace {

std::vector<std::int32_t> labels_of(const Array& y, const std::filesystem::path& file) {
  if (y.shape.size() != 1)
    throw DataError(fmt::format("{}: /y must be one label per row, has rank {}", file.string(),
                                y.shape.size()));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(y.rows()));
  switch (y.dtype) {
    case DType::U8:
      std::copy(y.bytes.begin(), y.bytes.end(), labels.begin());
      break;
    case DType::I32:
      std::memcpy(labels.data(), y.bytes.data(), y.bytes.size());
      break;
    case DType::I64:
      for (std::size_t i = 0; i < labels.size(); ++i) {
        std::int64_t label;
        std::memcpy(&label, y.bytes.data() + 8 * i, 8);
        labels[i] = static_cast<std::int32_t>(label);
      }
      break;
    default:
      throw DataError(fmt::format("{}: /y has dtype {}; labels must be u8, i32 or i64",
                                  file.string(), name_of(y.dtype)));
  }
  for (const std::int32_t label : labels)
    if (label < 0) throw DataError(fmt::format("{}: /y holds a negative label", file.string()));
  return labels;
}

}  // namespace

ClassificationData load_classification_data(const std::filesystem::path& dataset_file) {
  const Array x = read_array(dataset_file, "x");
  const Array y = read_array(dataset_file, "y");
  if (x.rows() != y.rows())
    throw DataError(
        fmt::format("{}: /x has {} rows but /y has {}", dataset_file.string(), x.rows(), y.rows()));
  if (x.dtype != DType::U8 && x.dtype != DType::F32)
    throw DataError(fmt::format("{}: /x has dtype {}; the MLP trainer reads u8 or f32",
                                dataset_file.string(), name_of(x.dtype)));
  ClassificationData data;
  data.rows = x.rows();
  data.features = x.row_elements();
  data.x.resize(static_cast<std::size_t>(data.rows * data.features));
  if (x.dtype == DType::U8) {
    // Pixels to [0, 1], as torchvision's ToTensor does.
    for (std::size_t i = 0; i < data.x.size(); ++i) data.x[i] = x.bytes[i] * (1.0f / 255.0f);
  } else {
    std::memcpy(data.x.data(), x.bytes.data(), x.bytes.size());
  }
  data.y = labels_of(y, dataset_file);
  data.classes = data.y.empty() ? 0 : *std::max_element(data.y.begin(), data.y.end()) + 1;
  return data;
}

}  // namespace kiln::data

// A batch source over a dataset version held in memory: the whole of /x as float32
// and /y as labels or targets, shuffled per epoch by the Philox Shuffle stream.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/nn/rng.h>
#include <kiln/train/batches.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

namespace kiln::train {

BatchSource::~BatchSource() = default;

namespace {

Tensor features_of(const data::Array& x, const std::filesystem::path& file) {
  Tensor out = Tensor::empty({x.elements()});
  float* values = out.data<float>();
  if (x.dtype == DType::U8) {
    // Pixels to [0, 1], as torchvision's ToTensor does.
    for (std::int64_t i = 0; i < x.elements(); ++i) values[i] = x.bytes[static_cast<std::size_t>(i)] * (1.0f / 255.0f);
  } else if (x.dtype == DType::F32) {
    std::memcpy(values, x.bytes.data(), x.bytes.size());
  } else {
    throw DataError(fmt::format("{}: /x has dtype {}; training reads u8 or f32 features", file.string(),
                                name_of(x.dtype)));
  }
  return out;
}

Tensor labels_of(const data::Array& y, const std::filesystem::path& file) {
  if (y.shape.size() != 1)
    throw DataError(fmt::format("{}: /y must hold one label per row, has shape {}", file.string(),
                                shape_string(y.shape)));
  Tensor out = Tensor::empty({y.rows()}, DType::I32);
  std::int32_t* labels = out.data<std::int32_t>();
  for (std::int64_t i = 0; i < y.rows(); ++i) {
    std::int64_t value = 0;
    const auto* bytes = y.bytes.data() + static_cast<std::size_t>(i) * size_of(y.dtype);
    if (y.dtype == DType::U8) value = *bytes;
    else if (y.dtype == DType::I32) { std::int32_t v; std::memcpy(&v, bytes, 4); value = v; }
    else if (y.dtype == DType::I64) std::memcpy(&value, bytes, 8);
    else throw DataError(fmt::format("{}: /y has dtype {}; labels must be u8, i32 or i64", file.string(), name_of(y.dtype)));
    if (value < 0 || value > INT32_MAX)
      throw DataError(fmt::format("{}: /y row {} holds label {}, outside [0, 2^31)", file.string(), i, value));
    labels[i] = static_cast<std::int32_t>(value);
  }
  return out;
}

class InMemoryBatches final : public BatchSource {
 public:
  InMemoryBatches(const std::filesystem::path& file, const InMemoryOptions& options) : options_(options) {
    const data::Array x = data::read_array(file, "x");
    const data::Array y = data::read_array(file, "y");
    if (x.rows() != y.rows())
      throw DataError(fmt::format("{}: /x has {} rows but /y has {}", file.string(), x.rows(), y.rows()));
    if (x.rows() == 0) throw DataError(fmt::format("{}: the dataset has no rows", file.string()));
    rows_ = x.rows();
    sample_shape_ = Shape(x.shape.begin() + 1, x.shape.end());
    if (!options.sample_shape.empty()) {
      if (shape_elements(options.sample_shape) != shape_elements(sample_shape_))
        throw DataError(fmt::format("{}: rows of /x are {}, which cannot be viewed as {}", file.string(),
                                    shape_string(sample_shape_), shape_string(options.sample_shape)));
      sample_shape_ = options.sample_shape;
    }
    x_ = features_of(x, file);
    if (options.targets == "labels") {
      y_ = labels_of(y, file);
      const std::int32_t* labels = y_.data<std::int32_t>();
      classes_ = *std::max_element(labels, labels + rows_) + 1;
    } else {
      if (y.dtype != DType::F32)
        throw DataError(fmt::format("{}: /y has dtype {}; regression targets must be f32", file.string(), name_of(y.dtype)));
      y_ = Tensor::empty(y.shape);
      std::memcpy(y_.raw(), y.bytes.data(), y.bytes.size());
    }
  }

  std::int64_t rows() const override { return rows_; }
  std::int64_t batches_per_epoch() const override {
    const std::int64_t b = options_.batch_size;
    return options_.drop_last ? rows_ / b : (rows_ + b - 1) / b;
  }
  Shape sample_shape() const override { return sample_shape_; }
  std::int64_t classes() const override { return classes_; }

  void start_epoch(std::int64_t epoch, std::int64_t first_batch) override {
    epoch_ = epoch;
    next_batch_ = first_batch;
    if (options_.shuffle) {
      order_ = nn::permutation(rows_, options_.seed, static_cast<std::uint64_t>(epoch));
    } else {
      order_.resize(static_cast<std::size_t>(rows_));
      std::iota(order_.begin(), order_.end(), std::int64_t{0});
    }
  }

  bool next(Batch& batch) override {
    if (next_batch_ >= batches_per_epoch()) return false;
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t first = next_batch_ * options_.batch_size;
    const std::int64_t count = std::min(options_.batch_size, rows_ - first);
    batch.x = gather(x_, first, count, sample_shape_);
    Shape y_shape(y_.shape().begin() + 1, y_.shape().end());
    batch.y = gather(y_, first, count, y_shape);
    batch.epoch = epoch_;
    batch.index = next_batch_++;
    wait_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return true;
  }
  double wait_seconds() const override { return wait_; }

 private:
  Tensor gather(const Tensor& source, std::int64_t first, std::int64_t count, const Shape& row_shape) {
    const std::size_t row_bytes = source.nbytes() / static_cast<std::size_t>(rows_);
    Shape shape = row_shape;
    shape.insert(shape.begin(), count);
    Tensor out = Tensor::empty(shape, source.dtype());
    const auto* in = static_cast<const char*>(source.raw());
    auto* dst = static_cast<char*>(out.raw());
    for (std::int64_t i = 0; i < count; ++i)
      std::memcpy(dst + static_cast<std::size_t>(i) * row_bytes,
                  in + static_cast<std::size_t>(order_[static_cast<std::size_t>(first + i)]) * row_bytes, row_bytes);
    return options_.device.is_cpu() ? out : out.to(options_.device);
  }

  InMemoryOptions options_;
  std::int64_t rows_ = 0, classes_ = 0;
  Shape sample_shape_;
  Tensor x_, y_;
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0, next_batch_ = 0;
  double wait_ = 0.0;
};

}  // namespace

std::unique_ptr<BatchSource> in_memory_batches(const std::filesystem::path& dataset,
                                               const InMemoryOptions& options) {
  if (options.batch_size < 1) throw ConfigError("batch_size must be at least 1");
  return std::make_unique<InMemoryBatches>(dataset, options);
}

}  // namespace kiln::train

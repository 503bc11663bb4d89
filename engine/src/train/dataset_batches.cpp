// The training batch source: the StreamingLoader's batches of a dataset version,
// turned into tensors (u8 images through the fused preprocessing, float32 as is).
#include <kiln/data/dataset.h>
#include <kiln/data/loader.h>
#include <kiln/error.h>
#include <kiln/train/batches.h>
#include <kiln/train/tabular.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "kernels/preprocess.h"
#include "ops/parallel.h"
#ifdef KILN_HAVE_CUDA
#include "kernels/preprocess_cuda.h"
#include "tensor/cuda_context.h"
#include "train/device_upload.h"
#endif

namespace kiln::train {

BatchSource::~BatchSource() = default;

namespace {

// A label of /y, stored as u8, i32 or i64 (little-endian).
std::int64_t label_at(const std::uint8_t* bytes, DType dtype) {
  if (dtype == DType::U8) return *bytes;
  if (dtype == DType::I32) {
    std::int32_t value;
    std::memcpy(&value, bytes, 4);
    return value;
  }
  std::int64_t value;
  std::memcpy(&value, bytes, 8);
  return value;
}

// The number of classes: largest label + 1 (reads /y alone, which is small).
std::int64_t count_classes(const std::filesystem::path& file) {
  const data::Array y = data::read_array(file, "y");
  if (y.shape.size() != 1)
    throw DataError(fmt::format("{}: /y must hold one label per row, has shape {}", file.string(),
                                shape_string(y.shape)));
  if (y.dtype != DType::U8 && y.dtype != DType::I32 && y.dtype != DType::I64)
    throw DataError(fmt::format("{}: /y has dtype {}; labels must be u8, i32 or i64", file.string(),
                                name_of(y.dtype)));
  std::int64_t largest = -1;
  for (std::int64_t i = 0; i < y.rows(); ++i) {
    const std::int64_t value =
        label_at(y.bytes.data() + static_cast<std::size_t>(i) * size_of(y.dtype), y.dtype);
    if (value < 0 || value > INT32_MAX)
      throw DataError(
          fmt::format("{}: /y row {} holds label {}, outside [0, 2^31)", file.string(), i, value));
    largest = std::max(largest, value);
  }
  return largest + 1;
}

// `shape` of one row, with `rows` rows in front.
Shape with_rows(Shape shape, std::int64_t rows) {
  shape.insert(shape.begin(), rows);
  return shape;
}

class DatasetBatches final : public BatchSource {
 public:
  DatasetBatches(const std::filesystem::path& file, const BatchOptions& options)
      : options_(options), loader_(loader_options(file, options)) {
    const data::DatasetVersion info = data::read_dataset_info(file);
    for (const auto& array : info.arrays)
      if (array.name == "x") {
        stored_shape_ = Shape(array.shape.begin() + 1, array.shape.end());
        x_dtype_ = array.dtype;
      }
    if (x_dtype_ != DType::U8 && x_dtype_ != DType::F32)
      throw DataError(fmt::format("{}: /x has dtype {}; training reads u8 or f32 features",
                                  file.string(), name_of(x_dtype_)));
    set_up_preprocessing(info);
    // The features a row becomes: as stored, or one-hot encoded columns wider.
    sample_shape_ = tabular_ ? Shape{tabular_->output_columns()} : stored_shape_;
    if (!options.sample_shape.empty()) {
      if (shape_elements(options.sample_shape) != shape_elements(sample_shape_))
        throw DataError(fmt::format("{}: rows of /x are {}{}, which cannot be viewed as {}",
                                    file.string(), shape_string(sample_shape_),
                                    tabular_ ? " after preprocessing" : "",
                                    shape_string(options.sample_shape)));
      sample_shape_ = options.sample_shape;
    }
    if (options.targets == "labels") classes_ = count_classes(file);
#ifdef KILN_HAVE_CUDA
    if (options.device.is_cuda()) upload_ = std::make_unique<DeviceUpload>(options.device);
#endif
  }

  std::int64_t rows() const override { return loader_.rows(); }
  std::int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  Shape sample_shape() const override { return sample_shape_; }
  std::int64_t classes() const override { return classes_; }
  void start_epoch(std::int64_t epoch, std::int64_t first_batch) override {
    epoch_ = epoch;
    loader_.start_epoch(epoch, first_batch);
  }
  double wait_seconds() const override { return loader_.wait_seconds(); }

  bool next(Batch& batch) override {
    std::optional<data::Batch> loaded = loader_.next();
    if (!loaded) return false;
    batch.epoch = loaded->epoch;
    batch.index = loaded->index;
    batch.global_rows = loaded->global_rows;
#ifdef KILN_HAVE_CUDA
    if (upload_) {
      to_device(*loaded, batch);
      return true;
    }
#endif
    batch.x = features(*loaded);
    batch.y = targets(loaded->array("y"), loaded->rows);
    return true;
  }

 private:
  static data::LoaderOptions loader_options(const std::filesystem::path& file,
                                            const BatchOptions& options) {
    data::LoaderOptions loader;
    loader.file = file;
    loader.global_batch_size = options.batch_size;
    loader.seed = options.seed;
    loader.shuffle = options.shuffle;
    loader.drop_last = options.drop_last;
    loader.rank = options.rank;
    loader.world_size = options.world_size;
    loader.memory_budget_bytes = options.memory_budget_bytes;
    return loader;
  }

  // u8 rows of [H, W] or [H, W, C] are images for the fused preprocessing.
  void set_up_preprocessing(const data::DatasetVersion& info) {
    images_ = x_dtype_ == DType::U8 && (stored_shape_.size() == 2 || stored_shape_.size() == 3);
    if (!images_) {
      if (is_tabular(options_.preprocess) && x_dtype_ == DType::F32 && stored_shape_.size() == 1) {
        tabular_ = tabular_transform(options_.preprocess, stored_shape_[0], &info);
        return;
      }
      if (!data::categories_of(info.source).empty())
        throw ConfigError(fmt::format(
            "{}: /x has categorical columns, which need a fitted preprocess to be one-hot "
            "encoded (train fits one)",
            info.file.string()));
      if (!options_.preprocess.is_null() && !options_.preprocess.empty())
        throw ConfigError(
            "preprocess: applies to u8 images ([N, H, W] or [N, H, W, C]), or impute/scale to "
            "f32 features [N, columns]; /x is " +
            std::string(name_of(x_dtype_)) + " " + shape_string(stored_shape_));
      return;
    }
    const int channels = stored_shape_.size() == 3 ? static_cast<int>(stored_shape_[2]) : 1;
    preprocess_ = kernels::parse_preprocess_options(
        options_.preprocess.is_null() ? nlohmann::json::object() : options_.preprocess, channels,
        static_cast<int>(stored_shape_[0]), static_cast<int>(stored_shape_[1]));
    if (!options_.augment) preprocess_ = kernels::without_augmentation(preprocess_);
  }

  Tensor features(const data::Batch& loaded) const {
    const data::BatchArray& x = loaded.array("x");
    Tensor out = Tensor::empty(with_rows(sample_shape_, loaded.rows));
    if (images_) {
      // Samples are independent, so they split over the CPU threads without
      // changing a bit; on the MLP's step this was serial work the others waited on.
      const std::int64_t in_row = shape_elements(stored_shape_);
      const std::int64_t out_row = shape_elements(sample_shape_);
      ops::parallel_chunks(
          loaded.rows, ops::items_for(out_row), [&](std::int64_t begin, std::int64_t end) {
            kernels::preprocess_batch_cpu(
                x.bytes.data() + begin * in_row, end - begin, loaded.sample_ids.data() + begin,
                preprocess_, {options_.seed, epoch_}, out.data<float>() + begin * out_row);
          });
    } else if (x.dtype == DType::F32) {
      if (tabular_)
        apply(*tabular_, reinterpret_cast<const float*>(x.bytes.data()), out.data<float>(),
              loaded.rows);
      else
        std::memcpy(out.raw(), x.bytes.data(), out.nbytes());
    } else {
      float* values = out.data<float>();
      for (std::int64_t i = 0; i < out.numel(); ++i)
        values[i] = x.bytes[static_cast<std::size_t>(i)] * (1.0f / 255.0f);
    }
    return out;
  }

  Tensor targets(const data::BatchArray& y, std::int64_t rows) const {
    if (options_.targets != "labels") {
      if (y.dtype != DType::F32) throw DataError("regression targets /y must be f32");
      Tensor out = Tensor::empty(Shape(y.shape.begin(), y.shape.end()));
      std::memcpy(out.raw(), y.bytes.data(), out.nbytes());
      return out;
    }
    Tensor out = Tensor::empty({rows}, DType::I32);
    std::int32_t* labels = out.data<std::int32_t>();
    const std::size_t size = size_of(y.dtype);
    for (std::int64_t i = 0; i < rows; ++i)  // checked in [0, 2^31) when opened
      labels[i] = static_cast<std::int32_t>(
          label_at(y.bytes.data() + static_cast<std::size_t>(i) * size, y.dtype));
    return out;
  }

#ifdef KILN_HAVE_CUDA
  // The batch on the GPU: raw u8 images go up through pinned memory and the fused
  // preprocessing kernel runs there (the same bits as preprocess_batch_cpu); other
  // features are converted on the host first. Labels were checked when the file
  // was opened (count_classes), so the trainer need not read them back.
  void to_device(const data::Batch& loaded, Batch& batch) {
    upload_->begin_batch();
    if (images_) {
      const Device device = options_.device;
      const Tensor pixels = upload_->upload(loaded.array("x").bytes.data(),
                                            with_rows(stored_shape_, loaded.rows), DType::U8);
      const Tensor ids = upload_->upload(loaded.sample_ids.data(), {loaded.rows}, DType::I64);
      batch.x = Tensor::empty(with_rows(sample_shape_, loaded.rows), DType::F32, device);
      if (loaded.rows > 0)
        kernels::launch_preprocess(pixels.data<std::uint8_t>(), loaded.rows,
                                   ids.data<std::int64_t>(), preprocess_, {options_.seed, epoch_},
                                   batch.x.data<float>(), cuda::stream(device));
    } else if (x_dtype_ == DType::F32 && !tabular_) {  // as stored: straight from the loader
      batch.x = upload_->upload(loaded.array("x").bytes.data(),
                                with_rows(sample_shape_, loaded.rows), DType::F32);
    } else {
      const Tensor x = features(loaded);
      batch.x = upload_->upload(x.raw(), x.shape(), x.dtype());
    }
    const Tensor y = targets(loaded.array("y"), loaded.rows);
    batch.y = upload_->upload(y.raw(), y.shape(), y.dtype());
    upload_->end_batch();
  }
  std::unique_ptr<DeviceUpload> upload_;
#endif

  BatchOptions options_;
  data::StreamingLoader loader_;
  Shape stored_shape_, sample_shape_;
  DType x_dtype_ = DType::U8;
  std::int64_t classes_ = 0;
  std::int64_t epoch_ = 0;
  bool images_ = false;
  kernels::PreprocessOptions preprocess_;
  std::optional<TabularTransform> tabular_;  // impute/scale of f32 features (train/tabular.h)
};

}  // namespace

std::unique_ptr<BatchSource> dataset_batches(const std::filesystem::path& dataset,
                                             const BatchOptions& options) {
  if (options.batch_size < 1) throw ConfigError("batch_size must be at least 1");
  return std::make_unique<DatasetBatches>(dataset, options);
}

}  // namespace kiln::train

// Where training batches come from. A source defines a global sample order per
// epoch from the seed; global batch b of an epoch is rows [b B, (b + 1) B) of that
// order, and a rank of a data-parallel run takes its slice of each global batch, so
// the samples in a step do not depend on the number of ranks (docs/distributed.md).
#pragma once

#include <kiln/tensor/tensor.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace kiln::train {

struct Batch {
  Tensor x;  // [rows, ...] float32
  // [rows] int32 labels, or [rows, ...] float32 targets. Labels lie in
  // [0, classes()): the trainer checks them only when they are in host memory
  // (reading a GPU's back would stall every step), so a source that hands out
  // labels on a GPU must have checked them on the host.
  Tensor y;
  std::int64_t epoch = 0, index = 0;
  std::int64_t global_rows = 0;  // rows of the global batch this rank's rows belong to
};

class BatchSource {
 public:
  virtual ~BatchSource();
  virtual std::int64_t rows() const = 0;
  virtual std::int64_t batches_per_epoch() const = 0;
  virtual Shape sample_shape() const = 0;  // per-row shape of x
  // Number of classes (largest label + 1) for integer labels; 0 for float targets.
  virtual std::int64_t classes() const = 0;
  // Positions the source at batch `first_batch` of `epoch` (resume).
  virtual void start_epoch(std::int64_t epoch, std::int64_t first_batch) = 0;
  // The next batch of the epoch, or false at its end.
  virtual bool next(Batch& batch) = 0;
  // Seconds spent waiting for data so far.
  virtual double wait_seconds() const = 0;
};

struct BatchOptions {
  std::int64_t batch_size = 128;  // the global batch: all ranks together
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
  std::string targets = "labels";  // labels (int32 from /y) or values (float32 from /y)
  Shape sample_shape;  // view each row of /x with this shape (same element count); empty: as stored
  // Where batches are delivered. On a GPU, u8 images are preprocessed there by
  // the fused kernel and copies go through pinned memory (no host wait per batch).
  Device device;
  int rank = 0, world_size = 1;  // this rank takes its slice of every global batch
  std::size_t memory_budget_bytes = std::size_t{256} << 20;  // the loader's window of chunks
  // Image augmentation and normalisation (the `preprocess:` mapping, see
  // kernels/preprocess.h), applied to u8 images; null: pixels / 255 only.
  nlohmann::json preprocess;
  bool augment = true;  // false: normalise only (evaluation)
};

// Streams /x and /y of a dataset version through the StreamingLoader (bounded
// memory, prefetched in a background thread): u8 images become float32 through the
// fused preprocessing (pixels / 255, then normalisation and augmentation if asked),
// float32 features are taken as they are. DataError naming the file for missing
// arrays, disagreeing row counts, negative labels or unsupported dtypes.
std::unique_ptr<BatchSource> dataset_batches(const std::filesystem::path& dataset,
                                             const BatchOptions& options);

}  // namespace kiln::train

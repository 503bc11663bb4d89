// The streaming loader: batches from a dataset file, read chunk by chunk under a
// memory budget, prefetched by a background thread, shuffled deterministically
// and sharded over data-parallel ranks.
//
// Order. Each epoch has one GLOBAL order of the rows that depends on (seed,
// epoch, the file's chunk layout, the budget-derived window size) but never on the
// world size or the rank. The file is cut into blocks of whole chunks of the
// widest array. With shuffling, the blocks are permuted (nn::permutation(blocks,
// seed, epoch)), taken `window_blocks()` at a time, and the rows of each window are
// permuted again (Fisher-Yates on the Shuffle stream, counter word 3 = window + 1).
// Without shuffling the order is the file's.
//
// Batches. Global batch i is positions [i*B, min((i+1)*B, N)) of that order (B =
// global_batch_size). Rank r of W takes rows [r*b/W, (r+1)*b/W) of a batch of b
// rows (integer division), so when B % W != 0 some ranks get one row more, and the
// concatenation over ranks is exactly the one-rank batch. Every rank sees the same
// batches_per_epoch(): N/B with drop_last (the tail of the order is dropped), else
// ceil(N/B) with a short last batch, in which a rank may get zero rows; such a batch
// is still returned, so that every rank steps and joins the collectives. To match
// one rank with batch B, a trainer weights each rank's summed loss by 1/global_rows.
//
// Memory. Two windows (the one served and the next, read a block at a time
// between batches), prefetch_batches + 2 batch buffers (accounted at the global
// batch size; by default up to 4 MiB, or a sixteenth of the budget), and HDF5's
// chunk cache (1 MiB per array). The window size is chosen so that these stay
// within memory_budget_bytes; a budget too small for two windows that a batch can
// span is a ConfigError saying how much is needed. Where the whole data set also
// fits beside them (Fashion-MNIST's 47 MB in the default 256 MiB), it is read once
// and kept, and the windows serve its rows in place, in the same order: epochs
// after the first read, inflate and copy nothing but their batches. Beyond the
// budget: inflate buffers, the reader thread and code pages, a few MiB
// (tests/data/loader_memory_test.cpp measures it).
#pragma once

#include <kiln/dtype.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

// Where batch memory comes from. The default is the heap; the CUDA backend plugs
// in page-locked memory (cudaHostAlloc / cudaFreeHost) so that batches can be
// copied to the device asynchronously. Buffers are allocated once, at construction.
struct HostAllocator {
  std::function<void*(std::size_t bytes)> allocate;
  std::function<void(void* pointer, std::size_t bytes)> deallocate;
};

struct LoaderOptions {
  std::filesystem::path file;
  std::vector<std::string> arrays{"x", "y"};
  std::int64_t global_batch_size = 0;
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
  int rank = 0, world_size = 1;
  std::size_t memory_budget_bytes = std::size_t{256} << 20;
  int prefetch_batches = 0;  // 0: as many as fit in 4 MiB or budget / 16, 2 to 32
  HostAllocator allocator;   // empty members: the heap
};

// One array's slice of a batch: rows first in shape, bytes little-endian, C order.
struct BatchArray {
  std::string name;
  DType dtype = DType::U8;
  std::vector<std::int64_t> shape;
  std::span<const std::uint8_t> bytes;
};

struct Batch {
  std::int64_t epoch = 0;
  std::int64_t index = 0;                // global batch index within the epoch
  std::int64_t rows = 0;                 // this rank's rows (may be 0 in a short last batch)
  std::int64_t global_rows = 0;          // rows of the global batch (B, or the short tail)
  std::int64_t global_offset = 0;        // this rank's first row within the global batch
  std::vector<BatchArray> arrays;        // in LoaderOptions::arrays order
  std::vector<std::int64_t> sample_ids;  // file row of each row: addresses augmentation RNG
  // Keeps the buffer out of the loader's reuse while any copy of this Batch lives.
  // The loader has prefetch_batches + 2 buffers: a caller holding more than
  // prefetch_batches + 1 batches at once would wait for itself in next().
  std::shared_ptr<const void> storage;

  // The array of that name; InternalError if the loader was not asked for it.
  const BatchArray& array(std::string_view name) const;
};

// Where to resume: the next batch to be returned. batch == batches_per_epoch()
// means the epoch is complete.
struct LoaderPosition {
  std::int64_t epoch = 0, batch = 0;
};
void to_json(nlohmann::json& json, const LoaderPosition& position);
void from_json(const nlohmann::json& json, LoaderPosition& position);

class StreamingLoader {
 public:
  // Opens the file and checks the arrays (present, same rows) and the options;
  // DataError / ConfigError naming what is wrong. Reads nothing until start_epoch.
  explicit StreamingLoader(LoaderOptions options);
  ~StreamingLoader();
  StreamingLoader(const StreamingLoader&) = delete;
  StreamingLoader& operator=(const StreamingLoader&) = delete;

  std::int64_t rows() const;
  std::int64_t batches_per_epoch() const;
  // Blocks per shuffle window, and rows per block: what the budget allowed.
  std::int64_t window_blocks() const;
  std::int64_t block_rows() const;
  int prefetch_batches() const;  // as chosen (LoaderOptions::prefetch_batches 0)

  // Starts (or restarts) the background reader at `first_batch` of `epoch`; a
  // batch in progress is abandoned.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  // The next batch of the epoch, nullopt at its end. Rethrows the reader's error.
  std::optional<Batch> next();
  LoaderPosition position() const;
  // Total seconds next() spent waiting for the reader.
  double wait_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// While one lives, the resident data sets that loaders read stay in memory after
// the loaders are gone, up to `max_bytes` (the least recently used dropped first),
// and a later loader of the same arrays of the same unchanged file takes them
// instead of reading and inflating the file again. A sweep worker holds one across
// its trials, which read the same training and validation data. Only files whose
// status had not changed for a second before the read are kept (the rule of
// kiln-hdf5-reader's checks, docs/formats.md). Without one nothing is kept; when
// the last one ends, what was kept is freed. Thread-safe.
class ResidentDataRetention {
 public:
  explicit ResidentDataRetention(std::size_t max_bytes);
  ~ResidentDataRetention();
  ResidentDataRetention(const ResidentDataRetention&) = delete;
  ResidentDataRetention& operator=(const ResidentDataRetention&) = delete;
};

}  // namespace kiln::data

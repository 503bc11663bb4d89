// StreamingLoader: options and geometry are checked in the constructor; a
// background thread reads windows and fills batch buffers; next() hands them out.
// Ordering, sharding and memory rules: <kiln/data/loader.h>.
#include <kiln/data/loader.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>

#include "data/loader_channel.h"
#include "data/loader_order.h"
#include "data/loader_window.h"
#include "data/resident_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace kiln::data {
namespace {

using detail::BatchChannel;
using detail::BatchLayout;
using detail::EpochOrder;
using detail::LoaderGeometry;
using detail::RowReader;
using detail::WindowBuffer;

constexpr double kMiB = 1024.0 * 1024.0;

void check_options(const LoaderOptions& options) {
  if (options.global_batch_size < 1)
    throw ConfigError(fmt::format("loader: global batch size must be at least 1, got {}",
                                  options.global_batch_size));
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw ConfigError(fmt::format("loader: rank {} of world size {} is out of range", options.rank,
                                  options.world_size));
  if (options.prefetch_batches < 0)
    throw ConfigError(fmt::format("loader: prefetch_batches must be 0 (automatic) or more, got {}",
                                  options.prefetch_batches));
  if (options.arrays.empty()) throw ConfigError("loader: no arrays to read");
}

std::int64_t common_rows(const DatasetReader& reader, const std::vector<std::string>& arrays) {
  std::int64_t rows = -1;
  for (const std::string& name : arrays) {
    const ArrayInfo& info = reader.array(name);
    if (info.shape.empty())
      throw DataError(fmt::format("{}: array '{}' has no rows axis", reader.file().string(), name));
    if (rows >= 0 && info.shape.front() != rows)
      throw DataError(fmt::format("{}: arrays disagree on rows: '{}' has {}, '{}' has {}",
                                  reader.file().string(), arrays.front(), rows, name,
                                  info.shape.front()));
    rows = info.shape.front();
  }
  return rows;
}

// prefetch_batches 0: global batches as fit in kPrefetchBytes, or in a sixteenth
// of the memory budget if that is less (2 to 32), counted as the plan counts them,
// so that the windows, and with them the order, stay the same for every world
// size. The reader thread waits for half the buffers to be free before it fills
// them (loader_channel.h), so more buffers mean rarer wake-ups: with 4 buffers,
// waking it cost the MLP's training thread 50-70 us of its ~900 us step on 2
// cores; with 32 of Fashion-MNIST's 100 KB batches, 17-24 us.
constexpr std::int64_t kPrefetchBytes = std::int64_t{4} << 20;

int choose_prefetch(const DatasetReader& reader, const LoaderOptions& options) {
  if (options.prefetch_batches > 0) return options.prefetch_batches;
  std::int64_t row_bytes = 0;
  for (const std::string& name : options.arrays) row_bytes += reader.row_bytes(name);
  const std::int64_t batch_bytes = options.global_batch_size * (row_bytes + 8);
  const std::int64_t room =
      std::min(kPrefetchBytes, static_cast<std::int64_t>(options.memory_budget_bytes / 16));
  const std::int64_t fit = room / std::max<std::int64_t>(batch_bytes, 1);
  return static_cast<int>(std::clamp<std::int64_t>(fit, 2, 32));
}

struct LoaderPlan {
  LoaderGeometry geometry;
  // The whole data set fits the budget beside the windows, batches and chunk caches:
  // then the loader reads it once and serves every block from memory, and epochs
  // after the first read and inflate nothing (zlib took a seventh of the MLP's CPU
  // time on 2 cores, every epoch).
  bool resident = false;
};

// Blocks are whole chunks of the widest array (a partial chunk costs a whole
// inflate unless HDF5's 1 MiB chunk cache holds it); a file with chunks too large
// for the budget, or none, is read in blocks of a quarter of what the windows may
// hold, so that two windows of two blocks still fit.
LoaderPlan plan_geometry(const DatasetReader& reader, const LoaderOptions& options,
                         std::int64_t rows) {
  std::int64_t row_bytes = 0;
  std::string widest = options.arrays.front();
  for (const std::string& name : options.arrays) {
    row_bytes += reader.row_bytes(name);
    if (reader.row_bytes(name) > reader.row_bytes(widest)) widest = name;
  }
  // Accounted with the GLOBAL batch, not this rank's share, so that the window
  // size (and with it the order) is the same for every world size.
  const std::int64_t batch = options.global_batch_size;
  const auto buffers = static_cast<std::int64_t>(options.prefetch_batches) + 2;
  const std::int64_t batch_bytes = buffers * batch * (row_bytes + 8);
  const std::int64_t window_row_bytes = row_bytes + 4;  // + its u32 permutation entry
  const auto budget = static_cast<std::int64_t>(options.memory_budget_bytes);
  // HDF5 keeps up to 1 MiB of inflated chunks per open array (its default chunk
  // cache); that is the loader's memory too.
  const auto chunk_caches = static_cast<std::int64_t>(options.arrays.size()) * (1 << 20);
  const std::int64_t for_windows = budget - batch_bytes - chunk_caches;
  LoaderGeometry geometry{rows, std::max<std::int64_t>(reader.chunk_rows(widest), 1), 1};
  const std::int64_t cap = std::max<std::int64_t>(for_windows / 4 / window_row_bytes, 1);
  geometry.block_rows = std::min(geometry.block_rows, cap);
  // A batch must span at most two windows: every full window holds at least
  // (window_blocks - 1) * block_rows + 1 rows.
  const std::int64_t needed = 1 + (batch - 1 + geometry.block_rows - 1) / geometry.block_rows;
  const std::int64_t window_bytes = geometry.block_rows * window_row_bytes;
  const std::int64_t fits = for_windows > 0 ? for_windows / (2 * window_bytes) : 0;
  const std::int64_t blocks = std::max<std::int64_t>(geometry.blocks(), 1);
  if (fits < std::min(needed, blocks))
    throw ConfigError(fmt::format(
        "loader: memory budget of {:.1f} MiB is too small for {}: batches of {} rows of {} "
        "bytes, read in blocks of {} rows, need at least {:.1f} MiB",
        static_cast<double>(budget) / kMiB, reader.file().string(), batch, row_bytes,
        geometry.block_rows,
        static_cast<double>(batch_bytes + chunk_caches +
                            2 * std::min(needed, blocks) * window_bytes) /
            kMiB));
  geometry.window_blocks = std::min(fits, blocks);
  const std::int64_t planned =
      batch_bytes + chunk_caches + 2 * geometry.window_blocks * window_bytes;
  return {geometry, planned + rows * row_bytes <= budget};
}

}  // namespace

const BatchArray& Batch::array(std::string_view name) const {
  for (const BatchArray& array : arrays)
    if (array.name == name) return array;
  throw InternalError(fmt::format("batch has no array '{}'", name));
}

void to_json(nlohmann::json& json, const LoaderPosition& position) {
  json = {{"epoch", position.epoch}, {"batch", position.batch}};
}

void from_json(const nlohmann::json& json, LoaderPosition& position) {
  if (!json.is_object() || !json.contains("epoch") || !json.contains("batch") ||
      !json["epoch"].is_number_integer() || !json["batch"].is_number_integer())
    throw DataError(
        fmt::format("loader position {} is not {{\"epoch\": E, \"batch\": B}}", json.dump()));
  position.epoch = json["epoch"].get<std::int64_t>();
  position.batch = json["batch"].get<std::int64_t>();
}

struct StreamingLoader::Impl {
  LoaderOptions options;
  std::optional<detail::FileIdentity> identity;  // the file's, before it was opened
  DatasetReader reader;
  std::int64_t rows = 0;
  LoaderGeometry geometry;
  BatchLayout layout;
  std::shared_ptr<BatchChannel> channel;
  std::array<std::unique_ptr<WindowBuffer>, 2> windows;
  std::thread thread;
  std::int64_t epoch = 0;
  std::int64_t next_batch = 0;  // the next batch next() returns
  double waited = 0;
  bool resident = false;  // LoaderPlan::resident
  // Then: each array, whole, read by the first epoch or kept from an earlier
  // loader (ResidentDataRetention).
  detail::SharedResident arrays;
  RowReader read_block;  // the file's rows, for the window buffers

  explicit Impl(LoaderOptions loader_options)
      : options(std::move(loader_options)),
        identity(detail::identify(options.file)),
        reader(options.file) {
    check_options(options);
    options.prefetch_batches = choose_prefetch(reader, options);
    rows = common_rows(reader, options.arrays);
    const LoaderPlan plan = plan_geometry(reader, options, rows);
    geometry = plan.geometry;
    resident = plan.resident;
    const std::int64_t share =
        (options.global_batch_size + options.world_size - 1) / options.world_size;
    layout = BatchLayout(reader, options.arrays, share);
    channel =
        std::make_shared<BatchChannel>(layout, options.prefetch_batches + 2, options.allocator);
    read_block = [this](std::size_t a, std::int64_t first, std::int64_t count, std::uint8_t* out) {
      reader.read_rows(options.arrays[a], first, count, out);
    };
  }

  // In the producer thread only. A resident data set is read here once, whole;
  // its windows then serve rows from it in place (copying it into a window every
  // epoch stalled each epoch's first batch: 47 MB for Fashion-MNIST).
  // With a ResidentDataRetention alive, the copy comes from or goes to what it
  // keeps when the file is the one identified before it was opened, unchanged.
  void read_resident() {
    if (!resident || arrays != nullptr) return;
    const detail::ResidentKey key{identity.value_or(detail::FileIdentity{}), options.arrays, rows};
    if (identity && (arrays = detail::kept_resident(key)) != nullptr) return;
    const std::int64_t started = detail::now_ns();
    auto read = std::make_shared<detail::ResidentArrays>();
    for (const std::string& each : options.arrays) {
      read->emplace_back(static_cast<std::size_t>(rows * reader.row_bytes(each)));
      reader.read_rows(each, 0, rows, read->back().data());
    }
    arrays = std::move(read);
    if (identity && identity == detail::identify(options.file) &&
        detail::settled_before(*identity, started))
      detail::keep_resident(key, arrays);
  }

  ~Impl() { stop(); }

  std::int64_t batches_per_epoch() const {
    const std::int64_t batch = options.global_batch_size;
    return options.drop_last ? rows / batch : (rows + batch - 1) / batch;
  }

  WindowBuffer& window_buffer(std::size_t slot) {
    if (!windows[slot]) {
      std::vector<std::int64_t> row_bytes;
      for (const std::string& name : options.arrays) row_bytes.push_back(reader.row_bytes(name));
      windows[slot] = std::make_unique<WindowBuffer>(options.arrays, row_bytes,
                                                     geometry.window_blocks * geometry.block_rows,
                                                     resident ? arrays.get() : nullptr);
    }
    return *windows[slot];
  }

  // The buffer holding `window`, loaded whole; reuses the slot not holding `keep`.
  WindowBuffer& need(const EpochOrder& order, std::int64_t window, std::int64_t keep) {
    for (std::size_t slot = 0; slot < windows.size(); ++slot)
      if (windows[slot] && windows[slot]->window() == window) {
        windows[slot]->load_all(read_block);
        return *windows[slot];
      }
    const std::size_t slot = windows[0] && windows[0]->window() == keep ? 1 : 0;
    WindowBuffer& buffer = window_buffer(slot);
    buffer.assign(order, window, geometry);
    buffer.load_all(read_block);
    return buffer;
  }

  // Between batches: one more block of the window after `current`.
  void prefetch_block(const EpochOrder& order, std::int64_t current) {
    const std::int64_t next = current + 1;
    if (current < 0 || next >= order.windows()) return;
    for (const auto& buffer : windows)
      if (buffer && buffer->window() == next) {
        buffer->load_next_block(read_block);
        return;
      }
    const std::size_t slot = windows[0] && windows[0]->window() == current ? 1 : 0;
    WindowBuffer& buffer = window_buffer(slot);
    buffer.assign(order, next, geometry);
    buffer.load_next_block(read_block);
  }

  // Fills `memory` with this rank's rows of global batch `index`; returns the
  // window of its first row (-1 when the rank has none).
  std::int64_t fill(const EpochOrder& order, std::int64_t index, Batch& batch,
                    std::uint8_t* memory) {
    const std::int64_t batch_size = options.global_batch_size;
    const std::int64_t start = index * batch_size;
    const std::int64_t size = std::min(batch_size, rows - start);
    const std::int64_t lo = start + options.rank * size / options.world_size;
    const std::int64_t hi = start + (options.rank + 1) * size / options.world_size;
    batch.epoch = epoch;
    batch.index = index;
    batch.rows = hi - lo;
    batch.global_rows = size;
    batch.global_offset = lo - start;
    batch.sample_ids.reserve(static_cast<std::size_t>(batch.rows));
    if (lo == hi) return -1;
    const std::int64_t first_window = order.window_of(lo);
    for (std::int64_t position = lo; position < hi;) {
      const std::int64_t window = order.window_of(position);
      const WindowBuffer& buffer = need(order, window, first_window);
      const std::int64_t end = std::min(hi, order.window_start(window + 1));
      for (; position < end; ++position)
        layout.copy_row(buffer, position - order.window_start(window), position - lo, memory,
                        batch);
    }
    return first_window;
  }

  void produce(std::int64_t first_batch) {
    read_resident();
    const EpochOrder order(geometry, options.seed, epoch, options.shuffle);
    for (auto& buffer : windows)
      if (buffer) buffer->clear();
    for (std::int64_t index = first_batch; index < batches_per_epoch(); ++index) {
      std::optional<BatchChannel::Slot> slot = channel->acquire();
      if (!slot) return;
      const std::int64_t window = fill(order, index, slot->batch, slot->memory);
      layout.describe(slot->batch, slot->memory);
      if (!channel->push(std::move(slot->batch))) return;
      prefetch_block(order, window);
    }
  }

  void start(std::int64_t new_epoch, std::int64_t first_batch) {
    stop();
    epoch = new_epoch;
    next_batch = std::clamp<std::int64_t>(first_batch, 0, batches_per_epoch());
    thread = std::thread([this, first = next_batch] {
      try {
        produce(first);
        channel->finish(nullptr);
      } catch (...) {
        channel->finish(std::current_exception());
      }
    });
  }

  void stop() {
    if (!thread.joinable()) return;
    channel->cancel();
    thread.join();
    channel->drain();
  }
};

StreamingLoader::StreamingLoader(LoaderOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

StreamingLoader::~StreamingLoader() = default;

std::int64_t StreamingLoader::rows() const { return impl_->rows; }
std::int64_t StreamingLoader::batches_per_epoch() const { return impl_->batches_per_epoch(); }
std::int64_t StreamingLoader::window_blocks() const { return impl_->geometry.window_blocks; }
std::int64_t StreamingLoader::block_rows() const { return impl_->geometry.block_rows; }
int StreamingLoader::prefetch_batches() const { return impl_->options.prefetch_batches; }

void StreamingLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  impl_->start(epoch, first_batch);
}

std::optional<Batch> StreamingLoader::next() {
  if (!impl_->thread.joinable()) throw InternalError("StreamingLoader::next before start_epoch");
  const auto before = std::chrono::steady_clock::now();
  std::optional<Batch> batch = impl_->channel->pop();
  impl_->waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  if (batch) ++impl_->next_batch;
  return batch;
}

LoaderPosition StreamingLoader::position() const { return {impl_->epoch, impl_->next_batch}; }

double StreamingLoader::wait_seconds() const { return impl_->waited; }

}  // namespace kiln::data

// StreamingLoader: the epoch order (a permutation, deterministic, world-size
// independent), sharding, short and dropped tails, resume, and errors.
#include <kiln/data/loader.h>
#include <kiln/error.h>

#include "data/loader_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <numeric>
#include <thread>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr std::int64_t kRows = 1000;
constexpr std::int64_t kRowBytes = 4096;  // 128 rows a chunk, 8 chunks

class Loader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    file_ = new fs::path(testing::write_counting_dataset(dir_->path(), kRows, kRowBytes).file);
  }
  static void TearDownTestSuite() {
    delete file_;
    delete dir_;
  }

  static LoaderOptions options(std::int64_t batch = 10, int rank = 0, int world = 1) {
    LoaderOptions options;
    options.file = *file_;
    options.global_batch_size = batch;
    options.seed = 42;
    options.rank = rank;
    options.world_size = world;
    // Room for windows of two 128-row blocks (four windows an epoch) beside two
    // MiB of HDF5 chunk cache.
    options.memory_budget_bytes = std::size_t{4608} << 10;
    return options;
  }

  // Every batch's sample ids, checking rows against their ids on the way.
  static std::vector<std::vector<std::int64_t>> epoch_batches(StreamingLoader& loader,
                                                              std::int64_t epoch,
                                                              std::int64_t first = 0) {
    loader.start_epoch(epoch, first);
    std::vector<std::vector<std::int64_t>> batches;
    while (auto batch = loader.next()) {
      EXPECT_EQ(batch->epoch, epoch);
      EXPECT_EQ(batch->index, first + static_cast<std::int64_t>(batches.size()));
      EXPECT_EQ(static_cast<std::int64_t>(batch->sample_ids.size()), batch->rows);
      const BatchArray& y = batch->array("y");
      EXPECT_EQ(y.shape, (std::vector<std::int64_t>{batch->rows}));
      for (std::int64_t row = 0; row < batch->rows; ++row) {
        EXPECT_EQ(testing::id_in_row(*batch, row), batch->sample_ids[row]);
        EXPECT_EQ(y.bytes[row], batch->sample_ids[row] % 7);
      }
      batches.push_back(batch->sample_ids);
    }
    return batches;
  }

  static std::vector<std::int64_t> flatten(const std::vector<std::vector<std::int64_t>>& batches) {
    std::vector<std::int64_t> ids;
    for (const auto& batch : batches) ids.insert(ids.end(), batch.begin(), batch.end());
    return ids;
  }

  static testing::ScratchDir* dir_;
  static fs::path* file_;
};

testing::ScratchDir* Loader::dir_ = nullptr;
fs::path* Loader::file_ = nullptr;

TEST_F(Loader, EpochIsAShuffledPermutationOfEveryRow) {
  StreamingLoader loader(options());
  EXPECT_EQ(loader.rows(), kRows);
  EXPECT_EQ(loader.batches_per_epoch(), 100);
  EXPECT_EQ(loader.block_rows(), 128);
  EXPECT_EQ(loader.window_blocks(), 2);
  std::vector<std::int64_t> ids = flatten(epoch_batches(loader, 0));
  std::vector<std::int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> all(kRows);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  EXPECT_NE(ids, all);
  EXPECT_EQ(loader.position().epoch, 0);
  EXPECT_EQ(loader.position().batch, 100);
}

TEST_F(Loader, UnshuffledIsFileOrder) {
  LoaderOptions unshuffled = options(64);
  unshuffled.shuffle = false;
  StreamingLoader loader(unshuffled);
  std::vector<std::int64_t> all(kRows);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(flatten(epoch_batches(loader, 3)), all);
}

TEST_F(Loader, OrderIsAFunctionOfSeedAndEpoch) {
  StreamingLoader a(options()), b(options());
  const auto epoch0 = flatten(epoch_batches(a, 0));
  EXPECT_EQ(flatten(epoch_batches(b, 0)), epoch0);
  EXPECT_NE(flatten(epoch_batches(a, 1)), epoch0);
  LoaderOptions other_seed = options();
  other_seed.seed = 43;
  StreamingLoader c(other_seed);
  EXPECT_NE(flatten(epoch_batches(c, 0)), epoch0);
}

// docs/distributed.md: N ranks with B/N rows each see exactly the one-rank batch.
TEST_F(Loader, RanksSplitEveryGlobalBatchOfTheOneRankOrder) {
  StreamingLoader single(options(10));
  const auto reference = epoch_batches(single, 2);
  for (int world = 2; world <= 4; ++world) {
    std::vector<std::vector<std::vector<std::int64_t>>> per_rank;
    for (int rank = 0; rank < world; ++rank) {
      StreamingLoader loader(options(10, rank, world));
      EXPECT_EQ(loader.batches_per_epoch(), single.batches_per_epoch());
      per_rank.push_back(epoch_batches(loader, 2));
    }
    for (std::size_t i = 0; i < reference.size(); ++i) {
      std::vector<std::int64_t> joined;
      for (int rank = 0; rank < world; ++rank)
        joined.insert(joined.end(), per_rank[rank][i].begin(), per_rank[rank][i].end());
      ASSERT_EQ(joined, reference[i]) << "world " << world << ", batch " << i;
    }
  }
}

TEST_F(Loader, ShortLastBatchOrDropLast) {
  StreamingLoader keep(options(64, 1, 3));
  const auto kept = epoch_batches(keep, 0);
  ASSERT_EQ(kept.size(), 16u);         // 15 full batches and 40 rows
  EXPECT_EQ(kept.back().size(), 13u);  // rows [13, 26) of 40
  LoaderOptions drop = options(64, 1, 3);
  drop.drop_last = true;
  StreamingLoader dropped(drop);
  EXPECT_EQ(dropped.batches_per_epoch(), 15);
  EXPECT_EQ(epoch_batches(dropped, 0).size(), 15u);
}

TEST_F(Loader, ARankWithNoRowsInTheTailStillGetsTheBatch) {
  // 1000 rows in batches of 333: the tail holds 1 row, which rank 3 of 4 takes.
  LoaderOptions o = options(333, 0, 4);
  o.memory_budget_bytes = std::size_t{16} << 20;
  StreamingLoader loader(o);
  loader.start_epoch(0, 3);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->rows, 0);
  EXPECT_EQ(batch->global_rows, 1);
  EXPECT_EQ(batch->array("x").shape, (std::vector<std::int64_t>{0, kRowBytes}));
  EXPECT_FALSE(loader.next().has_value());
}

TEST_F(Loader, ResumeFromAPositionContinuesTheSameOrder) {
  StreamingLoader whole(options());
  const auto uninterrupted = epoch_batches(whole, 5);
  StreamingLoader first(options());
  first.start_epoch(5);
  std::vector<std::vector<std::int64_t>> seen;
  for (int i = 0; i < 37; ++i) seen.push_back(first.next()->sample_ids);
  nlohmann::json saved = first.position();
  EXPECT_EQ(saved, nlohmann::json({{"epoch", 5}, {"batch", 37}}));
  StreamingLoader resumed(options());
  const auto position = saved.get<LoaderPosition>();
  for (auto& batch : epoch_batches(resumed, position.epoch, position.batch))
    seen.push_back(std::move(batch));
  EXPECT_EQ(seen, uninterrupted);
}

TEST_F(Loader, RestartingMidEpochAbandonsThePrefetchedBatches) {
  StreamingLoader loader(options());
  loader.start_epoch(0);
  const auto held = loader.next();  // kept alive across the restart
  loader.next();
  StreamingLoader fresh(options());
  EXPECT_EQ(epoch_batches(loader, 1), epoch_batches(fresh, 1));
  EXPECT_EQ(testing::id_in_row(*held, 0), held->sample_ids[0]);
}

TEST_F(Loader, BatchesOutliveTheLoader) {
  std::optional<Batch> batch;
  {
    StreamingLoader loader(options());
    loader.start_epoch(0);
    batch = loader.next();
  }
  EXPECT_EQ(testing::id_in_row(*batch, 9), batch->sample_ids[9]);
}

TEST_F(Loader, WindowsStayWithinTheBudget) {
  for (const std::size_t budget :
       {std::size_t{4} << 20, std::size_t{8} << 20, std::size_t{64} << 20}) {
    LoaderOptions o = options(32);
    o.memory_budget_bytes = budget;
    StreamingLoader loader(o);
    const auto windows = 2 * loader.window_blocks() * loader.block_rows() * (kRowBytes + 1 + 4);
    const auto batches = (loader.prefetch_batches() + 2) * 32 * (kRowBytes + 1 + 8);
    EXPECT_LE(static_cast<std::size_t>(windows + batches + (2 << 20)), budget);
  }
}

// By default the loader prefetches the batches that fit in 4 MiB, or in a
// sixteenth of its budget if that is less, 2 to 32; a number asked for is kept.
TEST_F(Loader, PrefetchesFourMiBOfBatchesOrASixteenthOfTheBudget) {
  const std::int64_t batch_bytes = 32 * (kRowBytes + 1 + 8);  // 131,360
  LoaderOptions o = options(32);
  o.memory_budget_bytes = std::size_t{64} << 20;
  EXPECT_EQ(StreamingLoader(o).prefetch_batches(), (4 << 20) / batch_bytes);  // 31
  o.memory_budget_bytes = std::size_t{8} << 20;
  EXPECT_EQ(StreamingLoader(o).prefetch_batches(), 3);  // 512 KiB
  o.memory_budget_bytes = std::size_t{4} << 20;
  EXPECT_EQ(StreamingLoader(o).prefetch_batches(), 2);  // 256 KiB: the least
  o = options(1);
  o.memory_budget_bytes = std::size_t{64} << 20;
  EXPECT_EQ(StreamingLoader(o).prefetch_batches(), 32);  // the most
  o.prefetch_batches = 5;
  EXPECT_EQ(StreamingLoader(o).prefetch_batches(), 5);
}

// The reader thread waits for half its buffers before it fills them, unless the
// caller waits for a batch: a caller holding all but one buffer still gets the
// next batch, and the rest of the epoch in order.
TEST_F(Loader, ACallerHoldingAllButOneBufferStillGetsItsBatches) {
  LoaderOptions o = options(10);
  o.prefetch_batches = 4;  // 6 buffers: the reader waits for 3 free
  StreamingLoader loader(o);
  StreamingLoader reference(o);
  const auto expected = epoch_batches(reference, 0);
  loader.start_epoch(0);
  std::vector<Batch> held;
  for (int i = 0; i < o.prefetch_batches + 1; ++i) held.push_back(*loader.next());
  std::vector<std::vector<std::int64_t>> got;
  for (const Batch& batch : held) got.push_back(batch.sample_ids);
  while (auto batch = loader.next()) got.push_back(batch->sample_ids);
  EXPECT_EQ(got, expected);
}

// With 16 MiB the whole 4 MB data set fits beside two whole-file windows (about
// 11 MB): it is read once, and later epochs come from memory, in the same order as
// with 12 MiB, where the same windows fit but the copy does not. Truncating its file
// after the first epoch shows that nothing reads it again.
TEST_F(Loader, ADataSetThatFitsIsReadOnceAndServesTheSameBatches) {
  testing::ScratchDir dir;
  fs::copy_file(*file_, dir / "streamed.h5");
  fs::copy_file(*file_, dir / "resident.h5");
  LoaderOptions streamed_options = options(32), resident_options = options(32);
  streamed_options.file = dir / "streamed.h5";
  streamed_options.memory_budget_bytes = std::size_t{12} << 20;
  resident_options.file = dir / "resident.h5";
  resident_options.memory_budget_bytes = std::size_t{16} << 20;
  StreamingLoader streamed(streamed_options), resident(resident_options);
  ASSERT_EQ(streamed.window_blocks(), 8);  // one window: the whole file
  ASSERT_EQ(resident.window_blocks(), 8);
  EXPECT_EQ(epoch_batches(resident, 0), epoch_batches(streamed, 0));
  fs::resize_file(dir / "resident.h5", fs::file_size(dir / "resident.h5") / 3);
  for (const std::int64_t epoch : {1, 2})
    EXPECT_EQ(epoch_batches(resident, epoch), epoch_batches(streamed, epoch)) << epoch;
}

// Bytes this process has read through read() and pread() so far (/proc/self/io).
std::int64_t bytes_read() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::int64_t value = 0;
  while (io >> key >> value)
    if (key == "rchar:") return value;
  ADD_FAILURE() << "/proc/self/io has no rchar";
  return 0;
}

// A sweep worker's trials read the same data: while a ResidentDataRetention lives,
// a resident data set outlives its loader, and the next loader of the unchanged
// file serves the same batches without reading the file's arrays again.
TEST_F(Loader, ARetentionKeepsAResidentDataSetForTheNextLoader) {
  testing::ScratchDir dir;
  constexpr std::int64_t kManyRows = 4000;  // 16 MB, inflated from ~160 KB
  const fs::path file =
      testing::write_counting_dataset(dir / "registry", kManyRows, kRowBytes).file;
  // kiln-hdf5-reader's checks would add what this process reads from its pipes.
  const fs::path quiet_reader = dir / "reader";
  std::ofstream(quiet_reader) << "#!/bin/sh\nexit 0\n";
  fs::permissions(quiet_reader, fs::perms::owner_all);
  const testing::ScopedEnv reader("KILN_HDF5_READER", quiet_reader.c_str());
  LoaderOptions o = options(32);
  o.file = file;
  o.memory_budget_bytes = std::size_t{64} << 20;  // resident
  const auto reads = [&] {
    const std::int64_t before = bytes_read();
    StreamingLoader loader(o);
    const auto batches = epoch_batches(loader, 0);
    EXPECT_EQ(flatten(batches).size(), static_cast<std::size_t>(kManyRows));
    return bytes_read() - before;
  };
  const auto whole = static_cast<std::int64_t>(fs::file_size(file));
  {
    const ResidentDataRetention keep(std::size_t{256} << 20);
    // Just written: it could change again within the clock's resolution, so it
    // is read each time.
    EXPECT_GE(reads(), whole / 2);
    EXPECT_GE(reads(), whole / 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_GE(reads(), whole / 2);
    EXPECT_LT(reads(), whole / 10);  // the file's metadata only
    // Changed (its status, with the modification time put back): read again.
    struct stat before {};
    ASSERT_EQ(::stat(file.c_str(), &before), 0);
    ::chmod(file.c_str(), 0600);
    const timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
    EXPECT_GE(reads(), whole / 2);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  {
    // A limit below the data set's size keeps nothing.
    const ResidentDataRetention keep(std::size_t{1} << 20);
    EXPECT_GE(reads(), whole / 2);
    EXPECT_GE(reads(), whole / 2);
  }
  // No retention: nothing kept.
  EXPECT_GE(reads(), whole / 2);
  EXPECT_GE(reads(), whole / 2);
}

TEST_F(Loader, BadOptionsAndFilesAreNamed) {
  LoaderOptions tiny = options(10);
  tiny.memory_budget_bytes = 2 << 20;
  EXPECT_THAT([&] { StreamingLoader loader(tiny); },
              ::testing::ThrowsMessage<ConfigError>(HasSubstr("MiB is too small for")));
  LoaderOptions missing = options();
  missing.arrays = {"x", "labels"};
  EXPECT_THAT(
      [&] { StreamingLoader loader(missing); },
      ::testing::ThrowsMessage<DataError>(HasSubstr("no array named 'labels' (arrays: x, y)")));
  EXPECT_THROW(StreamingLoader(options(0)), ConfigError);
  EXPECT_THROW(StreamingLoader(options(10, 2, 2)), ConfigError);
}

TEST_F(Loader, ReadErrorsReachNext) {
  testing::ScratchDir dir;
  const fs::path file = testing::write_counting_dataset(dir.path(), 600, kRowBytes).file;
  LoaderOptions o = options();
  o.file = file;
  StreamingLoader loader(o);
  fs::resize_file(file, fs::file_size(file) / 3);
  loader.start_epoch(0);
  EXPECT_THAT(
      [&] {
        while (loader.next()) {
        }
      },
      ::testing::ThrowsMessage<DataError>(HasSubstr("cannot read rows")));
}

}  // namespace
}  // namespace kiln::data

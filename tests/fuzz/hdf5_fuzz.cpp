// HDF5 dataset files: a version's metadata (read_dataset_info), the streaming
// reader's view of the arrays (DatasetReader: shapes, chunking, recorded hashes,
// the first rows) and the import of an HDF5 source. Any input either reads or gives
// a DataError. libhdf5 runs in kiln-hdf5-reader first (and, for the import, only
// there), so its own crashes on damaged files become that DataError too; they are
// invisible to libFuzzer's coverage, which sees kiln's process only.
#include <kiln/data/dataset.h>
#include <kiln/data/import.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "fuzz/fuzz_input.h"

namespace {

void read_through(const std::filesystem::path& file) {
  const kiln::data::DatasetReader reader(file);
  for (const kiln::data::ArrayInfo& info : reader.arrays()) {
    reader.recorded_sha256(info.name);
    if (reader.chunk_rows(info.name) < 1) __builtin_trap();
    const std::int64_t row_bytes = reader.row_bytes(info.name);
    if (info.shape.empty() || row_bytes > (1 << 20)) continue;
    const std::int64_t rows = std::min<std::int64_t>(info.shape.front(), 4);
    std::vector<std::uint8_t> out(static_cast<std::size_t>(rows * row_bytes));
    reader.read_rows(info.name, 0, rows, out.data());
  }
}

}  // namespace

// ASan's defaults for this target, under fuzz.sh and the replay test alike (an
// ASAN_OPTIONS variable that names the flag still wins): libhdf5 sizes buffers
// from the file, and a damaged one can ask for 256 GiB in kiln's own process
// (a variable-length string attribute, regressions/hdf5/crash-d08cd...). Outside
// ASan malloc returns NULL for that, libhdf5 reports an error and kiln a DataError;
// ASan would abort instead. kiln's own oversized allocations still fail the target:
// operator new throws, which it does not catch.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // What an import may hold in memory: small, so that a file declaring a huge
  // array is refused by kiln's check rather than by the fuzzer's memory limit.
  // kiln-hdf5-reader, an ASan build here too: a hang is stopped after 3 s (inside
  // libFuzzer's 10 s), and an allocation past 1 GiB fails instead of ending it.
  static const int settings = ::setenv("KILN_IMPORT_MEMORY_BUDGET", "16777216", 1) +
                              ::setenv("KILN_HDF5_READER_TIMEOUT", "3", 1) +
                              ::setenv("ASAN_OPTIONS",
                                       "detect_leaks=0:allocator_may_return_null=1:"
                                       "max_allocation_size_mb=1024",
                                       1);
  (void)settings;
  const auto file = kiln::fuzz::write_input(data, size, "input.h5");
  try {
    kiln::data::read_dataset_info(file);
  } catch (const kiln::DataError&) {
  }
  try {
    read_through(file);
  } catch (const kiln::DataError&) {
  }
  try {
    kiln::data::ImportOptions options;
    options.sources = {file};
    options.format = kiln::data::SourceFormat::Hdf5;
    kiln::data::read_sources(options);
  } catch (const kiln::DataError&) {
  }
  return 0;
}

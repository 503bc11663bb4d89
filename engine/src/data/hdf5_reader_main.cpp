// kiln-hdf5-reader's side (see hdf5_reader_process.h): the reads kiln is about to
// do, done first in a process of their own, under a memory limit.
//
//   kiln-hdf5-reader --memory BYTES -- check FILE
//   kiln-hdf5-reader --memory BYTES -- arrays FILE NAME[=PATH]...
//
// Exit 0 when done; 3 with one line on standard error for a file kiln cannot read;
// 5 when the memory limit was reached; 2 for wrong arguments.
#include <kiln/data/dataset.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>
#include <kiln/sanitizer.h>

#include "data/dataset_file.h"
#include "data/hdf5_reader_process.h"
#include "data/hdf5_source.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <new>

namespace kiln::data::hdf5 {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kBlockBytes = 4 << 20;

// The address space this process may grow by: `bytes` beyond what it has mapped
// now. Not under AddressSanitizer, which maps terabytes of shadow memory up front.
void limit_memory(std::uint64_t bytes) {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  if (kAddressSanitizer) return;
  std::uint64_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const auto page_size = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const rlimit limit{pages * page_size + bytes, RLIM_INFINITY};
  ::setrlimit(RLIMIT_AS, &limit);
}

void write_out(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(1);  // kiln stopped reading: nothing left to do
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

// What kiln reads of a dataset file when it opens one (read_dataset_info,
// DatasetReader), plus the first and last row of each array. Errors are kiln's
// own to report when it reads the file itself.
void read_like_kiln(const fs::path& file) {
  try {
    read_dataset_info(file);
  } catch (const DataError&) {
  }
  std::optional<DatasetReader> reader;
  try {
    reader.emplace(file);
  } catch (const DataError&) {
    return;
  }
  for (const ArrayInfo& info : reader->arrays()) {
    try {
      reader->recorded_sha256(info.name);
      const std::int64_t rows = info.shape.empty() ? 1 : info.shape.front();
      const std::int64_t row_bytes = reader->row_bytes(info.name);
      if (rows == 0 || row_bytes > kBlockBytes) continue;
      std::vector<std::uint8_t> row(static_cast<std::size_t>(row_bytes));
      reader->read_rows(info.name, 0, 1, row.data());
      reader->read_rows(info.name, rows - 1, 1, row.data());
    } catch (const DataError&) {
    }
  }
}

// Rows per chunk of a chunked source dataset whose chunks span whole rows; 1 for
// any other layout.
std::int64_t source_chunk_rows(hid_t dataset, std::size_t rank) {
  const Handle properties(H5Dget_create_plist(dataset), H5Pclose);
  if (properties.get() < 0 || rank == 0 || H5Pget_layout(properties.get()) != H5D_CHUNKED) return 1;
  std::vector<hsize_t> chunk(rank);
  if (H5Pget_chunk(properties.get(), static_cast<int>(rank), chunk.data()) !=
      static_cast<int>(rank))
    return 1;
  return static_cast<std::int64_t>(std::max<hsize_t>(chunk.front(), 1));
}

struct Source {
  ArraySpec spec;
  Handle dataset;
  SourceType type;
  std::vector<std::int64_t> shape;
};

void send_arrays(const fs::path& file, const std::vector<std::string>& entries) {
  silence_errors();
  const Handle handle = data::detail::open_file(file);
  std::vector<Source> sources;
  nlohmann::json announced = nlohmann::json::array();
  for (const std::string& entry : entries) {
    Source source{parse_array_spec(entry), {}, {}, {}};
    const std::string& path = source.spec.path;
    source.dataset = open_source_array(handle.get(), source.spec, file);
    source.type = source_type_of(source.dataset.get(), file, path);
    source.shape = data::detail::read_shape(source.dataset.get(), path, source.type.dtype, file);
    check_filters(source.dataset.get(), file, path);
    check_declared_size(file, path, source.shape, source.type.dtype);
    announced.push_back({{"name", source.spec.name},
                         {"dtype", name_of(source.type.dtype)},
                         {"shape", source.shape},
                         {"stored", source.type.stored}});
    sources.push_back(std::move(source));
  }
  const std::string header = nlohmann::json{{"arrays", announced}}.dump() + "\n";
  write_out(header.data(), header.size());
  std::vector<std::uint8_t> buffer;
  for (const Source& source : sources) {
    const ArrayInfo info{source.spec.path, source.type.dtype, source.shape};
    const std::int64_t rows = info.shape.empty() ? 1 : info.shape.front();
    const std::int64_t row_bytes = data::detail::row_bytes(info);
    const std::int64_t row_elements = row_bytes / static_cast<std::int64_t>(size_of(info.dtype));
    if (row_bytes == 0) continue;
    // Whole chunks of the source per read: a chunk that straddled two reads would be
    // inflated twice whenever it is larger than HDF5's chunk cache (1 MiB).
    const std::int64_t chunk = source_chunk_rows(source.dataset.get(), info.shape.size());
    const std::int64_t block_rows =
        std::max<std::int64_t>(kBlockBytes / (row_bytes * chunk), 1) * chunk;
    buffer.resize(static_cast<std::size_t>(std::min(block_rows, rows) * row_bytes));
    for (std::int64_t first = 0; first < rows; first += block_rows) {
      const std::int64_t count = std::min(block_rows, rows - first);
      data::detail::read_rows(source.dataset.get(), source.type.memory.get(), info, first, count,
                              buffer.data(), file);
      if (source.type.check_u64)
        check_u64_range(buffer.data(), count * row_elements, first * row_elements, file, info.name);
      write_out(buffer.data(), static_cast<std::size_t>(count * row_bytes));
    }
  }
}

// Debian 12's LZF filter plugin (hdf5-plugin-lzf 3.7.0-8) calls lzf_decompress
// but does not declare its dependency on liblzf, so loading it fails with
// "undefined symbol: lzf_decompress" unless liblzf is already loaded where the
// plugin can see it. Loaded here, globally, when it is installed (liblzf1).
void load_lzf_for_the_plugin() { ::dlopen("liblzf.so.1", RTLD_NOW | RTLD_GLOBAL); }

int usage() {
  std::fputs(
      "usage: kiln-hdf5-reader --memory BYTES -- check FILE\n"
      "       kiln-hdf5-reader --memory BYTES -- arrays FILE NAME[=PATH]...\n"
      "kiln runs this program itself; see docs/formats.md.\n",
      stderr);
  return 2;
}

}  // namespace

int reader_main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::uint64_t memory = 0;
  if (args.size() < 5 || args[0] != "--memory" || args[2] != "--") return usage();
  const auto [end, error] =
      std::from_chars(args[1].data(), args[1].data() + args[1].size(), memory);
  if (error != std::errc() || end != args[1].data() + args[1].size()) return usage();
  const std::string& mode = args[3];
  const fs::path file = args[4];
  if (mode != "check" && !(mode == "arrays" && args.size() > 5)) return usage();
  detail::in_reader_process.store(true);
  load_lzf_for_the_plugin();
  limit_memory(memory);
  try {
    if (mode == "check") {
      read_like_kiln(file);
    } else {
      send_arrays(file, std::vector<std::string>(args.begin() + 5, args.end()));
    }
    return 0;
  } catch (const std::bad_alloc&) {
    return 5;
  } catch (const DataError& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 3;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 4;
  }
}

}  // namespace kiln::data::hdf5
